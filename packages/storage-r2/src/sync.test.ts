import { describe, expect, it } from "vitest";
import { memoryDriver } from "./drivers/memory.js";
import { type SyncProgress, sync } from "./sync.js";

const text = new TextDecoder();

describe("sync", () => {
  it("copies what is missing or changed, skips what is equal and deletes what the source lost", async () => {
    const from = memoryDriver();
    const to = memoryDriver();
    await from.put("pkgs/a.json", "same", { contentType: "application/json" });
    await from.put("pkgs/b.tgz", "new content");
    await from.put("pkgs/c.tgz", "only in source");
    await from.put("other/x", "outside the prefix");
    await to.put("pkgs/a.json", "same");
    await to.put("pkgs/b.tgz", "old content");
    await to.put("pkgs/gone.tgz", "deleted upstream");
    await to.put("other/y", "outside the prefix, kept");

    const events: SyncProgress[] = [];
    const report = await sync(from, to, { prefix: "pkgs/", onProgress: (e) => events.push(e) });
    expect(report).toMatchObject({
      copied: ["pkgs/b.tgz", "pkgs/c.tgz"],
      skipped: ["pkgs/a.json"],
      deleted: ["pkgs/gone.tgz"],
      bytesCopied: 25,
      dryRun: false,
    });
    expect(events.map((e) => `${e.action} ${e.key}`).sort()).toEqual([
      "copy pkgs/b.tgz",
      "copy pkgs/c.tgz",
      "delete pkgs/gone.tgz",
      "skip pkgs/a.json",
    ]);
    expect(text.decode((await to.get("pkgs/b.tgz"))?.body)).toBe("new content");
    expect(await to.head("pkgs/gone.tgz")).toBeNull();
    expect(await to.head("other/y")).not.toBeNull();
    expect(await to.head("other/x")).toBeNull();

    const again = await sync(from, to, { prefix: "pkgs/" });
    expect(again).toMatchObject({ copied: [], deleted: [], skipped: ["pkgs/a.json", "pkgs/b.tgz", "pkgs/c.tgz"] });
  });

  it("only reports in a dry run, and keeps extra objects when asked", async () => {
    const from = memoryDriver();
    const to = memoryDriver();
    await from.put("k/1", "one");
    await to.put("k/2", "two");
    const dry = await sync(from, to, { dryRun: true });
    expect(dry).toMatchObject({ copied: ["k/1"], deleted: ["k/2"], dryRun: true });
    expect(await to.head("k/1")).toBeNull();
    expect(await to.head("k/2")).not.toBeNull();
    const keep = await sync(from, to, { deleteExtraneous: false });
    expect(keep).toMatchObject({ copied: ["k/1"], deleted: [] });
    expect(await to.head("k/2")).not.toBeNull();
  });

  it("pages through large prefixes on both sides", async () => {
    const from = memoryDriver();
    const to = memoryDriver();
    for (let i = 0; i < 2100; i++) await from.put(`many/${String(i).padStart(4, "0")}`, `v${i}`);
    for (let i = 0; i < 2100; i += 2) await to.put(`many/${String(i).padStart(4, "0")}`, `v${i}`);
    const report = await sync(from, to, { prefix: "many/", concurrency: 16 });
    expect(report.copied).toHaveLength(1050);
    expect(report.skipped).toHaveLength(1050);
    expect((await to.list({ prefix: "many/", limit: 1000 })).cursor).toBeDefined();
  });
});
