import { gunzipSync } from "node:zlib";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import type { Packument } from "../src/npm/packument.js";
import { PackumentCache } from "../src/services/cache.js";

function bigPackument(versions: number): Packument {
  const doc: Packument = {
    _id: "big",
    _rev: "1-a",
    name: "big",
    "dist-tags": { latest: `1.0.${versions - 1}` },
    versions: {},
    time: {},
    maintainers: [{ name: "alice" }],
  };
  for (let i = 0; i < versions; i++) {
    const version = `1.0.${i}`;
    doc.versions[version] = {
      name: "big",
      version,
      description: `release ${i} `.repeat(20),
      dist: { tarball: "" },
    } as never;
  }
  return doc;
}

describe("PackumentCache", () => {
  it("keeps only the gzip bytes of a large form, and still answers clients that take no compression", async () => {
    const storage = memoryDriver();
    const doc = bigPackument(2000);
    await storage.put("packages/big/packument.json", JSON.stringify(doc));
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    const rendered = await cache.render("big", "f|http://x", (d) => d);
    if (!rendered?.json) throw new Error("the large form was not rendered");
    const original = rendered.json.slice();
    expect(original.byteLength).toBeGreaterThan(256 * 1024);

    const gzip = cache.compressed("big", rendered as never, "gzip");
    expect(rendered?.json).toBeUndefined();
    expect(Buffer.from(gunzipSync(gzip)).equals(Buffer.from(original))).toBe(true);
    expect(Buffer.from(cache.identity(rendered as never)).equals(Buffer.from(original))).toBe(true);
    // Brotli is built from the same bytes after the uncompressed copy is gone.
    const br = cache.compressed("big", rendered as never, "br");
    expect(br.byteLength).toBeGreaterThan(0);
    // The same form is served from the cache, not rendered again.
    expect(await cache.render("big", "f|http://x", () => ({ wrong: true }))).toBe(rendered);
  });

  it("renders a document of megabytes straight into gzip, once for concurrent readers, with the bytes JSON.stringify gives", async () => {
    const storage = memoryDriver();
    const doc = bigPackument(6000);
    // Members JSON.stringify drops or writes specially must come out the same.
    // A readme of 2- and 4-byte characters longer than the compressor's input buffers splits between them.
    Object.assign(doc, {
      empty: {},
      list: [1, { a: undefined }],
      skipped: undefined,
      readme: `quote " and \u2028 ${"é😀x".repeat(50_000)}`,
    });
    const text = JSON.stringify(doc);
    expect(text.length).toBeGreaterThan(1024 * 1024);
    await storage.put("packages/big/packument.json", text);
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    expect(cache.renderFresh("big", "f|http://x", (d) => d)).toBeUndefined();
    let builds = 0;
    const build = (d: Packument) => {
      builds++;
      return d;
    };
    const [first, second] = await Promise.all([
      cache.render("big", "f|http://x", build),
      cache.render("big", "f|http://x", build),
    ]);
    expect(builds).toBe(1);
    expect(second).toBe(first);
    expect(first?.json).toBeUndefined();
    expect(gunzipSync(first?.gzip as Uint8Array).toString()).toBe(text);
    // Served from memory from now on, on the synchronous path too; no compressing again.
    expect(cache.renderFresh("big", "f|http://x", build)).toBe(first);
    expect(cache.compressed("big", first as never, "gzip")).toBe(first?.gzip);
    expect(Buffer.from(cache.identity(first as never)).toString()).toBe(text);
    // A newer document is rendered anew, never answered with the old form.
    cache.set("big", { ...doc, description: "changed" }, "etag-2", text.length);
    const changed = await cache.render("big", "f|http://x", build);
    expect(changed).not.toBe(first);
    expect(JSON.parse(gunzipSync(changed?.gzip as Uint8Array).toString()).description).toBe("changed");
    // Unpublished (no versions left) or deleted: missing, however large the document.
    cache.set("big", { ...doc, versions: {} }, "etag-3", text.length);
    expect(await cache.render("big", "f|http://x", build)).toBeNull();
    cache.set("big", null, null);
    expect(await cache.render("big", "f|http://x", build)).toBeNull();
  });

  it("holds one large document parsed; the ones it releases keep serving their forms and are read again when needed", async () => {
    const storage = memoryDriver();
    let reads = 0;
    const stream = storage.stream.bind(storage);
    storage.stream = (key, options) => {
      reads++;
      return stream(key, options);
    };
    const docs = { one: { ...bigPackument(6000), name: "one" }, two: { ...bigPackument(6000), name: "two" } };
    for (const [name, doc] of Object.entries(docs)) {
      const text = JSON.stringify(doc);
      expect(text.length).toBeGreaterThan(1024 * 1024);
      await storage.put(`packages/${name}/packument.json`, text);
    }
    // A budget smaller than either document: they are charged their compressed forms only.
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`, { maxBytes: 1024 * 1024 });
    const view = (d: Packument) => ({ name: d.name, versions: Object.keys(d.versions).length });
    const one = await cache.render("one", "v", view);
    expect(cache.peek("one")?.doc.name).toBe("one");
    await cache.render("two", "v", view);
    expect(reads).toBe(2);
    expect(cache.peek("two")?.doc.name).toBe("two");
    expect(cache.peek("one")).toBeUndefined();

    // Released: its form is still served from memory, on the synchronous path too, and what a tarball
    // read or the change feed asks is answered without parsing it again.
    expect(cache.renderFresh("one", "v", view)).toBe(one);
    expect(await cache.render("one", "v", view)).toBe(one);
    expect(await cache.hasVersion("one", "1.0.5999")).toBe(true);
    expect(await cache.hasVersion("one", "2.0.0")).toBe(false);
    expect(await cache.hasVersion("missing", "1.0.0")).toBeNull();
    expect(cache.revision("one")).toBe("1-a");
    expect(reads).toBe(3);
    // A reader of the document itself, or a new form, reads it again; the forms made before stay.
    expect((await cache.get("one"))?.doc.versions["1.0.5999"]?.version).toBe("1.0.5999");
    expect(reads).toBe(4);
    expect(cache.peek("two")).toBeUndefined();
    expect(await cache.render("one", "v", view)).toBe(one);
    const other = await cache.render("two", "w", view);
    expect(reads).toBe(5);
    expect(JSON.parse(gunzipSync(other?.gzip as Uint8Array).toString())).toEqual({ name: "two", versions: 6000 });

    // Changed in storage while released (another replica's write): the newer document, never the old forms.
    await storage.put("packages/one/packument.json", JSON.stringify({ ...docs.one, description: "newer" }));
    expect((await cache.get("one"))?.doc.description).toBe("newer");
    const renewed = await cache.render("one", "v", view);
    expect(renewed).not.toBe(one);
  });

  it("keeps a document this process writes while a read of the older one is under way", async () => {
    const storage = memoryDriver();
    const key = "packages/small/packument.json";
    const older = { ...bigPackument(2), name: "small", _rev: "1-a" };
    await storage.put(key, JSON.stringify(older));
    const stream = storage.stream.bind(storage);
    let opened!: () => void;
    const gate = new Promise<void>((resolve) => {
      opened = resolve;
    });
    let begun!: () => void;
    const started = new Promise<void>((resolve) => {
      begun = resolve;
    });
    storage.stream = async (k, options) => {
      const object = await stream(k, options);
      begun();
      await gate;
      return object;
    };
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    const reading = cache.get("small");
    await started;
    // The write lands in storage and in the cache after the read took the older bytes.
    const newer = { ...older, _rev: "2-b", description: "newer" };
    const { etag } = await storage.put(key, JSON.stringify(newer));
    cache.set("small", newer, etag);
    opened();
    expect((await reading)?.doc._rev).toBe("2-b");
    expect(cache.peek("small")?.doc.description).toBe("newer");
    expect((await cache.get("small"))?.etag).toBe(etag);
  });

  it("charges each rendered form to the budget, so documents rendered many ways push older ones out", async () => {
    const storage = memoryDriver();
    const older = JSON.stringify({ ...bigPackument(40), name: "older" });
    const busy = JSON.stringify({ ...bigPackument(4), name: "busy" });
    await storage.put("packages/older/packument.json", older);
    await storage.put("packages/busy/packument.json", busy);
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`, { maxBytes: 64 * 1024 });
    const olderForm = await cache.render("older", "base 0", (d) => d);
    const busyForm = await cache.render("busy", "base 0", (d) => d);
    // Forms of "busy" for more base URLs: alone they stay under the budget, with "older" they do not.
    const forms = Math.floor((48 * 1024) / busy.length);
    for (let i = 1; i < forms; i++) await cache.render("busy", `base ${i}`, (d) => ({ ...d, base: i }));
    expect(busy.length * (forms + 1)).toBeLessThan(64 * 1024);
    expect(busy.length * (forms + 1) + older.length * 2).toBeGreaterThan(64 * 1024);
    expect(await cache.render("busy", "base 0", (d) => d)).toBe(busyForm);
    const again = await cache.render("older", "base 0", (d) => d);
    expect(again).not.toBe(olderForm);
    expect(Buffer.from(again?.json as Uint8Array).equals(Buffer.from(olderForm?.json as Uint8Array))).toBe(true);
  });

  it("keeps small forms uncompressed too", async () => {
    const storage = memoryDriver();
    await storage.put("packages/small/packument.json", JSON.stringify({ ...bigPackument(2), name: "small" }));
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    const rendered = await cache.render("small", "f|http://x", (d) => d);
    cache.compressed("small", rendered as never, "gzip");
    expect(rendered?.json).toBeInstanceOf(Uint8Array);
  });

  it("holds only the bytes of each compressed form, not the compressor's whole output chunk", async () => {
    const storage = memoryDriver();
    await storage.put("packages/small/packument.json", JSON.stringify({ ...bigPackument(3), name: "small" }));
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    const rendered = await cache.render("small", "f|http://x", (d) => d);
    for (const encoding of ["gzip", "br"] as const) {
      const bytes = cache.compressed("small", rendered as never, encoding);
      expect(bytes.byteLength).toBeLessThan(2048);
      expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
    }
  });
});
