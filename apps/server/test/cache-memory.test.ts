import { gunzipSync } from "node:zlib";
import type { PutBody, PutOptions, StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { cacheBudgets, createRegistry, type Registry } from "../src/app.js";
import { publishBody } from "./helpers/packages.js";
import { signUp, testConfig } from "./helpers/registry.js";

const ORIGIN = "http://127.0.0.1:4873";

function publish(registry: Registry, token: string, name: string, version: string, manifest: Record<string, unknown>) {
  return registry.fetch(
    new Request(`${ORIGIN}/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody(ORIGIN, { name, version, manifest })),
    }),
  );
}

describe("limits.cacheMemory", () => {
  it("is shared out between the caches and adds up to the limit", () => {
    const budgets = cacheBudgets(32 * 1024 * 1024);
    const total = budgets.packuments + budgets.tarballs + budgets.uplinks + budgets.previousBodies;
    expect(total).toBeLessThanOrEqual(32 * 1024 * 1024);
    expect(total).toBeGreaterThan(31 * 1024 * 1024);
    // A popular package's 20 MB document is charged its ~5 MB of compressed forms, which fit the default.
    expect(budgets.packuments).toBeGreaterThan(10 * 1024 * 1024);
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
      const published = await publish(registry, token, "big", version, {
        dependencies: Object.fromEntries(Array.from({ length: 40 }, (_, d) => [`dep-${d}`, `^${version}`])),
      });
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

  it("reads and writes a document of megabytes in pieces, keeping every version", async () => {
    const storage = memoryDriver();
    const streamedPuts: string[] = [];
    const recording: StorageDriver = Object.assign(Object.create(storage) as StorageDriver, {
      put: (key: string, body: PutBody, options?: PutOptions) => {
        if (body instanceof ReadableStream) streamedPuts.push(key);
        return storage.put(key, body, options);
      },
    });
    const config = testConfig("/unused");
    // 4 MB of cache memory keeps previous bodies of up to 0.4 MB: a 1.6 MB document is written as a stream.
    const small = { ...config, limits: { ...config.limits, cacheMemory: 4 * 1024 * 1024 } };
    const publishHuge = async (registry: Registry, token: string, version: string) => {
      const response = await publish(registry, token, "huge", version, {
        description: `"${version}" ${"é".repeat(20_000)}`,
      });
      expect(response.status).toBe(201);
    };
    const first = createRegistry(small, { storage: recording });
    await first.ready;
    const token = await signUp(first, ORIGIN, "alice");
    const versions = Array.from({ length: 40 }, (_, i) => `1.0.${i}`);
    for (const version of versions) await publishHuge(first, token, version);
    await first.close();
    const stored = await storage.get("packages/huge/packument.json");
    expect(stored?.size).toBeGreaterThan(1024 * 1024);
    expect(streamedPuts).toContain("packages/huge/packument.json");

    // A fresh process reads the stored document piece by piece and writes the next one as a stream.
    streamedPuts.length = 0;
    const second = createRegistry(small, { storage: recording });
    await second.ready;
    await publishHuge(second, token, "2.0.0");
    expect(streamedPuts).toEqual(["packages/huge/packument.json"]);
    const text = new TextDecoder().decode((await storage.get("packages/huge/packument.json"))?.body);
    const doc = JSON.parse(text) as { versions: Record<string, { description: string }> };
    expect(Object.keys(doc.versions)).toEqual([...versions, "2.0.0"]);
    expect(doc.versions["1.0.7"]?.description).toBe(`"1.0.7" ${"é".repeat(20_000)}`);
    expect(text).toBe(JSON.stringify(doc));
    const served = await second.fetch(new Request(`${ORIGIN}/huge`, { headers: { "accept-encoding": "gzip" } }));
    expect(
      Object.keys((JSON.parse(gunzipSync(Buffer.from(await served.arrayBuffer())).toString()) as typeof doc).versions),
    ).toEqual([...versions, "2.0.0"]);
    await second.close();
  });
});
