import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { expectedDigest, IntegrityError, verifyingStream } from "./integrity.js";

const bytes = new TextEncoder().encode("a tarball's bytes, more or less");
const sha = (algorithm: string, data: Uint8Array = bytes) => createHash(algorithm).update(data).digest("base64");

function chunked(data: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= data.byteLength) return controller.close();
      controller.enqueue(data.slice(offset, offset + size));
      offset += size;
    },
  });
}

/** What a consumer receives before the stream ends or fails. */
async function consume(stream: ReadableStream<Uint8Array>): Promise<{ received: number; error?: unknown }> {
  const reader = stream.getReader();
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { received };
      received += value.byteLength;
    }
  } catch (error) {
    return { received, error };
  }
}

describe("expectedDigest", () => {
  it("takes the strongest algorithm of an SRI string, with every digest listed for it", () => {
    const integrity = `sha1-${sha("sha1")} sha512-${sha("sha512")} sha512-other==?opt`;
    expect(expectedDigest({ integrity })).toEqual({ algorithm: "sha512", digests: [sha("sha512"), "other=="] });
  });

  it("falls back to the hex shasum of old packages, and to nothing", () => {
    const shasum = createHash("sha1").update(bytes).digest("hex");
    expect(expectedDigest({ shasum })).toEqual({ algorithm: "sha1", digests: [sha("sha1")] });
    expect(expectedDigest({ integrity: "md5-abc", shasum: "not hex" })).toBeUndefined();
    expect(expectedDigest(undefined)).toBeUndefined();
  });
});

describe("verifyingStream", () => {
  it("passes matching bytes through whole", async () => {
    const stream = chunked(bytes, 4).pipeThrough(verifyingStream({ algorithm: "sha512", digests: [sha("sha512")] }));
    expect(await consume(stream)).toEqual({ received: bytes.byteLength });
  });

  it("fails a mismatch before the last chunk, so no consumer gets a complete wrong body", async () => {
    const wrong = Uint8Array.from(bytes);
    wrong[3] = (wrong[3] ?? 0) ^ 1;
    const [a, b] = chunked(wrong, 4)
      .pipeThrough(verifyingStream({ algorithm: "sha512", digests: [sha("sha512")] }))
      .tee();
    for (const result of await Promise.all([consume(a), consume(b)])) {
      expect(result.error).toBeInstanceOf(IntegrityError);
      expect(result.received).toBeLessThan(wrong.byteLength);
    }
  });

  it("fails an empty body that should have had bytes", async () => {
    const result = await consume(
      chunked(new Uint8Array(0), 4).pipeThrough(verifyingStream({ algorithm: "sha1", digests: [sha("sha1")] })),
    );
    expect(result.error).toBeInstanceOf(IntegrityError);
  });
});
