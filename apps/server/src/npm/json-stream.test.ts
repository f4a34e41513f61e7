import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { jsonByteStream, parseJsonStream } from "./json-stream.js";

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

/** What `JSON.parse` of the whole text gives: the value, or the kind of error. */
function reference(bytes: Uint8Array): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(new TextDecoder().decode(bytes)) };
  } catch (error) {
    return { error: (error as Error).name };
  }
}

async function streamed(bytes: Uint8Array, cuts: number[]): Promise<{ value: unknown } | { error: string }> {
  try {
    return { value: await parseJsonStream(chunks(bytes, cuts)) };
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

describe("parseJsonStream", () => {
  it("gives what JSON.parse gives, however the bytes are cut", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(documents, fc.jsonValue()), cuts, async (value, at) => {
        const bytes = encoder.encode(JSON.stringify(value, null, Math.random() < 0.5 ? 2 : undefined));
        expect(await streamed(bytes, at)).toEqual(reference(bytes));
      }),
      { numRuns: 400 },
    );
  });

  it("refuses what JSON.parse refuses and agrees on the rest, for damaged documents", async () => {
    const damaged = fc
      .tuple(documents, fc.nat(), fc.constantFrom(...'{}[]",: \\0a-\u00e9\n\uFEFF'), fc.boolean(), cuts)
      .map(([value, position, char, insert, at]) => {
        const text = JSON.stringify(value);
        const i = position % (text.length + 1);
        return { text: text.slice(0, i) + char + text.slice(insert ? i : i + 1), at };
      });
    await fc.assert(
      fc.asyncProperty(damaged, async ({ text, at }) => {
        const bytes = encoder.encode(text);
        expect(await streamed(bytes, at)).toEqual(reference(bytes));
      }),
      { numRuns: 1000 },
    );
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

  it("leaves out members JSON.stringify leaves out and calls toJSON", async () => {
    const value = { a: undefined, b: () => 1, c: Symbol("s"), d: new Date(0), e: { f: undefined, g: 1 } };
    expect(await readAll(jsonByteStream(value))).toBe(JSON.stringify(value));
  });
});
