import v8 from "node:v8";
import vm from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Packument, PackumentEncoder, type VersionManifest } from "./packument.js";

const decoder = new TextDecoder();

function manifest(version: string, extra: Record<string, unknown> = {}): VersionManifest {
  return {
    name: "pkg",
    version,
    description: 'ünïcödé \u2028 "quoted" \\ back',
    dist: { shasum: "a", integrity: "sha512-b", tarball: "" },
    ...extra,
  };
}

let clock = 0;

function doc(versions: Record<string, VersionManifest>, extra: Partial<Packument> = {}): Packument {
  const time: Record<string, string> = { created: "2026-01-01T00:00:00.000Z", modified: `tick ${clock++}` };
  for (const v of Object.keys(versions)) time[v] = `published ${v}`;
  return {
    _id: "pkg",
    _rev: "1-a",
    name: "pkg",
    "dist-tags": { latest: Object.keys(versions).at(-1) ?? "" },
    versions,
    time,
    maintainers: [{ name: "alice" }],
    ...extra,
  };
}

/** The encoder must be a drop-in for JSON.stringify: same bytes for every document, whatever came before. */
function expectSame(encoder: PackumentEncoder, value: Packument): void {
  expect(decoder.decode(encoder.encode(value))).toBe(JSON.stringify(value));
}

describe("PackumentEncoder", () => {
  it("streams the stored form of a document larger than it keeps, byte for byte as JSON.stringify", async () => {
    const encoder = new PackumentEncoder(64 * 1024);
    const versions: Record<string, VersionManifest> = {};
    for (let i = 0; i < 3000; i++) versions[`1.0.${i}`] = manifest(`1.0.${i}`, { readme: "x".repeat(300) });
    const large = doc(versions);
    const size = JSON.stringify(large).length;
    expect(size).toBeGreaterThan(1024 * 1024);
    const form = encoder.storedForm(large, size);
    expect(form).toBeInstanceOf(ReadableStream);
    expect(await new Response(form as ReadableStream<Uint8Array>).text()).toBe(JSON.stringify(large));
    // A small document is bytes holding only its length, and once kept its previous body decides, not
    // a stale size hint.
    const small = doc({ "1.0.0": manifest("1.0.0") });
    const first = encoder.storedForm(small, undefined) as Uint8Array;
    expect(first).toBeInstanceOf(Uint8Array);
    expect(first.buffer.byteLength).toBe(first.byteLength);
    const bytes = encoder.storedForm(small, 2_000_000);
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(decoder.decode(bytes as Uint8Array)).toBe(JSON.stringify(small));
  });

  it("drops a previous body once nothing else holds its document, and keeps the others", async () => {
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const encoder = new PackumentEncoder();
    const named = (name: string, versions: Record<string, VersionManifest>) => ({ ...doc(versions), _id: name, name });
    const held = named("held", { "1.0.0": manifest("1.0.0") });
    encoder.encode(held);
    // Written and then let go of, as the packument cache lets go of a document it no longer holds.
    const writeAndForget = () => encoder.encode(named("released", { "1.0.0": manifest("1.0.0") }));
    writeAndForget();
    expect(encoder.keeps("released")).toBe(true);
    for (let i = 0; i < 50 && encoder.keeps("released"); i++) {
      gc();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(encoder.keeps("released")).toBe(false);
    expect(encoder.keeps("held")).toBe(true);
    // Both packages' next documents are still written exactly.
    expectSame(encoder, named("held", { ...held.versions, "1.0.1": manifest("1.0.1") }));
    expectSame(encoder, named("released", { "1.0.0": manifest("1.0.0"), "1.0.1": manifest("1.0.1") }));
  });

  it("writes a body into the buffer of the one before last once storage released it, never into one still being written", () => {
    const encoder = new PackumentEncoder();
    let versions: Record<string, VersionManifest> = {};
    for (let i = 0; i < 1000; i++) versions[`1.0.${i}`] = manifest(`1.0.${i}`, { readme: "r".repeat(500) });
    const next = () => {
      versions = { ...versions, [`2.0.${Object.keys(versions).length}`]: manifest("2.0.0") };
      const value = doc(versions);
      return { value, bytes: encoder.encode(value) };
    };
    const text = (written: { bytes: Uint8Array }) => decoder.decode(written.bytes);
    const first = next();
    encoder.release(first.bytes);
    const second = next();
    encoder.release(second.bytes);
    const third = next();
    expect(third.bytes.buffer).toBe(first.bytes.buffer);
    expect(text(third)).toBe(JSON.stringify(third.value));
    expect(text(second)).toBe(JSON.stringify(second.value));

    // The third body's write is still under way: its buffer is not handed out, whatever comes next.
    const fourth = next();
    expect(fourth.bytes.buffer).toBe(second.bytes.buffer);
    const fifth = next();
    expect(fifth.bytes.buffer).not.toBe(third.bytes.buffer);
    const sixth = next();
    const inFlight = [third, fourth, fifth].map((written) => written.bytes.buffer);
    expect(inFlight).not.toContain(sixth.bytes.buffer);
    for (const written of [third, fourth, fifth, sixth]) expect(text(written)).toBe(JSON.stringify(written.value));
    // Released late, it is reused again.
    encoder.release(third.bytes);
    encoder.release(fourth.bytes);
    encoder.release(fifth.bytes);
    const seventh = next();
    expect(inFlight).toContain(seventh.bytes.buffer);
    expect(text(seventh)).toBe(JSON.stringify(seventh.value));
    expect(text(sixth)).toBe(JSON.stringify(sixth.value));
  });

  it("writes what JSON.stringify writes as versions are appended, inserted, replaced and removed", () => {
    const encoder = new PackumentEncoder();
    let versions: Record<string, VersionManifest> = {};
    expectSame(encoder, doc(versions));
    for (let i = 0; i < 5; i++) {
      versions = { ...versions, [`1.0.${i}`]: manifest(`1.0.${i}`) };
      expectSame(encoder, doc(versions, { readme: `readme ${i}`, _fwPublished: Object.keys(versions) }));
    }
    // A backport lands in the middle; a deprecation replaces one manifest; an unpublish removes one.
    const { "1.0.0": a, "1.0.1": b, ...rest } = versions;
    versions = {
      "1.0.0": a as VersionManifest,
      "1.0.0-beta": manifest("1.0.0-beta"),
      "1.0.1": b as VersionManifest,
      ...rest,
    };
    expectSame(encoder, doc(versions));
    versions = { ...versions, "1.0.3": manifest("1.0.3", { deprecated: "use 2" }) };
    expectSame(encoder, doc(versions));
    const { "1.0.2": _gone, ...kept } = versions;
    expectSame(encoder, doc(kept));
    expectSame(encoder, doc({}));
    expectSame(encoder, doc(kept));
  });

  it("serializes a cloned or re-read document afresh instead of trusting its bytes", () => {
    const encoder = new PackumentEncoder();
    const first = doc({ "1.0.0": manifest("1.0.0"), "1.0.1": manifest("1.0.1") });
    expectSame(encoder, first);
    const clone = structuredClone(first);
    (clone.versions["1.0.0"] as VersionManifest).deprecated = "no";
    expectSame(encoder, clone);
    const reread = JSON.parse(JSON.stringify(first)) as Packument;
    (reread.versions["1.0.1"] as VersionManifest).description = "changed";
    expectSame(encoder, reread);
  });

  it("keeps key order and skips undefined fields the way JSON.stringify does", () => {
    const encoder = new PackumentEncoder();
    const versions = { "2.0.0": manifest("2.0.0", { gone: undefined }), "1.0.0": manifest("1.0.0") };
    const value = { versions, _id: "pkg", readme: undefined, name: "pkg" } as unknown as Packument;
    expectSame(encoder, value);
    expectSame(encoder, { ...value, versions: { ...versions, "3.0.0": manifest("3.0.0") } });
    expectSame(encoder, { ...doc({}), versions: undefined } as unknown as Packument);
    expectSame(encoder, { ...doc({}), versions: ["odd"] } as unknown as Packument);
    // Entries JSON.stringify leaves out, and values that are not strings or objects, are never reused.
    const odd = (n: number, gone: unknown) => ({ ...doc({}), time: { created: "x", n, none: null, gone } });
    for (const value of [odd(1, undefined), odd(1, undefined), odd(2, "y"), odd(2, () => {})])
      expectSame(encoder, value as unknown as Packument);
  });

  it("writes large documents (beyond its first buffer) exactly, whatever size it expected", () => {
    // Multi-byte text and surrogate pairs land across the points where the buffer grows.
    const versions: Record<string, VersionManifest> = {};
    for (let i = 0; i < 400; i++) versions[`1.${i}.0`] = manifest(`1.${i}.0`, { readme: `${"é😀x".repeat(200)} ${i}` });
    const large = doc(versions);
    const expected = JSON.stringify(large);
    expect(Buffer.byteLength(expected)).toBeGreaterThan(512 * 1024);
    for (const hint of [undefined, 10, Buffer.byteLength(expected), 8 * 1024 * 1024]) {
      const encoder = new PackumentEncoder();
      const body = encoder.encode(large, hint);
      expect(decoder.decode(body)).toBe(expected);
      // A body never keeps much more memory than its bytes (at most a step of 256 KB and the 64 KB
      // margin), even when the hint was far too large.
      expect(body.buffer.byteLength - body.byteLength).toBeLessThanOrEqual(320 * 1024);
      // The next write of the package reuses those bytes and sizes its buffer from them.
      const grown = doc({ ...versions, "2.0.0": manifest("2.0.0") });
      expect(decoder.decode(encoder.encode(grown))).toBe(JSON.stringify(grown));
    }
  });

  it("matches JSON.stringify over random sequences of edits that share manifests", () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), version: fc.string({ maxLength: 6 }), text: fc.string() }),
      fc.record({ kind: fc.constant("remove" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), text: fc.string() }),
      fc.record({ kind: fc.constant("reorder" as const) }),
    );
    fc.assert(
      fc.property(fc.array(edit, { maxLength: 30 }), (edits) => {
        const encoder = new PackumentEncoder(4096);
        let versions: Record<string, VersionManifest> = {};
        for (const step of edits) {
          const keys = Object.keys(versions);
          if (step.kind === "add") versions = { ...versions, [step.version]: manifest(step.version, { x: step.text }) };
          else if (step.kind === "remove" && keys.length > 0) {
            const next = { ...versions };
            delete next[keys[step.at % keys.length] as string];
            versions = next;
          } else if (step.kind === "replace" && keys.length > 0) {
            const key = keys[step.at % keys.length] as string;
            versions = { ...versions, [key]: manifest(key, { x: step.text }) };
          } else if (step.kind === "reorder") {
            versions = Object.fromEntries(Object.entries(versions).reverse());
          }
          const value = doc(versions);
          if (decoder.decode(encoder.encode(value)) !== JSON.stringify(value)) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });
});
