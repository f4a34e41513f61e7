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

  it("keeps small forms uncompressed too", async () => {
    const storage = memoryDriver();
    await storage.put("packages/small/packument.json", JSON.stringify({ ...bigPackument(2), name: "small" }));
    const cache = new PackumentCache(storage, (name) => `packages/${name}/packument.json`);
    const rendered = await cache.render("small", "f|http://x", (d) => d);
    cache.compressed("small", rendered as never, "gzip");
    expect(rendered?.json).toBeInstanceOf(Uint8Array);
  });
});
