import { describe, expect, it } from "vitest";
import { BlobCache } from "../src/adapters/bun.js";

const bytesOf = async (blob: Blob) => new Uint8Array(await blob.arrayBuffer());

describe("BlobCache (bodies served by Bun.serve)", () => {
  it("answers the same Blob, with the body's bytes, for a body served again", async () => {
    const blobs = new BlobCache(1024);
    const body = Uint8Array.from({ length: 100 }, (_, i) => i);
    const first = blobs.of(body);
    expect(await bytesOf(first)).toEqual(body);
    expect(blobs.of(body)).toBe(first);
    // Another array with equal bytes is another body.
    expect(blobs.of(body.slice())).not.toBe(first);
  });

  it("keeps the bodies served last up to its size, dropping the least recently served first", () => {
    const blobs = new BlobCache(1000);
    const a = new Uint8Array(100);
    const b = new Uint8Array(100);
    const blobA = blobs.of(a);
    const blobB = blobs.of(b);
    // Nine more of 100 bytes: 1,100 in all, so one goes; a was served again, so b is the oldest.
    expect(blobs.of(a)).toBe(blobA);
    for (let i = 0; i < 9; i++) blobs.of(new Uint8Array(100));
    expect(blobs.of(a)).toBe(blobA);
    expect(blobs.of(b)).not.toBe(blobB);
  });

  it("does not keep a body larger than an eighth of its size", async () => {
    const blobs = new BlobCache(800);
    const large = new Uint8Array(101).fill(7);
    const blob = blobs.of(large);
    expect(await bytesOf(blob)).toEqual(large);
    expect(blobs.of(large)).not.toBe(blob);
    const small = new Uint8Array(100);
    expect(blobs.of(small)).toBe(blobs.of(small));
  });
});
