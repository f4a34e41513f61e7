import { isStorageError, StorageError } from "./errors.js";
import type { ObjectInfo, StorageDriver } from "./types.js";

/** How a document is turned into bytes and back. */
export interface Codec<T> {
  /** The stored form; a stream for documents too large to hold as one buffer (written as it is made). */
  encode(value: T): Uint8Array | string | ReadableStream<Uint8Array>;
  decode(bytes: Uint8Array): T;
  /**
   * Reads a document from a stream instead of whole bytes (`size`: its stored size). When given,
   * `casUpdate` streams the documents it reads, so a large one is never held as bytes and value at once.
   */
  decodeStream?(body: ReadableStream<Uint8Array>, size: number): Promise<T>;
  /**
   * Called with an `encode` result once the write of it settled (written or refused): drivers keep no
   * reference to a body after `put` settles, so a codec may reuse the memory for a later document.
   */
  release?(encoded: Uint8Array | string | ReadableStream<Uint8Array>): void;
  contentType: string;
}

const decoder = new TextDecoder();

export const jsonCodec: Codec<unknown> = {
  encode: (value) => JSON.stringify(value),
  decode: (bytes) => JSON.parse(decoder.decode(bytes)),
  contentType: "application/json",
};

/**
 * Receives the current document (`null` when missing) and returns the next one, or `undefined` to
 * leave it as it is. It may run several times when writers race, so it must not have side effects.
 */
export type CasUpdater<T> = (current: T | null, info: ObjectInfo | null) => T | undefined | Promise<T | undefined>;

export interface CasOptions<T> {
  /** Defaults to JSON. */
  codec?: Codec<T>;
  /** Read–update–write rounds before giving up with `E_PRECONDITION`. Default 30: dozens of writers may race on one hot document. */
  maxAttempts?: number;
  /** First back-off ceiling in ms; doubles each round (full jitter), capped at 1 s. Default 4. */
  baseDelayMs?: number;
  cacheControl?: string;
  signal?: AbortSignal;
  /**
   * A copy of the document the caller already holds (from a cache) and its ETag: the first round
   * starts from it instead of reading storage. A stale copy only costs one failed conditional write.
   * The updater must not mutate it.
   */
  initial?: { value: T; etag: string };
}

export interface CasResult<T> {
  value: T | null;
  info: ObjectInfo | null;
  /** Whether this call wrote a new version. */
  written: boolean;
  attempts: number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Read → update → conditional write, retried with jittered back-off when another writer got there
 * first. Creation uses `ifNoneMatch: "*"` and updates `ifMatch`, so no acknowledged change is lost
 * even across processes and replicas that share the backend.
 */
export async function casUpdate<T = unknown>(
  driver: StorageDriver,
  key: string,
  update: CasUpdater<T>,
  options: CasOptions<T> = {},
): Promise<CasResult<T>> {
  const codec = (options.codec ?? jsonCodec) as Codec<T>;
  const maxAttempts = options.maxAttempts ?? 30;
  const baseDelay = options.baseDelayMs ?? 4;
  const { signal } = options;
  let lastError: unknown;
  let initial = options.initial;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    if (initial) {
      const { value, etag } = initial;
      initial = undefined;
      const next = await update(value, { key, etag, size: -1, lastModified: new Date(0) });
      if (next === undefined) return { value, info: null, written: false, attempts: attempt };
      const encoded = codec.encode(next);
      try {
        const written = await driver.put(key, encoded, {
          ifMatch: etag,
          contentType: codec.contentType,
          cacheControl: options.cacheControl,
          signal,
        });
        return { value: next, info: written, written: true, attempts: attempt };
      } catch (error) {
        if (!isStorageError(error, "E_PRECONDITION")) throw error;
        lastError = error;
        continue;
      } finally {
        codec.release?.(encoded);
      }
    }
    const current = await read(driver, key, codec, signal);
    let value: T | null = null;
    if (current) {
      try {
        value = await current.decode();
      } catch (cause) {
        throw new StorageError("E_INTERNAL", `document "${key}" cannot be decoded`, {
          driver: driver.name,
          key,
          cause,
        });
      }
    }
    const info = current?.info ?? null;
    const next = await update(value, info);
    if (next === undefined) return { value, info, written: false, attempts: attempt };
    const encoded = codec.encode(next);
    try {
      const written = await driver.put(key, encoded, {
        ...(info ? { ifMatch: info.etag } : { ifNoneMatch: "*" }),
        contentType: codec.contentType,
        cacheControl: options.cacheControl,
        signal,
      });
      return { value: next, info: written, written: true, attempts: attempt };
    } catch (error) {
      if (!isStorageError(error, "E_PRECONDITION")) throw error;
      lastError = error;
    } finally {
      codec.release?.(encoded);
    }
    if (attempt < maxAttempts) {
      const ceiling = Math.min(1000, baseDelay * 2 ** (attempt - 1));
      await sleep(Math.random() * ceiling, signal);
    }
  }
  throw new StorageError("E_PRECONDITION", `gave up updating "${key}" after ${maxAttempts} conflicting attempts`, {
    driver: driver.name,
    key,
    cause: lastError,
    retryable: true,
  });
}

/** The stored document's info and a way to decode it, read whole or as a stream as the codec prefers. */
async function read<T>(
  driver: StorageDriver,
  key: string,
  codec: Codec<T>,
  signal: AbortSignal | undefined,
): Promise<{ info: ObjectInfo; decode(): T | Promise<T> } | null> {
  const { decodeStream } = codec;
  if (decodeStream) {
    const object = await driver.stream(key, { signal });
    if (!object) return null;
    const { body, range: _range, ...info } = object;
    return { info, decode: () => decodeStream(body, info.size) };
  }
  const object = await driver.get(key, { signal });
  if (!object) return null;
  const { body, ...info } = object;
  return { info, decode: () => codec.decode(body) };
}
