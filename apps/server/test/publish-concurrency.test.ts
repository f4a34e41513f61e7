import { fsDriver } from "@fw/storage-r2/fs";
import { tempDir } from "@fw/tooling/test";
import { afterAll, describe, expect, it } from "vitest";
import { createRegistry, type Registry } from "../src/app.js";
import type { Packument } from "../src/npm/packument.js";
import { publishBody } from "./helpers/packages.js";
import { testConfig } from "./helpers/registry.js";

const ORIGIN = "http://127.0.0.1:4873";
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

function put(registry: Registry, token: string, name: string, version: string): Promise<Response> {
  return registry.fetch(
    new Request(`${ORIGIN}/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody(ORIGIN, { name, version })),
    }),
  );
}

describe("publishing one package from two registries sharing an fs folder", () => {
  it("keeps every version, and stores exactly the document each registry then serves", async () => {
    const dir = await tempDir("fw-publish-race-");
    cleanups.push(dir.remove);
    // Two drivers on one folder stand for two processes: they share nothing but the files and their locks.
    const [a, b] = [0, 1].map(() =>
      createRegistry(testConfig(dir.path), { storage: fsDriver({ root: dir.path, fsync: false }) }),
    ) as [Registry, Registry];
    await Promise.all([a.ready, b.ready]);
    const login = await a.fetch(
      new Request(`${ORIGIN}/-/user/org.couchdb.user:alice`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "alice", password: "correct horse battery" }),
      }),
    );
    const { token } = (await login.json()) as { token: string };
    expect((await put(a, token, "racer", "1.0.0")).status).toBe(201);

    // Sequential rounds let each registry build on its own last write; the concurrent ones make their
    // cached copies stale, so writes lose the compare-and-swap and start again from storage.
    const versions = ["1.0.0"];
    for (let round = 1; round <= 6; round++) {
      const batch = Array.from({ length: round % 2 ? 1 : 8 }, (_, i) => `1.${round}.${i}`);
      const statuses = await Promise.all(batch.map((v, i) => put(i % 2 ? b : a, token, "racer", v)));
      expect(statuses.map((r) => r.status)).toEqual(batch.map(() => 201));
      versions.push(...batch);
    }

    const stored = await fsDriver({ root: dir.path }).get("packages/racer/packument.json");
    const text = new TextDecoder().decode(stored?.body);
    const doc = JSON.parse(text) as Packument;
    expect(Object.keys(doc.versions).sort()).toEqual([...versions].sort());
    expect([...(doc._fwPublished ?? [])].sort()).toEqual([...versions].sort());
    for (const v of versions) {
      expect(doc.versions[v]).toMatchObject({ name: "racer", version: v, dist: { shasum: expect.any(String) } });
      expect(doc.time[v]).toEqual(expect.any(String));
    }
    // A registry holding this revision in memory (the last writer at least) serves the very bytes stored.
    const held = (await Promise.all([a, b].map((r) => r.services.packages.read("racer")))).filter(
      (d) => d?._rev === doc._rev,
    );
    expect(held.length).toBeGreaterThan(0);
    for (const d of held) expect(JSON.stringify(d)).toBe(text);
    await Promise.all([a.close(), b.close()]);
  });
});
