import { StorageError } from "./errors.js";
import type { ByteRange, PutBody } from "./types.js";

const encoder = new TextEncoder();

export function isStream(body: PutBody): body is ReadableStream<Uint8Array> {
  return typeof body === "object" && body !== null && typeof (body as ReadableStream).getReader === "function";
}

/** Bytes of a non-stream body, without copying when it already is a Uint8Array. */
export function bytesOf(body: Exclude<PutBody, ReadableStream<Uint8Array>>): Uint8Array {
  if (typeof body === "string") return encoder.encode(body);
  if (body instanceof Uint8Array) return body;
  return new Uint8Array(body);
}

/** Reads a whole stream into one buffer; `limit` guards memory for callers that expect small bodies. */
export async function readAll(
  stream: ReadableStream<Uint8Array>,
  options: { limit?: number; driver?: string } = {},
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (options.limit !== undefined && total > options.limit) {
        throw new StorageError("E_INVALID_ARGUMENT", `body is larger than ${options.limit} bytes`, {
          driver: options.driver ?? "storage",
        });
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel(error).catch(() => {});
    throw error;
  } finally {
    reader.releaseLock();
  }
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/**
 * Resolves a requested range against an object's size. Lengths past the end are clipped, as HTTP
 * does; a start at or beyond the end of a non-empty object is `E_RANGE`.
 */
export function resolveRange(
  driver: string,
  key: string,
  range: ByteRange,
  size: number,
): { offset: number; length: number } {
  if ("suffix" in range) {
    if (!Number.isSafeInteger(range.suffix) || range.suffix <= 0) {
      throw new StorageError("E_INVALID_ARGUMENT", `range suffix must be a positive integer`, { driver, key });
    }
    const length = Math.min(range.suffix, size);
    return { offset: size - length, length };
  }
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new StorageError("E_INVALID_ARGUMENT", `range offset must be a non-negative integer`, { driver, key });
  }
  if (length !== undefined && (!Number.isSafeInteger(length) || length <= 0)) {
    throw new StorageError("E_INVALID_ARGUMENT", `range length must be a positive integer`, { driver, key });
  }
  if (offset >= size) {
    throw new StorageError("E_RANGE", `range starts at ${offset} but "${key}" has ${size} bytes`, { driver, key });
  }
  return { offset, length: Math.min(length ?? size - offset, size - offset) };
}

/** A stream over one buffer, handed out in chunks so consumers see the same shape as from disk. */
export function streamOfBytes(bytes: Uint8Array, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) {
        controller.close();
        return;
      }
      const end = Math.min(offset + chunkSize, bytes.byteLength);
      controller.enqueue(bytes.slice(offset, end));
      offset = end;
    },
  });
}

/** A stream of one chunk: the buffer itself, handed over without a copy (the caller gives it up). */
export function streamOfChunk(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

export function normalizeEtag(etag: string): string {
  let value = etag.trim();
  if (value.startsWith("W/")) value = value.slice(2);
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
  return value;
}

export function checkListLimit(driver: string, limit: number | undefined): number {
  if (limit === undefined) return 1000;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new StorageError("E_INVALID_ARGUMENT", `list limit must be an integer from 1 to 1000`, { driver });
  }
  return limit;
}

export function checkPutOptions(
  driver: string,
  key: string,
  options: { ifMatch?: string; ifNoneMatch?: string; size?: number },
): void {
  if (options.ifMatch !== undefined && options.ifNoneMatch !== undefined) {
    throw new StorageError("E_INVALID_ARGUMENT", "ifMatch and ifNoneMatch cannot be combined", { driver, key });
  }
  if (options.ifNoneMatch !== undefined && options.ifNoneMatch !== "*") {
    throw new StorageError("E_INVALID_ARGUMENT", 'ifNoneMatch only accepts "*"', { driver, key });
  }
  if (options.ifMatch !== undefined && (typeof options.ifMatch !== "string" || options.ifMatch === "")) {
    throw new StorageError("E_INVALID_ARGUMENT", "ifMatch must be a non-empty ETag", { driver, key });
  }
  if (options.size !== undefined && (!Number.isSafeInteger(options.size) || options.size < 0)) {
    throw new StorageError("E_INVALID_ARGUMENT", "size must be a non-negative integer", { driver, key });
  }
}
