/**
 * The storage contract, written once and run against every driver (memory, fs, s3 on a real Ceph RGW,
 * r2 inside workerd). Web APIs only: it also runs inside workerd.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { casUpdate, isStorageError, type StorageDriver, type StorageErrorCode } from "../src/index.js";

export interface ContractTarget {
  name: string;
  /** A driver over a fresh, empty namespace (new folder, bucket prefix, …). */
  create(): Promise<StorageDriver>;
  /** Size of the streamed large object; 200 MB unless a backend cannot hold it. */
  largeObjectBytes?: number;
  /**
   * Bytes of memory the process running the driver uses now. When given, the large-object test
   * asserts that streaming it in and out grows memory far less than the object's size.
   */
  memoryUsage?(): number;
}

const text = new TextDecoder();
const utf8 = new TextEncoder();

export async function expectCode(promise: Promise<unknown>, code: StorageErrorCode): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    if (!isStorageError(error)) throw error;
    expect(error.code, error.message).toBe(code);
    return error;
  }
  throw new Error(`expected a StorageError ${code}, but the call succeeded`);
}

export async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}

/** The value, or a failed expectation when the driver answered null. */
export function must<T>(value: T | null | undefined): T {
  expect(value).toBeDefined();
  expect(value).not.toBeNull();
  return value as T;
}

function streamOf(...parts: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(utf8.encode(part));
      controller.close();
    },
  });
}

/** Byte `i` of the large test object: position-dependent, so reordering or loss is detected. */
function patternByte(i: number): number {
  return (Math.imul(i, 2654435761) >>> 24) ^ (i >>> 20) ^ (i & 0xff);
}

function patternStream(total: number, chunkSize = 256 * 1024): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const size = Math.min(chunkSize, total - sent);
      const chunk = new Uint8Array(size);
      for (let j = 0; j < size; j++) chunk[j] = patternByte(sent + j);
      sent += size;
      controller.enqueue(chunk);
    },
  });
}

async function allKeys(
  driver: StorageDriver,
  prefix: string,
  limit?: number,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await driver.list({ prefix, cursor, limit });
    pages++;
    expect(page.objects.length).toBeLessThanOrEqual(limit ?? 1000);
    keys.push(...page.objects.map((o) => o.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return { keys, pages };
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

export function describeDriver(target: ContractTarget): void {
  describe(`storage contract: ${target.name}`, () => {
    let driver: StorageDriver;
    beforeEach(async () => {
      driver = await target.create();
    });
    afterEach(async () => {
      await driver.dispose?.();
    });

    describe("round trips", () => {
      it("stores bytes, text, ArrayBuffers and streams and reads them back", async () => {
        const bytes = new Uint8Array([0, 1, 2, 250, 255]);
        const a = await driver.put("rt/bytes.bin", bytes, { contentType: "application/octet-stream" });
        expect(a).toMatchObject({ key: "rt/bytes.bin", size: 5, contentType: "application/octet-stream" });
        expect(a.etag).toMatch(/^[^"]+$/);
        expect((await driver.get("rt/bytes.bin"))?.body).toEqual(bytes);

        await driver.put("rt/text.json", '{"ok":true}', {
          contentType: "application/json",
          cacheControl: "public, max-age=60",
        });
        const got = await driver.get("rt/text.json");
        expect(text.decode(got?.body)).toBe('{"ok":true}');
        expect(got).toMatchObject({ contentType: "application/json", cacheControl: "public, max-age=60", size: 11 });

        await driver.put("rt/buffer", bytes.buffer.slice(1, 3));
        expect((await driver.get("rt/buffer"))?.body).toEqual(new Uint8Array([1, 2]));

        const streamed = await driver.put("rt/stream.txt", streamOf("hello ", "streamed ", "world"));
        expect(streamed.size).toBe(20);
        expect(text.decode((await driver.get("rt/stream.txt"))?.body)).toBe("hello streamed world");

        await driver.put("rt/sized.txt", streamOf("abc", "def"), { size: 6 });
        expect(text.decode((await driver.get("rt/sized.txt"))?.body)).toBe("abcdef");
      });

      it("reports the same metadata from put, head, get and stream", async () => {
        const put = await driver.put("meta/doc", "content", { contentType: "text/plain" });
        const head = await driver.head("meta/doc");
        const got = await driver.get("meta/doc");
        const streamed = await driver.stream("meta/doc");
        for (const seen of [head, got, streamed]) {
          expect(seen).toMatchObject({ key: "meta/doc", etag: put.etag, size: 7, contentType: "text/plain" });
          expect(seen?.lastModified).toBeInstanceOf(Date);
        }
        expect(text.decode(await readStream(must(streamed).body))).toBe("content");
      });

      it("stores an empty object", async () => {
        await driver.put("empty", "");
        expect(await driver.head("empty")).toMatchObject({ size: 0 });
        expect((await driver.get("empty"))?.body.byteLength).toBe(0);
        expect((await readStream(must(await driver.stream("empty")).body)).byteLength).toBe(0);
      });

      it("keeps unicode keys intact", async () => {
        const key = "pkg/@scope/ünïcødé 😀 name/-/file+1 (copy).tgz";
        await driver.put(key, "x");
        expect((await driver.head(key))?.key).toBe(key);
        expect((await driver.list({ prefix: "pkg/@scope/" })).objects.map((o) => o.key)).toEqual([key]);
      });

      it("answers missing objects with null, not errors", async () => {
        expect(await driver.head("nope/missing")).toBeNull();
        expect(await driver.get("nope/missing")).toBeNull();
        expect(await driver.stream("nope/missing")).toBeNull();
        expect(await driver.stream("nope/missing", { range: { offset: 5 } })).toBeNull();
        expect(await driver.delete("nope/missing")).toBe(false);
      });

      it("overwrites and changes the ETag", async () => {
        const first = await driver.put("ow/key", "one");
        const second = await driver.put("ow/key", "two, longer");
        expect(second.etag).not.toBe(first.etag);
        expect(text.decode((await driver.get("ow/key"))?.body)).toBe("two, longer");
        expect((await driver.head("ow/key"))?.etag).toBe(second.etag);
      });

      it("deletes", async () => {
        await driver.put("del/key", "x");
        expect(await driver.delete("del/key")).toBe(true);
        expect(await driver.head("del/key")).toBeNull();
        expect(await driver.get("del/key")).toBeNull();
        expect(await driver.delete("del/key")).toBe(false);
      });
    });

    describe("ranges", () => {
      const body = "0123456789abcdefghij";
      beforeEach(async () => {
        await driver.put("range/obj", body);
      });
      const cases: Array<[string, { offset: number; length?: number } | { suffix: number }, string, number]> = [
        ["offset and length", { offset: 2, length: 5 }, "23456", 2],
        ["offset to the end", { offset: 15 }, "fghij", 15],
        ["a length past the end, clipped", { offset: 18, length: 100 }, "ij", 18],
        ["a suffix", { suffix: 3 }, "hij", 17],
        ["a suffix longer than the object", { suffix: 500 }, body, 0],
        ["the first byte", { offset: 0, length: 1 }, "0", 0],
      ];
      for (const [label, range, expected, offset] of cases) {
        it(`reads ${label}`, async () => {
          const result = await driver.stream("range/obj", { range });
          expect(result?.size).toBe(20);
          expect(result?.range).toEqual({ offset, length: expected.length });
          expect(text.decode(await readStream(must(result).body))).toBe(expected);
        });
      }
      it("rejects a range that starts past the end with E_RANGE", async () => {
        await expectCode(driver.stream("range/obj", { range: { offset: 20 } }), "E_RANGE");
        await expectCode(driver.stream("range/obj", { range: { offset: 1000, length: 2 } }), "E_RANGE");
      });
      it("rejects malformed ranges with E_INVALID_ARGUMENT", async () => {
        await expectCode(driver.stream("range/obj", { range: { offset: -1 } }), "E_INVALID_ARGUMENT");
        await expectCode(driver.stream("range/obj", { range: { offset: 0, length: 0 } }), "E_INVALID_ARGUMENT");
        await expectCode(driver.stream("range/obj", { range: { suffix: 0 } }), "E_INVALID_ARGUMENT");
      });
    });

    describe("conditional writes", () => {
      it("creates only when missing with ifNoneMatch '*'", async () => {
        const created = await driver.put("cond/new", "first", { ifNoneMatch: "*" });
        const error = await expectCode(driver.put("cond/new", "second", { ifNoneMatch: "*" }), "E_PRECONDITION");
        expect(error).toMatchObject({ retryable: false });
        const stored = await driver.get("cond/new");
        expect(text.decode(stored?.body)).toBe("first");
        expect(stored?.etag).toBe(created.etag);
      });

      it("replaces only the expected version with ifMatch", async () => {
        const v1 = await driver.put("cond/doc", "v1");
        const v2 = await driver.put("cond/doc", "v2", { ifMatch: v1.etag });
        const error = await expectCode(driver.put("cond/doc", "v3", { ifMatch: v1.etag }), "E_PRECONDITION");
        expect(error).toMatchObject({ retryable: true });
        expect(text.decode((await driver.get("cond/doc"))?.body)).toBe("v2");
        // ETags may be given quoted, as HTTP headers carry them.
        await driver.put("cond/doc", "v3", { ifMatch: `"${v2.etag}"` });
        expect(text.decode((await driver.get("cond/doc"))?.body)).toBe("v3");
      });

      it("fails ifMatch on a missing object", async () => {
        await expectCode(
          driver.put("cond/absent", "x", { ifMatch: "0123456789abcdef0123456789abcdef" }),
          "E_PRECONDITION",
        );
        expect(await driver.head("cond/absent")).toBeNull();
      });

      it("applies conditions to streamed bodies", async () => {
        await driver.put("cond/streamed", "orig");
        await expectCode(driver.put("cond/streamed", streamOf("new"), { ifNoneMatch: "*" }), "E_PRECONDITION");
        expect(text.decode((await driver.get("cond/streamed"))?.body)).toBe("orig");
      });

      it("replaces a streamed body of undeclared size only over the expected version", async () => {
        // What the registry writes for a large packument: a stream made as it is sent, size unknown.
        const piece = "x".repeat(64 * 1024);
        const v1 = await driver.put("cond/large", "v1");
        const v2 = await driver.put("cond/large", streamOf(...Array.from({ length: 24 }, () => piece)), {
          ifMatch: v1.etag,
        });
        expect(v2.size).toBe(24 * piece.length);
        await expectCode(driver.put("cond/large", streamOf(piece, "stale"), { ifMatch: v1.etag }), "E_PRECONDITION");
        const stored = await driver.get("cond/large");
        expect(stored?.etag).toBe(v2.etag);
        expect(stored?.body.byteLength).toBe(24 * piece.length);
      });

      it("deletes only the expected version with ifMatch", async () => {
        const v1 = await driver.put("cond/del", "v1");
        const v2 = await driver.put("cond/del", "v2");
        await expectCode(driver.delete("cond/del", { ifMatch: v1.etag }), "E_PRECONDITION");
        expect(text.decode((await driver.get("cond/del"))?.body)).toBe("v2");
        expect(await driver.delete("cond/del", { ifMatch: v2.etag })).toBe(true);
        expect(await driver.head("cond/del")).toBeNull();
      });

      it("lets exactly one of 20 racing create-only writes win", async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => driver.put("race/create", `writer ${i}`, { ifNoneMatch: "*" })),
        );
        const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "E_PRECONDITION" });
        }
        expect(text.decode((await driver.get("race/create"))?.body)).toBe(`writer ${won[0]}`);
      });

      it("counts exactly 50 from 50 racing casUpdate increments", async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, () =>
            casUpdate<{ n: number }>(driver, "race/counter.json", (current) => ({ n: (current?.n ?? 0) + 1 })),
          ),
        );
        expect(results.every((r) => r.written)).toBe(true);
        const final = await driver.get("race/counter.json");
        expect(JSON.parse(text.decode(final?.body))).toEqual({ n: 50 });
        expect(new Set(results.map((r) => r.value?.n)).size).toBe(50);
      });

      it("casUpdate leaves the document alone when the updater returns undefined", async () => {
        const first = await casUpdate(driver, "cas/doc.json", () => ({ a: 1 }));
        expect(first).toMatchObject({ written: true, value: { a: 1 } });
        const second = await casUpdate(driver, "cas/doc.json", () => undefined);
        expect(second).toMatchObject({ written: false, value: { a: 1 } });
        expect((await driver.head("cas/doc.json"))?.etag).toBe(first.info?.etag);
        expect((await driver.head("cas/doc.json"))?.contentType).toBe("application/json");
      });
    });

    describe("listing", () => {
      it("pages through 2,500 keys under a prefix in byte order, and nothing else", async () => {
        const keys = Array.from(
          { length: 2500 },
          (_, i) => `list/p/${String(i).padStart(5, "0")}${i % 7 === 0 ? "/nested" : ""}`,
        );
        const outside = ["list/other", "list/pp", "list/q/1", "lisp/x"];
        await pool([...keys, ...outside], 32, async (key) => {
          await driver.put(key, key);
        });
        const byDefault = await allKeys(driver, "list/p/");
        expect(byDefault.keys).toEqual([...keys].sort());
        expect(byDefault.pages).toBe(3);
        const small = await allKeys(driver, "list/p/", 333);
        expect(small.keys).toEqual(byDefault.keys);
        expect(small.pages).toBe(8);
        const first = await driver.list({ prefix: "list/p/", limit: 1 });
        expect(first.objects[0]).toMatchObject({ key: "list/p/00000/nested", size: 19 });
        expect(first.objects[0]?.etag).toBe((await driver.head("list/p/00000/nested"))?.etag);
      });

      it("lists in UTF-8 byte order, nested keys included", async () => {
        const keys = ["o/a-c", "o/a/b", "o/a", "o/b", "o/\u00e9", "o/\uffee", "o/\u{1f600}", "o/Z"];
        for (const key of keys) {
          if (key === "o/a") continue; // a key that is also a folder is not portable to fs
          await driver.put(key, "x");
        }
        const { keys: listed } = await allKeys(driver, "o/");
        expect(listed).toEqual(["o/Z", "o/a-c", "o/a/b", "o/b", "o/\u00e9", "o/\uffee", "o/\u{1f600}"]);
      });

      it("returns an empty page for a prefix with no objects", async () => {
        await driver.put("here/1", "x");
        expect(await driver.list({ prefix: "nothere/" })).toEqual({ objects: [] });
        const partial = await driver.list({ prefix: "he" });
        expect(partial.objects.map((o) => o.key)).toEqual(["here/1"]);
      });

      it("rejects bad limits", async () => {
        await expectCode(driver.list({ limit: 0 }), "E_INVALID_ARGUMENT");
        await expectCode(driver.list({ limit: 1001 }), "E_INVALID_ARGUMENT");
        await expectCode(driver.list({ limit: 1.5 }), "E_INVALID_ARGUMENT");
      });
    });

    describe("bad input", () => {
      const badKeys: unknown[] = [
        "",
        "/absolute",
        "..",
        "../escape",
        "a/../../escape",
        "a/./b",
        "a//b",
        "trailing/",
        "nul\u0000byte",
        "new\nline",
        "back\\slash",
        `${"x".repeat(1025)}`,
        `long/${"y".repeat(256)}`,
        ".fw/internal",
        42,
        null,
      ];
      it("rejects unsafe keys on every operation with E_INVALID_KEY", async () => {
        for (const key of badKeys) {
          const k = key as string;
          await expectCode(driver.put(k, "x"), "E_INVALID_KEY");
          await expectCode(driver.get(k), "E_INVALID_KEY");
          await expectCode(driver.head(k), "E_INVALID_KEY");
          await expectCode(driver.stream(k), "E_INVALID_KEY");
          await expectCode(driver.delete(k), "E_INVALID_KEY");
        }
        await expectCode(driver.list({ prefix: "../" }), "E_INVALID_KEY");
        await expectCode(driver.list({ prefix: "/root" }), "E_INVALID_KEY");
        expect((await driver.list()).objects).toEqual([]);
      });

      it("accepts the longest allowed key", async () => {
        const key = Array.from({ length: 4 }, (_, i) => String(i).repeat(255))
          .join("/")
          .slice(0, 1024);
        await driver.put(key, "x");
        expect((await driver.head(key))?.size).toBe(1);
      });

      it("rejects contradictory options and a body of the wrong declared size, storing nothing", async () => {
        await expectCode(driver.put("args/a", "x", { ifMatch: "abc", ifNoneMatch: "*" }), "E_INVALID_ARGUMENT");
        await expectCode(driver.put("args/b", streamOf("four"), { size: 9 }), "E_INVALID_ARGUMENT");
        expect(await driver.head("args/a")).toBeNull();
        expect(await driver.head("args/b")).toBeNull();
      });

      it("stops with E_ABORTED when the signal has fired", async () => {
        await driver.put("abort/x", "x");
        const signal = AbortSignal.abort();
        await expectCode(driver.get("abort/x", { signal }), "E_ABORTED");
        await expectCode(driver.head("abort/x", { signal }), "E_ABORTED");
        await expectCode(driver.put("abort/y", "y", { signal }), "E_ABORTED");
        await expectCode(driver.list({ signal }), "E_ABORTED");
        expect(await driver.head("abort/y")).toBeNull();
      });
    });

    describe("large objects", () => {
      const size = target.largeObjectBytes ?? 200 * 1024 * 1024;
      it(`streams ${Math.round(size / 1024 / 1024)} MB in and out${target.memoryUsage ? " with bounded memory" : ""}`, {
        timeout: 600_000,
      }, async () => {
        let peak = 0;
        const baseline = target.memoryUsage?.() ?? 0;
        const timer = target.memoryUsage
          ? setInterval(() => {
              peak = Math.max(peak, (target.memoryUsage as () => number)() - baseline);
            }, 20)
          : undefined;
        try {
          const put = await driver.put("big/object.bin", patternStream(size), {
            contentType: "application/octet-stream",
          });
          expect(put.size).toBe(size);
          expect((await driver.head("big/object.bin"))?.size).toBe(size);

          const read = await driver.stream("big/object.bin");
          let position = 0;
          let mismatches = 0;
          for await (const chunk of must(read).body as unknown as AsyncIterable<Uint8Array>) {
            for (let j = 0; j < chunk.byteLength; j++) if (chunk[j] !== patternByte(position + j)) mismatches++;
            position += chunk.byteLength;
          }
          expect(position).toBe(size);
          expect(mismatches).toBe(0);

          const tail = await driver.stream("big/object.bin", { range: { offset: size - 1000 } });
          const tailBytes = await readStream(must(tail).body);
          expect(tailBytes.byteLength).toBe(1000);
          expect(tailBytes[999]).toBe(patternByte(size - 1));
        } finally {
          if (timer) clearInterval(timer);
          await driver.delete("big/object.bin");
        }
        if (target.memoryUsage) expect(peak).toBeLessThan(Math.min(size / 2, 120 * 1024 * 1024));
      });
    });
  });
}
