import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { createRegistry } from "../src/app.js";
import { type Change, ChangeFeed, followChanges } from "../src/services/changes.js";
import { publishBody } from "./helpers/packages.js";
import { testConfig } from "./helpers/registry.js";

const ORIGIN = "http://127.0.0.1:4873";

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

describe("a registry following the feed", () => {
  it("keeps a cached document that is newer than a change it reads, and reloads one that is older", async () => {
    const storage = memoryDriver();
    const reads: string[] = [];
    const counted: StorageDriver = Object.assign(Object.create(storage) as StorageDriver, {
      get: (key: string) => {
        reads.push(key);
        return storage.get(key);
      },
      stream: (key: string) => {
        reads.push(key);
        return storage.stream(key);
      },
    });
    const registry = createRegistry(testConfig("/unused"), { storage: counted });
    await registry.ready;
    const signup = await registry.fetch(
      new Request(`${ORIGIN}/-/user/org.couchdb.user:alice`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "alice", password: "correct horse battery" }),
      }),
    );
    const { token } = (await signup.json()) as { token: string };
    for (const version of ["1.0.0", "1.0.1"]) {
      const published = await registry.fetch(
        new Request(`${ORIGIN}/plain`, {
          method: "PUT",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(publishBody(ORIGIN, { name: "plain", version })),
        }),
      );
      expect(published.status).toBe(201);
    }
    const packumentReads = () => reads.filter((key) => key === "packages/plain/packument.json").length;
    const settle = async () => {
      // The follower polls every 500 ms.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      await registry.idle();
    };
    await settle();
    const before = packumentReads();
    // A change older than the cached document (this process's own first publish, read late): nothing to do.
    await new ChangeFeed(storage).append({ name: "plain", rev: "1-older" });
    await settle();
    expect(packumentReads()).toBe(before);
    // A newer one, from another replica: the document is read again.
    await new ChangeFeed(storage).append({ name: "plain", rev: "99-newer" });
    await settle();
    expect(packumentReads()).toBe(before + 1);
    await registry.close();
  });
});
