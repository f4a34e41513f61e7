import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fsDriver } from "@fw/storage-r2/fs";
import { tempDir } from "@fw/tooling/test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { parseDuration, run } from "../src/commands/registry/gc.js";

function packument(name: string, versions: string[]): string {
  return JSON.stringify({
    _id: name,
    name,
    "dist-tags": { latest: versions.at(-1) },
    versions: Object.fromEntries(versions.map((v) => [v, { name, version: v, dist: { tarball: "" } }])),
    time: {},
    maintainers: [{ name: "alice" }],
  });
}

function capture(): () => string {
  const chunks: string[] = [];
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    chunks.push(String(chunk));
    return true;
  });
  return () => chunks.join("");
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("fw registry gc", () => {
  it("lists orphans past the grace period in a dry run and deletes them with --apply", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, "fw.config.json5"), '{ storage: { driver: "fs", path: "./storage" } }\n');
    const storage = fsDriver({ root: join(dir.path, "storage"), fsync: false });
    await storage.put("packages/app/packument.json", packument("app", ["1.0.0"]));
    await storage.put("packages/app/-/app-1.0.0.tgz", "published");
    await storage.put("packages/app/-/app-1.1.0.tgz", "crashed publish");
    const config = join(dir.path, "fw.config.json5");

    let printed = capture();
    await run({ config, json: true, apply: false });
    const young = JSON.parse(printed()) as { orphans: unknown[]; young: number; graceMs: number };
    expect(young).toMatchObject({ orphans: [], young: 1, graceMs: 600_000 });
    vi.restoreAllMocks();

    printed = capture();
    await run({ config, json: false, apply: false, grace: "0s" });
    const text = printed();
    expect(text).toContain("1 orphaned objects");
    expect(text).toContain("packages/app/-/app-1.1.0.tgz");
    expect(text).toContain("dry run: nothing deleted");
    vi.restoreAllMocks();
    expect(await storage.head("packages/app/-/app-1.1.0.tgz")).not.toBeNull();

    printed = capture();
    await run({ config, json: true, apply: true, grace: "0s" });
    const applied = JSON.parse(printed()) as { deleted: Array<{ key: string }>; skipped: unknown[] };
    expect(applied.deleted.map((o) => o.key)).toEqual(["packages/app/-/app-1.1.0.tgz"]);
    expect(applied.skipped).toEqual([]);
    expect(await storage.head("packages/app/-/app-1.1.0.tgz")).toBeNull();
    expect(await storage.head("packages/app/-/app-1.0.0.tgz")).not.toBeNull();
  });

  it("reads durations with a unit only", () => {
    expect(parseDuration("10m")).toBe(600_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("1d")).toBe(86_400_000);
    expect(parseDuration("0s")).toBe(0);
    expect(() => parseDuration("10")).toThrow('--grace "10" is not a duration');
    expect(() => parseDuration("-5m")).toThrow();
  });
});
