import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonByteStream, jsonPieces, LazyMembers, parseJsonStream } from "./json-stream.js";

const encoder = new TextEncoder();

/** The bytes cut at the given offsets, as a stream would deliver them. */
async function* chunks(bytes: Uint8Array, cuts: number[]): AsyncGenerator<Uint8Array> {
  let at = 0;
  for (const cut of [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b)) {
    yield bytes.subarray(at, cut);
    at = cut;
  }
  yield bytes.subarray(at);
}

/**
 * The bytes as a byte stream (as fs storage gives): readers bringing a buffer get at most up to the next
 * cut in it, others get chunks; `byob` counts the reads into a reader's buffer.
 */
function byteStream(bytes: Uint8Array, cuts: number[], counter = { byob: 0 }): ReadableStream<Uint8Array> {
  const ends = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  let at = 0;
  return new ReadableStream({
    type: "bytes",
    pull(controller) {
      const end = Math.max(ends.find((e) => e > at) ?? bytes.byteLength, at + 1);
      const request = controller.byobRequest;
      if (at >= bytes.byteLength) {
        controller.close();
        request?.respond(0);
        return;
      }
      if (request?.view) {
        const view = new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength);
        const count = Math.min(view.byteLength, end - at);
        view.set(bytes.subarray(at, at + count));
        at += count;
        counter.byob++;
        request.respond(count);
      } else {
        controller.enqueue(bytes.slice(at, end));
        at = end;
      }
    },
  });
}

/** What `JSON.parse` of the whole text gives: the value, or the kind of error. */
function reference(bytes: Uint8Array): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(new TextDecoder().decode(bytes)) };
  } catch (error) {
    return { error: (error as Error).name };
  }
}

async function streamed(
  bytes: Uint8Array,
  cuts: number[],
  source: "chunks" | "bytes" = "chunks",
): Promise<{ value: unknown } | { error: string }> {
  try {
    return { value: await parseJsonStream(source === "chunks" ? chunks(bytes, cuts) : byteStream(bytes, cuts)) };
  } catch (error) {
    return { error: (error as Error).name };
  }
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

/** Documents shaped like packuments: objects of objects, with strings that need escapes. */
const documents = fc.dictionary(
  fc.string({ unit: "binary" }),
  fc.oneof(fc.dictionary(fc.string({ unit: "binary" }), fc.jsonValue()), fc.jsonValue()),
);
const cuts = fc.array(fc.nat(), { maxLength: 40 });
const sources = fc.constantFrom("chunks" as const, "bytes" as const);

describe("parseJsonStream", () => {
  it("gives what JSON.parse gives, however the bytes are cut", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(documents, fc.jsonValue()), cuts, sources, async (value, at, source) => {
        const bytes = encoder.encode(JSON.stringify(value, null, Math.random() < 0.5 ? 2 : undefined));
        expect(await streamed(bytes, at, source)).toEqual(reference(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it("refuses what JSON.parse refuses and agrees on the rest, for damaged documents", async () => {
    const damaged = fc
      .tuple(documents, fc.nat(), fc.constantFrom(...'{}[]",: \\0a-\u00e9\n\uFEFF'), fc.boolean(), cuts, sources)
      .map(([value, position, char, insert, at, source]) => {
        const text = JSON.stringify(value);
        const i = position % (text.length + 1);
        return { text: text.slice(0, i) + char + text.slice(insert ? i : i + 1), at, source };
      });
    await fc.assert(
      fc.asyncProperty(damaged, async ({ text, at, source }) => {
        const bytes = encoder.encode(text);
        expect(await streamed(bytes, at, source)).toEqual(reference(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it("reads a byte stream into one buffer of its own, across pieces larger than that buffer", async () => {
    const doc = {
      name: "big",
      readme: "r".repeat(700 * 1024),
      versions: Object.fromEntries(
        Array.from({ length: 3000 }, (_, i) => [`1.0.${i}`, { description: `é ${i} `.repeat(40) }]),
      ),
    };
    const bytes = encoder.encode(JSON.stringify(doc));
    const counter = { byob: 0 };
    const cuts = Array.from({ length: 200 }, (_, i) => i * 7919);
    expect(await parseJsonStream(byteStream(bytes, cuts, counter))).toEqual(doc);
    expect(counter.byob).toBeGreaterThan(10);
  });

  it("keeps __proto__ members as own properties, like JSON.parse", async () => {
    const bytes = encoder.encode('{"__proto__":{"polluted":true},"versions":{"__proto__":{"x":1}}}');
    const value = (await parseJsonStream(chunks(bytes, [3, 20]))) as Record<string, Record<string, unknown>>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toEqual(["__proto__", "versions"]);
    expect(value.versions && Object.getPrototypeOf(value.versions)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(value).toEqual(JSON.parse(new TextDecoder().decode(bytes)));
  });

  it("reads an escaped quote and multi-byte characters cut between chunks", async () => {
    const text = JSON.stringify({ versions: { "1.0.0": { readme: 'say \\"hi\\" ✓ 😀 "quoted"' } }, é: "\\" });
    const bytes = encoder.encode(text);
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      expect(await parseJsonStream(chunks(bytes, [cut, cut + 1]))).toEqual(JSON.parse(text));
    }
  });

  it("drops a byte order mark at the start only, as TextDecoder does", async () => {
    for (const text of ['\uFEFF{"a":1}', ' \uFEFF{"a":1}', '{"a":"\uFEFF"}', '{"a":\uFEFF1}', '{"v":{"a":\uFEFF[]}}']) {
      const bytes = encoder.encode(text);
      for (let cut = 0; cut <= 4; cut++) expect(await streamed(bytes, [cut])).toEqual(reference(bytes));
    }
  });

  it("names what it expected in its errors", async () => {
    await expect(parseJsonStream(chunks(encoder.encode('{"a":1,}'), []))).rejects.toThrow(
      /Unexpected "}" in JSON, expected a member name/,
    );
    await expect(parseJsonStream(chunks(encoder.encode('{"a":1} x'), []))).rejects.toThrow(/expected the end/);
    await expect(parseJsonStream(chunks(encoder.encode('{"a":1'), []))).rejects.toThrow(/end of JSON input/);
  });
});

describe("jsonByteStream", () => {
  it("streams exactly the bytes of JSON.stringify", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(documents, fc.jsonValue()), fc.integer({ min: 1, max: 64 }), async (value, size) => {
        expect(await readAll(jsonByteStream(value, size))).toBe(JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  it("encodes straight into the buffers a reader brings, however small, with the same bytes", async () => {
    const strings = fc.string({ unit: fc.constantFrom("a", "é", "✓", "😀", "\\", '"', "\n") });
    await fc.assert(
      fc.asyncProperty(fc.dictionary(strings, strings), fc.integer({ min: 1, max: 40 }), async (value, size) => {
        const reader = jsonByteStream(value, 16).getReader({ mode: "byob" });
        let buffer = new ArrayBuffer(size);
        const bytes: number[] = [];
        for (;;) {
          const { done, value: chunk } = await reader.read(new Uint8Array(buffer));
          if (!chunk) throw new Error("no buffer back");
          if (done) break;
          bytes.push(...chunk);
          // The same memory back, filled (a character larger than it arrives over several reads).
          expect(chunk.buffer.byteLength).toBe(size);
          buffer = chunk.buffer;
        }
        expect(new TextDecoder().decode(new Uint8Array(bytes))).toBe(JSON.stringify(value));
      }),
      { numRuns: 300 },
    );
  });

  it("makes the members of a LazyMembers as it writes them, with the bytes JSON.stringify gives", async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue(), async (members, other) => {
        let made = 0;
        const lazy = new LazyMembers(function* () {
          for (const [key, member] of Object.entries(members)) {
            made++;
            yield [key, { member, skipped: undefined }];
          }
        });
        // At the top, one level down (split member by member) and deeper (whole, through toJSON).
        const value = { lazy, other, nested: { lazy, deeper: { lazy } } };
        const expected = JSON.stringify(value);
        expect([...jsonPieces(value)].join("")).toBe(expected);
        expect(await readAll(jsonByteStream(value, 7))).toBe(expected);
        // The first member is written before the second is made.
        made = 0;
        const pieces = jsonPieces({ lazy });
        expect(pieces.next().value).toBe('{"lazy":');
        pieces.next();
        expect(made).toBe(Object.keys(members).length > 0 ? 1 : 0);
      }),
      { numRuns: 200 },
    );
  });

  it("leaves out members JSON.stringify leaves out and calls toJSON", async () => {
    const value = { a: undefined, b: () => 1, c: Symbol("s"), d: new Date(0), e: { f: undefined, g: 1 } };
    expect(await readAll(jsonByteStream(value))).toBe(JSON.stringify(value));
  });
});
