import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { type Change, ChangeFeed, followChanges } from "../src/services/changes.js";

describe("ChangeFeed", () => {
  it("gives concurrent writers in different processes distinct, gap-free sequence numbers", async () => {
    const storage = memoryDriver();
    // Three feeds on one storage stand for three replicas: nothing shared but the objects.
    const feeds = [new ChangeFeed(storage), new ChangeFeed(storage), new ChangeFeed(storage)];
    const seqs = await Promise.all(
      Array.from({ length: 90 }, (_, i) => (feeds[i % 3] as ChangeFeed).append({ name: `pkg-${i}` })),
    );
    expect(new Set(seqs).size).toBe(90);
    expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 90 }, (_, i) => i + 1));
    const all = await new ChangeFeed(storage).since(0);
    expect(all.map((c) => c.seq)).toEqual(Array.from({ length: 90 }, (_, i) => i + 1));
    expect(new Set(all.map((c) => c.name)).size).toBe(90);
  });

  it("pages across storage blocks and starts after `since`", async () => {
    const storage = memoryDriver();
    const feed = new ChangeFeed(storage);
    for (let i = 0; i < 1_030; i++) await feed.append({ name: `p${i}`, rev: `${i}-x` });
    const fresh = new ChangeFeed(storage);
    expect(await fresh.latest()).toBe(1_030);
    const tail = await fresh.since(995, 20);
    expect(tail.map((c) => c.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 996 + i));
    expect((await fresh.since(1_030)).length).toBe(0);
    expect(await new ChangeFeed(storage).since(0, 5)).toHaveLength(5);
  });

  it("reads new entries by key, so a quiet feed costs one read and no listing", async () => {
    const inner = memoryDriver();
    const calls = { list: 0, get: 0 };
    const storage: StorageDriver = {
      ...inner,
      list(options) {
        calls.list++;
        return inner.list(options);
      },
      get(key, options) {
        calls.get++;
        return inner.get(key, options);
      },
    };
    const feed = new ChangeFeed(storage);
    for (let i = 0; i < 40; i++) await feed.append({ name: `p${i}` });
    calls.list = 0;
    calls.get = 0;
    expect((await feed.since(40)).length).toBe(0);
    expect(calls).toEqual({ list: 0, get: 1 });
    expect((await feed.since(3, 30)).map((c) => c.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 4));
    expect((await feed.since(10)).map((c) => c.name)).toEqual(Array.from({ length: 30 }, (_, i) => `p${i + 10}`));
    expect(calls.list).toBe(0);
  });

  it("a follower sees what other writers append after it started, in order", async () => {
    const storage = memoryDriver();
    const writer = new ChangeFeed(storage);
    await writer.append({ name: "before" });
    const seen: Change[] = [];
    const follower = followChanges(new ChangeFeed(storage), { intervalMs: 20, onChanges: (c) => void seen.push(...c) });
    await follower.ready;
    await writer.append({ name: "a" });
    await writer.append({ name: "b", deleted: true });
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    follower.stop();
    expect(seen.map((c) => [c.seq, c.name, c.deleted ?? false])).toEqual([
      [2, "a", false],
      [3, "b", true],
    ]);
  });
});
