import { describe, expect, it } from "vitest";
import { type Codec, casUpdate } from "./cas.js";
import { memoryDriver } from "./drivers/memory.js";
import { isStorageError } from "./errors.js";
import type { StorageDriver } from "./types.js";

describe("casUpdate", () => {
  it("gives up with a retryable E_PRECONDITION when every write keeps losing", async () => {
    const inner = memoryDriver();
    let writes = 0;
    // Another writer changes the document between every read and write.
    const contested: StorageDriver = {
      ...inner,
      async put(key, body, options) {
        writes++;
        await inner.put(key, `{"n":${writes * 100}}`);
        return inner.put(key, body, options);
      },
    };
    await inner.put("doc.json", '{"n":0}');
    const error = await casUpdate<{ n: number }>(contested, "doc.json", (d) => ({ n: (d?.n ?? 0) + 1 }), {
      maxAttempts: 3,
      baseDelayMs: 1,
    }).catch((e: unknown) => e);
    expect(isStorageError(error, "E_PRECONDITION")).toBe(true);
    expect(error).toMatchObject({ retryable: true, message: expect.stringContaining("after 3 conflicting attempts") });
    expect(writes).toBe(3);
  });

  it("reports a stored document it cannot decode instead of overwriting it", async () => {
    const driver = memoryDriver();
    await driver.put("broken.json", "{not json");
    const error = await casUpdate(driver, "broken.json", () => ({ fixed: true })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_INTERNAL", message: expect.stringContaining("cannot be decoded") });
    expect(new TextDecoder().decode((await driver.get("broken.json"))?.body)).toBe("{not json");
  });

  it("passes errors thrown by the updater through unchanged and writes nothing", async () => {
    const driver = memoryDriver();
    const boom = new Error("domain rule violated");
    await expect(casUpdate(driver, "x.json", () => Promise.reject(boom))).rejects.toBe(boom);
    expect(await driver.head("x.json")).toBeNull();
  });

  it("starts from a cached copy, and re-reads when that copy turns out stale", async () => {
    const driver = memoryDriver();
    const v1 = await driver.put("doc.json", '{"n":1}');
    const fresh = await casUpdate<{ n: number }>(driver, "doc.json", (d) => ({ n: (d?.n ?? 0) + 1 }), {
      initial: { value: { n: 1 }, etag: v1.etag },
    });
    expect(fresh).toMatchObject({ written: true, attempts: 1, value: { n: 2 } });
    // The cached copy still says n=1, but storage moved on to n=2: the first write must lose.
    const stale = await casUpdate<{ n: number }>(driver, "doc.json", (d) => ({ n: (d?.n ?? 0) + 1 }), {
      initial: { value: { n: 1 }, etag: v1.etag },
    });
    expect(stale).toMatchObject({ written: true, attempts: 2, value: { n: 3 } });
    expect(JSON.parse(new TextDecoder().decode((await driver.get("doc.json"))?.body))).toEqual({ n: 3 });
  });

  it("hands each encoded body back to the codec once its write settled, refused or written, and only then", async () => {
    const inner = memoryDriver();
    const v1 = await inner.put("doc.json", '{"n":1}');
    const events: string[] = [];
    const driver: StorageDriver = {
      ...inner,
      async put(key, body, options) {
        events.push(`put ${String(body)}`);
        try {
          return await inner.put(key, body, options);
        } finally {
          events.push(`settled ${String(body)}`);
        }
      },
    };
    const codec: Codec<{ n: number }> = {
      encode: (value) => JSON.stringify(value),
      decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)) as { n: number },
      release: (encoded) => events.push(`released ${String(encoded)}`),
      contentType: "application/json",
    };
    await inner.put("doc.json", '{"n":5}', { ifMatch: v1.etag });
    // A stale cached copy: the first write is refused, the second (from storage) lands.
    await casUpdate(driver, "doc.json", (d) => ({ n: (d?.n ?? 0) + 1 }), {
      codec,
      initial: { value: { n: 1 }, etag: v1.etag },
    });
    expect(events).toEqual([
      'put {"n":2}',
      'settled {"n":2}',
      'released {"n":2}',
      'put {"n":6}',
      'settled {"n":6}',
      'released {"n":6}',
    ]);
  });

  it("reads through the codec's stream decoder and writes a stream the codec makes", async () => {
    const driver = memoryDriver();
    await driver.put("doc.json", '{"n":1}');
    const streamed: number[] = [];
    const codec: Codec<{ n: number }> = {
      contentType: "application/json",
      encode: (value) => new Blob([JSON.stringify(value)]).stream(),
      decode: () => {
        throw new Error("the stream decoder should have been used");
      },
      decodeStream: async (body, size) => {
        streamed.push(size);
        return JSON.parse(await new Response(body).text()) as { n: number };
      },
    };
    const result = await casUpdate(driver, "doc.json", (d) => ({ n: (d?.n ?? 0) + 1 }), { codec });
    expect(result).toMatchObject({ written: true, value: { n: 2 }, info: { size: 7 } });
    expect(streamed).toEqual([7]);
    expect(new TextDecoder().decode((await driver.get("doc.json"))?.body)).toBe('{"n":2}');
  });

  it("reports a document its stream decoder cannot read instead of overwriting it", async () => {
    const driver = memoryDriver();
    await driver.put("broken.json", "{not json");
    const codec: Codec<unknown> = {
      contentType: "application/json",
      encode: (value) => JSON.stringify(value),
      decode: (bytes) => JSON.parse(new TextDecoder().decode(bytes)),
      decodeStream: async (body) => JSON.parse(await new Response(body).text()),
    };
    const error = await casUpdate(driver, "broken.json", () => ({ fixed: true }), { codec }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "E_INTERNAL", message: expect.stringContaining("cannot be decoded") });
    expect(new TextDecoder().decode((await driver.get("broken.json"))?.body)).toBe("{not json");
  });
});
