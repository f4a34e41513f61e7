import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { memoryDriver } from "@fw/storage-r2/memory";
import { tempDir } from "@fw/tooling/test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { collectStats, formatBytes, type RegistryStats, run } from "../src/commands/registry/stats.js";

function packument(name: string, versions: string[]): string {
  return JSON.stringify({
    _id: name,
    name,
    "dist-tags": versions.length > 0 ? { latest: versions.at(-1) } : {},
    versions: Object.fromEntries(versions.map((v) => [v, { name, version: v, dist: { tarball: "" } }])),
    time: {},
    maintainers: [{ name: "alice" }],
  });
}

/** A small registry written straight to storage: what the stats count is storage, not the server. */
async function seed(storage: StorageDriver): Promise<void> {
  await storage.put("packages/alpha/packument.json", packument("alpha", ["1.0.0", "1.1.0", "2.0.0"]));
  await storage.put("packages/alpha/-/alpha-1.0.0.tgz", new Uint8Array(1000));
  await storage.put("packages/alpha/-/alpha-1.1.0.tgz", new Uint8Array(1000));
  await storage.put("packages/alpha/-/alpha-2.0.0.tgz", new Uint8Array(1000));
  await storage.put("packages/@acme/big/packument.json", packument("@acme/big", ["0.1.0"]));
  await storage.put("packages/@acme/big/-/big-0.1.0.tgz", new Uint8Array(50_000));
  await storage.put("packages/@acme/big/attestations/0.1.0.json", "{}");
  await storage.put("packages/retired/packument.json", packument("retired", []));
  await storage.put("packages/broken/packument.json", "{ not json");
  await storage.put("users/alice/profile.json", '{"name":"alice"}');
  await storage.put("audit/2025/01.jsonl", "{}\n");
}

describe("collectStats", () => {
  it("counts packages, versions, tarballs and bytes, and ranks packages by size or versions", async () => {
    const storage = memoryDriver();
    await seed(storage);
    const stats = await collectStats(storage);
    expect(stats).toMatchObject({
      packages: 2,
      unpublished: 1,
      versions: 4,
      tarballs: { count: 4, bytes: 53_000 },
      unreadable: ["broken"],
      by: "size",
    });
    let total = 0;
    let objects = 0;
    for (let page = await storage.list(); ; ) {
      for (const object of page.objects) {
        total += object.size;
        objects++;
      }
      if (!page.cursor) break;
      page = await storage.list({ cursor: page.cursor });
    }
    expect(stats.storage).toEqual({ objects, bytes: total });
    expect(Object.keys(stats.areas).sort()).toEqual(["audit", "packages", "users"]);
    expect(stats.areas.users).toEqual({ objects: 1, bytes: '{"name":"alice"}'.length });
    expect(stats.top.map((p) => p.name)).toEqual(["@acme/big", "alpha"]);
    expect(stats.top[0]).toMatchObject({ versions: 1, tarballs: 1 });

    const byVersions = await collectStats(storage, { by: "versions", top: 1 });
    expect(byVersions.top).toEqual([
      expect.objectContaining({ name: "alpha", versions: 3, tarballs: 3, bytes: expect.any(Number) }),
    ]);
  });

  it("formats sizes as the config reads them", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(300 * 1024 * 1024)).toBe("300.0 MB");
  });
});

describe("fw registry stats", () => {
  const output = () => {
    const chunks: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      chunks.push(String(chunk));
      return true;
    });
    return () => chunks.join("");
  };
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("reads the storage the config names and prints a summary or JSON", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, "fw.config.json5"), '{ storage: { driver: "fs", path: "./data" } }\n');
    await seed(fsDriver({ root: join(dir.path, "data"), fsync: false }));
    const config = join(dir.path, "fw.config.json5");

    let printed = output();
    await run({ config, json: true });
    const stats = JSON.parse(printed()) as RegistryStats;
    expect(stats).toMatchObject({ packages: 2, versions: 4, unpublished: 1, tarballs: { count: 4 } });
    vi.restoreAllMocks();

    printed = output();
    await run({ config, json: false, top: "5", by: "versions" });
    const text = printed();
    expect(text).toMatch(/^packages\s+2 \(and 1 unpublished\)$/m);
    expect(text).toMatch(/^versions\s+4$/m);
    expect(text).toContain("top 2 by versions");
    expect(text).toMatch(/^alpha\s+3\s+3\s+/m);
    expect(text).toContain("unreadable packuments: broken");
    vi.restoreAllMocks();

    await expect(run({ config, json: false, by: "name" })).rejects.toThrow('--by "name" is not one of: size, versions');
    await expect(run({ config, json: false, top: "-1" })).rejects.toThrow("--top");
  });
});
