import { gunzipSync } from "node:zlib";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { cacheBudgets, createRegistry } from "../src/app.js";
import { publishBody } from "./helpers/packages.js";
import { signUp, testConfig } from "./helpers/registry.js";

const ORIGIN = "http://127.0.0.1:4873";

describe("limits.cacheMemory", () => {
  it("is shared out between the caches and adds up to the limit", () => {
    const budgets = cacheBudgets(64 * 1024 * 1024);
    const total = budgets.packuments + budgets.tarballs + budgets.uplinks + budgets.previousBodies;
    expect(total).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(total).toBeGreaterThan(63 * 1024 * 1024);
    // A popular package's 20 MB document (with its ~5 MB of compressed forms) fits the default.
    expect(budgets.packuments).toBeGreaterThan(25 * 1024 * 1024);
  });

  it("serves and grows a package whose document is larger than all the cache memory", async () => {
    const config = testConfig("/unused");
    const registry = createRegistry(
      { ...config, limits: { ...config.limits, cacheMemory: 16 * 1024 } },
      {
        storage: memoryDriver(),
      },
    );
    await registry.ready;
    const token = await signUp(registry, ORIGIN, "alice");
    const versions = Array.from({ length: 40 }, (_, i) => `1.0.${i}`);
    // ~0.7 KB per version, also in the abbreviated form: the document outgrows the 7 KB packument budget.
    for (const version of versions) {
      const published = await registry.fetch(
        new Request(`${ORIGIN}/big`, {
          method: "PUT",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(
            publishBody(ORIGIN, {
              name: "big",
              version,
              manifest: {
                dependencies: Object.fromEntries(Array.from({ length: 40 }, (_, d) => [`dep-${d}`, `^${version}`])),
              },
            }),
          ),
        }),
      );
      expect(published.status).toBe(201);
    }
    const variants: Record<string, string>[] = [
      {},
      { "accept-encoding": "gzip" },
      { accept: "application/vnd.npm.install-v1+json" },
    ];
    for (const headers of variants) {
      const response = await registry.fetch(new Request(`${ORIGIN}/big`, { headers }));
      expect(response.status).toBe(200);
      const bytes = Buffer.from(await response.arrayBuffer());
      const text =
        response.headers.get("content-encoding") === "gzip" ? gunzipSync(bytes).toString() : bytes.toString();
      expect(text.length).toBeGreaterThan(16 * 1024);
      expect(Object.keys((JSON.parse(text) as { versions: object }).versions)).toEqual(versions);
    }
    const tarball = await registry.fetch(new Request(`${ORIGIN}/big/-/big-1.0.39.tgz`));
    expect(tarball.status).toBe(200);
    expect((await tarball.arrayBuffer()).byteLength).toBeGreaterThan(0);
  });
});
