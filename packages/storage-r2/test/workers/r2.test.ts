import { env } from "cloudflare:workers";
import { afterEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import { type R2BucketLike, r2Driver } from "../../src/drivers/r2.js";
import { isStorageError, type StorageDriver, type StorageErrorCode } from "../../src/index.js";
import { describeDriver, expectCode, must, readStream } from "../contract.js";

const bucket = env.BUCKET;
const MiB = 1024 * 1024;
const text = new TextDecoder();

/** Deletes every object, so the contract starts each test on an empty bucket. */
async function emptyBucket(): Promise<void> {
  for (;;) {
    const page = await bucket.list();
    if (page.objects.length === 0) return;
    await bucket.delete(page.objects.map((object) => object.key));
  }
}

describeDriver({
  name: "r2 (workerd binding)",
  // The fresh namespace is the emptied bucket root, not a random root prefix: R2's 1024-byte limit
  // covers the whole stored key, so under any prefix the contract's longest key (1023 bytes) cannot be
  // stored. The root prefix has its own tests below. One test file only, so nothing else shares the
  // bucket while it is emptied.
  create: async () => {
    await emptyBucket();
    return r2Driver(bucket);
  },
});

/** A root prefix no other test uses. */
function freshRoot(): string {
  return `t-${crypto.randomUUID()}`;
}

function byteAt(i: number): number {
  return (i * 31 + (i >>> 13)) & 0xff;
}

function expected(total: number): Uint8Array {
  return Uint8Array.from({ length: total }, (_, i) => byteAt(i));
}

/**
 * A stream of `total` bytes in chunks of an odd size, so part boundaries fall inside chunks. `onPull`
 * runs before each chunk with the number of bytes sent so far.
 */
function bodyOf(total: number, onPull?: (sent: number) => Promise<void> | void): ReadableStream<Uint8Array> {
  const chunkSize = 300_007;
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      await onPull?.(sent);
      if (sent >= total) return controller.close();
      const size = Math.min(chunkSize, total - sent);
      const chunk = new Uint8Array(size);
      for (let j = 0; j < size; j++) chunk[j] = byteAt(sent + j);
      sent += size;
      controller.enqueue(chunk);
    },
  });
}

async function storedBytes(driver: StorageDriver, key: string): Promise<Uint8Array> {
  return must(await driver.get(key)).body;
}

describe("r2 driver: root prefix", () => {
  it("keeps each driver inside its own folder, siblings with a common start included", async () => {
    const root = freshRoot();
    const tenant = r2Driver(bucket, { prefix: `${root}/tenant` });
    const sibling = r2Driver(bucket, { prefix: `${root}/tenant2/` });
    const put = await tenant.put("pkg/a.json", "{}", { contentType: "application/json" });
    await sibling.put("pkg/b.json", "[]");

    expect(put.key).toBe("pkg/a.json");
    expect(await bucket.head(`${root}/tenant/pkg/a.json`)).not.toBeNull();
    expect(await bucket.head(`${root}/tenant2/pkg/b.json`)).not.toBeNull();
    expect((await tenant.list()).objects.map((o) => o.key)).toEqual(["pkg/a.json"]);
    expect((await sibling.list({ prefix: "pkg/" })).objects.map((o) => o.key)).toEqual(["pkg/b.json"]);
    expect(await tenant.head("pkg/b.json")).toBeNull();
    expect(await tenant.get("pkg/a.json")).toMatchObject({ key: "pkg/a.json", contentType: "application/json" });

    // A folder given with or without its slash is the same root.
    expect((await r2Driver(bucket, { prefix: `${root}/tenant/` }).head("pkg/a.json"))?.etag).toBe(put.etag);
  });

  it("refuses keys, list prefixes and roots that would leave the folder", async () => {
    const root = freshRoot();
    const tenant = r2Driver(bucket, { prefix: `${root}/tenant` });
    await r2Driver(bucket, { prefix: `${root}/other` }).put("secret", "x");
    for (const key of ["../other/secret", "a/../../other/secret", "/secret", "./secret"]) {
      await expectCode(tenant.get(key), "E_INVALID_KEY");
      await expectCode(tenant.put(key, "y"), "E_INVALID_KEY");
      await expectCode(tenant.delete(key), "E_INVALID_KEY");
    }
    await expectCode(tenant.list({ prefix: "../" }), "E_INVALID_KEY");
    expect(await must(await bucket.get(`${root}/other/secret`)).text()).toBe("x");

    for (const prefix of ["../escape", "/absolute", "a//b", "a/../b", ".fw/x"]) {
      expect(() => r2Driver(bucket, { prefix })).toThrow(expect.objectContaining({ code: "E_INVALID_KEY" }));
    }
  });

  it("counts the root prefix against R2's 1024-byte key limit", async () => {
    const root = freshRoot();
    const tenant = r2Driver(bucket, { prefix: root });
    // 200-byte segments, within the 255-byte segment limit, filling the stored key to 1024 bytes.
    const fits = Array.from({ length: 6 }, () => "k".repeat(200))
      .join("/")
      .slice(0, 1024 - `${root}/`.length);
    expect(fits.endsWith("k")).toBe(true);
    await tenant.put(fits, "x");
    expect((await tenant.head(fits))?.size).toBe(1);
    await expectCode(tenant.put(`${fits}k`, "x"), "E_INVALID_KEY");
    expect((await tenant.list()).objects.map((o) => o.key)).toEqual([fits]);
  });

  it("pages with R2's cursor and returns keys without the root", async () => {
    const tenant = r2Driver(bucket, { prefix: freshRoot() });
    const keys = ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"];
    for (const key of keys) await tenant.put(key, key);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await tenant.list({ prefix: "a/", limit: 2, cursor });
      seen.push(...page.objects.map((o) => o.key));
      cursor = page.cursor;
      pages++;
    } while (cursor !== undefined);
    expect(seen).toEqual(["a/1", "a/2", "a/3", "a/4", "a/5"]);
    expect(pages).toBe(3);
  });
});

describe("r2 driver: streams of unknown length", () => {
  const partSize = 5 * MiB;

  it("uploads in parts of the configured size when the stream outgrows one part", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const total = 2 * partSize + 12_345;
    const put = await driver.put("big/multi.bin", bodyOf(total), { contentType: "application/x-tar" });
    expect(put).toMatchObject({ key: "big/multi.bin", size: total, contentType: "application/x-tar" });
    // R2 marks multipart objects by the part count in the ETag.
    expect(put.etag).toMatch(/-3$/);
    expect(await driver.head("big/multi.bin")).toMatchObject({ etag: put.etag, contentType: "application/x-tar" });
    expect(await storedBytes(driver, "big/multi.bin")).toEqual(expected(total));

    const across = await driver.stream("big/multi.bin", { range: { offset: partSize - 10, length: 20 } });
    expect(across?.range).toEqual({ offset: partSize - 10, length: 20 });
    expect(await readStream(must(across).body)).toEqual(expected(total).slice(partSize - 10, partSize + 10));
  });

  it("stores a stream that ends within the first part with a single put", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const exact = await driver.put("one/exact.bin", bodyOf(partSize));
    expect(exact.etag).not.toContain("-");
    expect(await storedBytes(driver, "one/exact.bin")).toEqual(expected(partSize));
    const small = await driver.put("one/small.bin", bodyOf(1000));
    expect(small).toMatchObject({ size: 1000 });
    expect(small.etag).not.toContain("-");
  });

  it("keeps create-only semantics across a multipart upload", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const created = await driver.put("cond/new.bin", bodyOf(partSize + 1), { ifNoneMatch: "*" });
    expect(created.etag).toMatch(/-2$/);
    const error = await expectCode(
      driver.put("cond/new.bin", bodyOf(partSize + 2), { ifNoneMatch: "*" }),
      "E_PRECONDITION",
    );
    expect(error).toMatchObject({ retryable: false });
    expect((await driver.head("cond/new.bin"))?.etag).toBe(created.etag);
  });

  it("fails a create-only upload when the object appears while the parts stream", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    let raced: string | undefined;
    const body = bodyOf(2 * partSize + 1, async (sent) => {
      if (sent > partSize && raced === undefined) raced = (await driver.put("cond/raced.bin", "other writer")).etag;
    });
    const error = await expectCode(driver.put("cond/raced.bin", body, { ifNoneMatch: "*" }), "E_PRECONDITION");
    expect(error).toMatchObject({ retryable: false });
    expect(raced).toBeDefined();
    expect((await driver.head("cond/raced.bin"))?.etag).toBe(raced);
    expect(text.decode(await storedBytes(driver, "cond/raced.bin"))).toBe("other writer");
  });

  it("replaces only the expected version with ifMatch across a multipart upload", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const v1 = await driver.put("cond/doc.bin", "v1");
    const v2 = await driver.put("cond/doc.bin", bodyOf(partSize + 3), { ifMatch: v1.etag });
    expect(v2.etag).toMatch(/-2$/);
    const stale = await expectCode(
      driver.put("cond/doc.bin", bodyOf(partSize + 4), { ifMatch: v1.etag }),
      "E_PRECONDITION",
    );
    expect(stale).toMatchObject({ retryable: true });
    await expectCode(driver.put("cond/absent.bin", bodyOf(partSize + 5), { ifMatch: v1.etag }), "E_PRECONDITION");
    expect(await driver.head("cond/absent.bin")).toBeNull();
    expect((await driver.head("cond/doc.bin"))?.etag).toBe(v2.etag);
  });

  it("fails an ifMatch upload when the object is replaced while the parts stream", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const v1 = await driver.put("cond/swap.bin", "v1");
    let raced: string | undefined;
    const body = bodyOf(2 * partSize + 1, async (sent) => {
      if (sent > partSize && raced === undefined) raced = (await driver.put("cond/swap.bin", "v2")).etag;
    });
    const error = await expectCode(driver.put("cond/swap.bin", body, { ifMatch: v1.etag }), "E_PRECONDITION");
    expect(error).toMatchObject({ retryable: true });
    expect(text.decode(await storedBytes(driver, "cond/swap.bin"))).toBe("v2");
  });

  it("stops with E_ABORTED between parts and stores nothing", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const controller = new AbortController();
    const body = bodyOf(3 * partSize, (sent) => {
      if (sent > partSize) controller.abort(new Error("client went away"));
    });
    await expectCode(driver.put("abort/parts.bin", body, { signal: controller.signal }), "E_ABORTED");
    expect(await driver.head("abort/parts.bin")).toBeNull();
  });

  it("passes on the error of a failing body stream and stores nothing", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: partSize });
    const failure = new Error("upstream reset");
    const body = bodyOf(3 * partSize, (sent) => {
      if (sent > partSize) throw failure;
    });
    await expect(driver.put("fail/parts.bin", body)).rejects.toBe(failure);
    expect(await driver.head("fail/parts.bin")).toBeNull();
  });
});

describe("r2 driver: streams of declared size", () => {
  afterEach(() => {
    vi.unstubAllGlobals();
  });

  it("streams through a FixedLengthStream in one put", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: 5 * MiB });
    const total = 6 * MiB + 1;
    const put = await driver.put("sized/one.bin", bodyOf(total), { size: total });
    expect(put).toMatchObject({ size: total });
    expect(put.etag).not.toContain("-");
    expect(await storedBytes(driver, "sized/one.bin")).toEqual(expected(total));
  });

  it("rejects a body longer or shorter than declared, storing nothing", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot() });
    await expectCode(driver.put("sized/long", bodyOf(10), { size: 4 }), "E_INVALID_ARGUMENT");
    await expectCode(driver.put("sized/short", bodyOf(4), { size: 10 }), "E_INVALID_ARGUMENT");
    await expectCode(driver.put("sized/bytes", new Uint8Array(3), { size: 4 }), "E_INVALID_ARGUMENT");
    expect((await driver.list()).objects).toEqual([]);
  });

  it("applies conditions to a sized stream", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot() });
    const v1 = await driver.put("sized/cond", bodyOf(100), { size: 100, ifNoneMatch: "*" });
    await expectCode(driver.put("sized/cond", bodyOf(100), { size: 100, ifNoneMatch: "*" }), "E_PRECONDITION");
    const v2 = await driver.put("sized/cond", bodyOf(50), { size: 50, ifMatch: v1.etag });
    await expectCode(driver.put("sized/cond", bodyOf(10), { size: 10, ifMatch: v1.etag }), "E_PRECONDITION");
    expect(await driver.head("sized/cond")).toMatchObject({ etag: v2.etag, size: 50 });
  });

  it("checks the declared size on the chunked path where FixedLengthStream is missing", async () => {
    // As when the binding is used from outside workerd.
    vi.stubGlobal("FixedLengthStream", undefined);
    const driver = r2Driver(bucket, { prefix: freshRoot(), multipartPartSize: 5 * MiB });
    const total = 5 * MiB + 99;
    const put = await driver.put("chunked/ok.bin", bodyOf(total), { size: total });
    expect(put).toMatchObject({ size: total });
    expect(put.etag).toMatch(/-2$/);
    await expectCode(driver.put("chunked/short.bin", bodyOf(total), { size: total + 1 }), "E_INVALID_ARGUMENT");
    await expectCode(driver.put("chunked/long.bin", bodyOf(total), { size: 5 * MiB }), "E_INVALID_ARGUMENT");
    await expectCode(driver.put("chunked/small.bin", bodyOf(10), { size: 11 }), "E_INVALID_ARGUMENT");
    expect((await driver.list()).objects.map((o) => o.key)).toEqual(["chunked/ok.bin"]);
  });
});

describe("r2 driver: conditional delete and errors", () => {
  it("refuses an ifMatch delete of a missing object", async () => {
    const driver = r2Driver(bucket, { prefix: freshRoot() });
    const error = await expectCode(driver.delete("gone", { ifMatch: "abc" }), "E_PRECONDITION");
    expect(error).toMatchObject({ retryable: true });
  });

  it("turns binding exceptions into StorageErrors that keep the cause", async () => {
    const failures: Array<[unknown, StorageErrorCode, boolean]> = [
      [new Error("head: We encountered an internal error. Please try again. (10001)"), "E_UNAVAILABLE", true],
      [new Error("head: Network connection lost."), "E_UNAVAILABLE", true],
      [Object.assign(new Error("head: Reduce your concurrent request rate"), { code: 10058 }), "E_UNAVAILABLE", true],
      [new Error("head: Access Denied (10003)"), "E_PERMISSION", false],
      [new TypeError("something unexpected"), "E_INTERNAL", false],
    ];
    for (const [cause, code, retryable] of failures) {
      const reject = () => Promise.reject(cause);
      const failing: R2BucketLike = {
        head: reject,
        get: reject,
        put: reject,
        createMultipartUpload: reject,
        delete: reject,
        list: reject,
      };
      const driver = r2Driver(failing);
      for (const attempt of [driver.head("any/key"), driver.get("any/key"), driver.put("any/key", "x")]) {
        const error = await expectCode(attempt, code);
        expect(error).toMatchObject({ retryable, cause, driver: "r2", key: "any/key" });
      }
      const listed = await expectCode(driver.list(), code);
      expect(isStorageError(listed) && listed.cause).toBe(cause);
    }
  });

  it("refuses a part size below R2's minimum", () => {
    expect(() => r2Driver(bucket, { multipartPartSize: 5 * MiB - 1 })).toThrow(
      expect.objectContaining({ code: "E_INVALID_ARGUMENT" }),
    );
  });

  it("accepts the runtime's R2Bucket as an R2BucketLike", async () => {
    expectTypeOf<R2Bucket>().toExtend<R2BucketLike>();
    const typed: R2BucketLike = env.BUCKET;
    const driver = r2Driver(typed, { prefix: freshRoot() });
    expect((await driver.put("typed", "ok")).size).toBe(2);
  });
});
