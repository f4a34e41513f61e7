import { bytesOf, checkListLimit, checkPutOptions, isStream, normalizeEtag, resolveRange } from "../body.js";
import { abortError, checkAborted, StorageError, type StorageErrorCode } from "../errors.js";
import { MAX_KEY_BYTES, validateKey, validatePrefix } from "../keys.js";
import type {
  DeleteOptions,
  ListOptions,
  ListPage,
  ObjectBytes,
  ObjectInfo,
  ObjectStream,
  PutBody,
  PutOptions,
  RequestOptions,
  StorageDriver,
  StreamOptions,
} from "../types.js";

/*
 * The subset of the Workers R2 binding this driver uses, written out so that users of the driver do not
 * need @cloudflare/workers-types in their own types. The runtime's `R2Bucket` is assignable to it.
 */

export interface R2HttpMetadataLike {
  contentType?: string;
  cacheControl?: string;
}

export interface R2ObjectLike {
  readonly key: string;
  readonly size: number;
  /** Unquoted, unlike `httpEtag`. */
  readonly etag: string;
  readonly uploaded: Date;
  readonly httpMetadata?: R2HttpMetadataLike;
}

export interface R2ObjectBodyLike extends R2ObjectLike {
  readonly body: ReadableStream<Uint8Array>;
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface R2ConditionalLike {
  etagMatches?: string;
  etagDoesNotMatch?: string;
}

export interface R2UploadedPartLike {
  partNumber: number;
  etag: string;
}

export interface R2MultipartUploadLike {
  uploadPart(partNumber: number, value: Uint8Array): Promise<R2UploadedPartLike>;
  abort(): Promise<void>;
  complete(uploadedParts: R2UploadedPartLike[]): Promise<R2ObjectLike>;
}

export interface R2BucketLike {
  head(key: string): Promise<R2ObjectLike | null>;
  get(
    key: string,
    options?: { onlyIf?: R2ConditionalLike; range?: { offset: number; length: number } },
  ): Promise<R2ObjectBodyLike | R2ObjectLike | null>;
  put(
    key: string,
    value: ReadableStream<Uint8Array> | Uint8Array,
    options?: { onlyIf?: R2ConditionalLike; httpMetadata?: R2HttpMetadataLike },
  ): Promise<R2ObjectLike | null>;
  createMultipartUpload(key: string, options?: { httpMetadata?: R2HttpMetadataLike }): Promise<R2MultipartUploadLike>;
  delete(key: string): Promise<void>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<{
    objects: R2ObjectLike[];
    truncated: boolean;
    cursor?: string;
  }>;
}

export interface R2DriverOptions {
  /**
   * Folder inside the bucket that holds this driver's objects (`"registry"` and `"registry/"` are the
   * same). Keys are stored as `<prefix>/<key>`, listed without it, and cannot reach outside it. R2's
   * 1024-byte limit applies to the whole stored key, so the prefix shortens the longest key accepted.
   * Default: the bucket root.
   */
  prefix?: string;
  /**
   * Part size for streams of unknown length, in bytes; at least 5 MiB (R2's minimum part size).
   * A stream that ends within the first part is buffered and stored with one conditional `put`; a
   * longer one becomes a multipart upload, holding at most two parts in memory (one uploading, one
   * filling). Larger parts mean fewer requests and more memory; a Worker has 128 MB in all.
   * Default: 8 MiB.
   */
  multipartPartSize?: number;
}

const NAME = "r2";
const MiB = 1024 * 1024;
const MIN_PART_SIZE = 5 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const DEFAULT_PART_SIZE = 8 * MiB;
const MAX_PARTS = 10_000;
/** R2's limit for one `put`; a declared size above it goes through multipart. */
const MAX_SINGLE_PUT = 5 * 1024 * MiB - 5 * MiB;
/** Reads of a range retried when the object keeps changing between the HEAD and the GET. */
const RANGE_ATTEMPTS = 3;

const encoder = new TextEncoder();

/*
 * R2 binding errors carry their code at the end of the message ("put: … (10020)"); some runtimes also
 * set a numeric `code`. Codes from https://developers.cloudflare.com/r2/api/error-codes/.
 */
const ERROR_CODES: Record<number, StorageErrorCode> = {
  10001: "E_UNAVAILABLE",
  10002: "E_PERMISSION",
  10003: "E_PERMISSION",
  10011: "E_INVALID_ARGUMENT",
  10012: "E_INVALID_ARGUMENT",
  10020: "E_INVALID_KEY",
  10022: "E_INVALID_ARGUMENT",
  10029: "E_INVALID_ARGUMENT",
  10031: "E_PRECONDITION",
  10039: "E_RANGE",
  10043: "E_UNAVAILABLE",
  10058: "E_UNAVAILABLE",
  100100: "E_INVALID_ARGUMENT",
};
/** Failures of the connection to R2 rather than of the request, which carry no R2 code. */
const TRANSIENT = /network connection lost|disconnected|internal error|timed? ?out|overloaded|try again/i;

function r2Code(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === "number") return code;
  const match = typeof message === "string" ? /\((\d{5,6})\)\s*$/.exec(message) : null;
  return match ? Number(match[1]) : undefined;
}

function translate(operation: string, key: string | undefined, error: unknown, signal?: AbortSignal): StorageError {
  if (error instanceof StorageError) return error;
  if (signal?.aborted) return abortError(NAME, key, signal);
  const message = error instanceof Error ? error.message : String(error);
  const known = r2Code(error);
  const code =
    (known !== undefined ? ERROR_CODES[known] : undefined) ??
    (TRANSIENT.test(message) ? "E_UNAVAILABLE" : "E_INTERNAL");
  const target = key === undefined ? "" : ` "${key}"`;
  return new StorageError(code, `${operation}${target} failed: ${message}`, {
    driver: NAME,
    key,
    cause: error,
    retryable: code === "E_UNAVAILABLE" || code === "E_PRECONDITION",
  });
}

async function call<T>(
  operation: string,
  key: string | undefined,
  signal: AbortSignal | undefined,
  run: () => Promise<T>,
) {
  try {
    return await run();
  } catch (error) {
    throw translate(operation, key, error, signal);
  }
}

function infoOf(key: string, object: R2ObjectLike): ObjectInfo {
  const { contentType, cacheControl } = object.httpMetadata ?? {};
  return {
    key,
    etag: object.etag,
    size: object.size,
    lastModified: new Date(object.uploaded.getTime()),
    ...(contentType !== undefined && { contentType }),
    ...(cacheControl !== undefined && { cacheControl }),
  };
}

function hasBody(object: R2ObjectBodyLike | R2ObjectLike): object is R2ObjectBodyLike {
  return "body" in object;
}

/** `found` is unknown (`undefined`) when R2 itself refused a conditional `put`. */
function preconditionFailed(key: string, options: PutOptions | DeleteOptions, found?: boolean): StorageError {
  if ("ifNoneMatch" in options && options.ifNoneMatch === "*") {
    return new StorageError("E_PRECONDITION", `"${key}" already exists`, { driver: NAME, key, retryable: false });
  }
  const state = found === undefined ? "has changed or does not exist" : found ? "has changed" : "does not exist";
  return new StorageError("E_PRECONDITION", `"${key}" ${state}`, { driver: NAME, key, retryable: true });
}

/** R2 answers a failed `onlyIf` with `null`; should it throw instead, the same rules apply. */
function refused(key: string, options: PutOptions, error: StorageError): StorageError {
  return error.code === "E_PRECONDITION" ? preconditionFailed(key, options) : error;
}

function wrongSize(key: string, seen: string | number, declared: number): StorageError {
  return new StorageError("E_INVALID_ARGUMENT", `body has ${seen} bytes, not ${declared}`, { driver: NAME, key });
}

function chunkBytes(key: string, chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  throw new StorageError("E_INVALID_ARGUMENT", "stream body must yield bytes", { driver: NAME, key });
}

type FixedLengthStreamConstructor = new (expectedLength: number) => TransformStream<Uint8Array, Uint8Array>;

/** Only workerd has it; elsewhere (a binding proxied into Node) sized streams take the chunked path. */
function fixedLengthStream(): FixedLengthStreamConstructor | undefined {
  return (globalThis as { FixedLengthStream?: FixedLengthStreamConstructor }).FixedLengthStream;
}

/**
 * Cuts a stream into parts of exactly `partSize` bytes (R2 wants every part but the last to have the
 * same size), holding one part and at most one leftover chunk.
 */
function partReader(key: string, reader: ReadableStreamDefaultReader<Uint8Array>, partSize: number) {
  let carry: Uint8Array | undefined;
  let ended = false;
  let total = 0;

  async function pull(): Promise<void> {
    while (carry === undefined && !ended) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else if (value.byteLength > 0) carry = chunkBytes(key, value);
    }
  }

  return {
    get total() {
      return total;
    },
    /** The next part, or `undefined` when the stream has ended. */
    async next(): Promise<Uint8Array | undefined> {
      await pull();
      if (carry === undefined) return undefined;
      const part = new Uint8Array(partSize);
      let filled = 0;
      while (filled < partSize) {
        await pull();
        if (carry === undefined) break;
        const take = Math.min(carry.byteLength, partSize - filled);
        part.set(take === carry.byteLength ? carry : carry.subarray(0, take), filled);
        carry = take === carry.byteLength ? undefined : carry.subarray(take);
        filled += take;
      }
      total += filled;
      return filled === partSize ? part : part.slice(0, filled);
    },
    /** Whether nothing follows what was read so far; reads ahead by one chunk to find out. */
    async atEnd(): Promise<boolean> {
      await pull();
      return carry === undefined;
    },
  };
}

/**
 * A `StorageDriver` over a Workers R2 bucket binding (`env.BUCKET`). Runs inside workerd; it uses Web
 * APIs only.
 *
 * Conditional writes of bytes, of streams with a declared `size`, and of streams that fit in one part
 * are atomic: R2 evaluates `onlyIf` (`etagMatches` / `etagDoesNotMatch: "*"`) on the `put` itself.
 *
 * Windows that remain, because the binding has no condition on these calls:
 * - **Multipart writes** (streams of unknown length longer than `multipartPartSize`, or a declared size
 *   above R2's single-`put` limit): the condition is checked with a HEAD before the upload starts and
 *   again right before `complete()`. A writer that creates or replaces the object between that last HEAD
 *   and `complete()` (one round trip) is overwritten. A failed check aborts the upload.
 * - **`delete` with `ifMatch`**: HEAD, compare, then delete. A version written between the two calls
 *   (one round trip) is deleted although its ETag differs. Without `ifMatch`, `delete` answers `true`
 *   when the object existed at its HEAD, so two racing deletes may both answer `true`.
 */
export function r2Driver(bucket: R2BucketLike, options: R2DriverOptions = {}): StorageDriver {
  const root = rootOf(options.prefix);
  const partSize = options.multipartPartSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    const message = `multipartPartSize must be an integer from ${MIN_PART_SIZE} to ${MAX_PART_SIZE}`;
    throw new StorageError("E_INVALID_ARGUMENT", message, { driver: NAME });
  }

  function stored(key: string): string {
    validateKey(NAME, key);
    if (root === "") return key;
    const full = root + key;
    if (encoder.encode(full).byteLength > MAX_KEY_BYTES) {
      throw new StorageError(
        "E_INVALID_KEY",
        `key ${JSON.stringify(key.slice(0, 80))} is longer than ${MAX_KEY_BYTES} bytes with the root prefix "${root}"`,
        { driver: NAME },
      );
    }
    return full;
  }

  function putOptions(options: PutOptions) {
    const onlyIf: R2ConditionalLike | undefined =
      options.ifNoneMatch === "*"
        ? { etagDoesNotMatch: "*" }
        : options.ifMatch !== undefined
          ? { etagMatches: normalizeEtag(options.ifMatch) }
          : undefined;
    return { ...(onlyIf && { onlyIf }), httpMetadata: httpMetadataOf(options) };
  }

  /** The HEAD-based check of the multipart path; the single-`put` paths let R2 decide atomically. */
  async function checkCondition(full: string, key: string, options: PutOptions): Promise<void> {
    if (options.ifNoneMatch === undefined && options.ifMatch === undefined) return;
    checkAborted(NAME, key, options.signal);
    const existing = await call("head", key, options.signal, () => bucket.head(full));
    if (options.ifNoneMatch === "*" ? existing !== null : existing?.etag !== normalizeEtag(options.ifMatch ?? "")) {
      throw preconditionFailed(key, options, existing !== null);
    }
  }

  async function putOnce(full: string, key: string, value: Uint8Array, options: PutOptions): Promise<ObjectInfo> {
    checkAborted(NAME, key, options.signal);
    let result: R2ObjectLike | null;
    try {
      result = await bucket.put(full, value, putOptions(options));
    } catch (error) {
      throw refused(key, options, translate("put", key, error, options.signal));
    }
    if (result === null) throw preconditionFailed(key, options);
    return infoOf(key, result);
  }

  /** A stream of declared length, piped through a FixedLengthStream so R2 can take it without buffering. */
  async function putSized(
    full: string,
    key: string,
    body: ReadableStream<Uint8Array>,
    size: number,
    Fixed: FixedLengthStreamConstructor,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    // The body's own failure (wrong length, not bytes, the caller's stream erroring) explains a failed
    // `put` better than the binding's "stream ended early", so it is recorded where it happens.
    let bodyError: unknown;
    let seen = 0;
    const reader = body.getReader();
    const source = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            if (seen !== size) throw wrongSize(key, seen, size);
            controller.close();
            return;
          }
          const bytes = chunkBytes(key, value);
          seen += bytes.byteLength;
          if (seen > size) throw wrongSize(key, `more than ${size}`, size);
          controller.enqueue(bytes);
        } catch (error) {
          bodyError = error;
          await reader.cancel(error).catch(() => {});
          throw error;
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    const fixed = new Fixed(size);
    // Stops the pipe when R2 answers before reading the whole body (a failed condition, an error).
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const piped = source.pipeTo(fixed.writable, { signal }).catch(() => {});
    let result: R2ObjectLike | null;
    try {
      result = await bucket.put(full, fixed.readable, putOptions(options));
    } catch (error) {
      stop.abort();
      await piped;
      if (options.signal?.aborted) throw abortError(NAME, key, options.signal);
      if (bodyError !== undefined) throw bodyError;
      throw refused(key, options, translate("put", key, error, options.signal));
    }
    stop.abort();
    await piped;
    if (result === null) throw preconditionFailed(key, options);
    return infoOf(key, result);
  }

  /**
   * A stream of unknown length (or too long for one `put`): buffered up to one part and stored with a
   * single conditional `put` when it ends there, otherwise uploaded in parts while it is read.
   */
  async function putChunked(
    full: string,
    key: string,
    body: ReadableStream<Uint8Array>,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const { size, signal } = options;
    const reader = body.getReader();
    const parts = partReader(key, reader, partSize);
    let upload: R2MultipartUploadLike | undefined;
    // One part uploads while the next is read: throughput of a pipeline, memory of two parts.
    let inflight: Promise<R2UploadedPartLike> | undefined;
    try {
      checkAborted(NAME, key, signal);
      const first = (await parts.next()) ?? new Uint8Array(0);
      if (await parts.atEnd()) {
        if (size !== undefined && parts.total !== size) throw wrongSize(key, parts.total, size);
        return await putOnce(full, key, first, options);
      }

      // Fail before uploading a large body that could never be stored.
      await checkCondition(full, key, options);
      checkAborted(NAME, key, signal);
      const created = await call("createMultipartUpload", key, signal, () =>
        bucket.createMultipartUpload(full, { httpMetadata: httpMetadataOf(options) }),
      );
      upload = created;
      const uploaded: R2UploadedPartLike[] = [];
      let partNumber = 0;
      for (let part: Uint8Array | undefined = first; part !== undefined; part = await parts.next()) {
        if (size !== undefined && parts.total > size) throw wrongSize(key, `more than ${size}`, size);
        if (++partNumber > MAX_PARTS) {
          throw new StorageError("E_INVALID_ARGUMENT", `body needs more than ${MAX_PARTS} parts of ${partSize} bytes`, {
            driver: NAME,
            key,
          });
        }
        if (inflight) uploaded.push(await inflight);
        checkAborted(NAME, key, signal);
        const bytes = part;
        const number = partNumber;
        inflight = call("uploadPart", key, signal, () => created.uploadPart(number, bytes));
        // Awaited on the next round or below; this only keeps an early failure from going unhandled.
        inflight.catch(() => {});
      }
      if (inflight) uploaded.push(await inflight);
      inflight = undefined;
      if (size !== undefined && parts.total !== size) throw wrongSize(key, parts.total, size);

      await checkCondition(full, key, options);
      checkAborted(NAME, key, signal);
      const result = await call("completeMultipartUpload", key, signal, () => created.complete(uploaded));
      upload = undefined;
      return infoOf(key, result);
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      const failed = upload;
      if (failed) {
        // Let a part still uploading finish first, so the abort leaves no part behind.
        await inflight?.catch(() => {});
        await failed.abort().catch(() => {});
      }
      // Binding failures arrive translated; anything else is the caller's stream failing, passed on.
      if (!(error instanceof StorageError) && signal?.aborted) throw abortError(NAME, key, signal);
      throw error;
    } finally {
      reader.releaseLock();
    }
  }

  return {
    name: NAME,

    async head(key: string, options: RequestOptions = {}): Promise<ObjectInfo | null> {
      const full = stored(key);
      checkAborted(NAME, key, options.signal);
      const object = await call("head", key, options.signal, () => bucket.head(full));
      return object ? infoOf(key, object) : null;
    },

    async get(key: string, options: RequestOptions = {}): Promise<ObjectBytes | null> {
      const full = stored(key);
      checkAborted(NAME, key, options.signal);
      return call("get", key, options.signal, async () => {
        const object = await bucket.get(full);
        if (object === null || !hasBody(object)) return null;
        checkAborted(NAME, key, options.signal);
        return { ...infoOf(key, object), body: new Uint8Array(await object.arrayBuffer()) };
      });
    },

    async stream(key: string, options: StreamOptions = {}): Promise<ObjectStream | null> {
      const full = stored(key);
      checkAborted(NAME, key, options.signal);
      const { range: wanted, signal } = options;
      if (!wanted) {
        const object = await call("get", key, signal, () => bucket.get(full));
        return object && hasBody(object) ? { ...infoOf(key, object), body: object.body } : null;
      }
      // The size is needed to resolve the range (and to answer E_RANGE like every driver); the GET is
      // conditional on the HEAD's ETag so that the range and the bytes come from the same version.
      for (let attempt = 1; ; attempt++) {
        checkAborted(NAME, key, signal);
        const head = await call("head", key, signal, () => bucket.head(full));
        if (head === null) return null;
        const range = resolveRange(NAME, key, wanted, head.size);
        checkAborted(NAME, key, signal);
        const object = await call("get", key, signal, () =>
          bucket.get(full, {
            onlyIf: { etagMatches: head.etag },
            // An empty object has no byte to start a range at; R2 refuses one, so read it whole.
            ...(range.length > 0 && { range }),
          }),
        );
        if (object === null) return null;
        if (hasBody(object)) return { ...infoOf(key, object), body: object.body, range };
        if (attempt >= RANGE_ATTEMPTS) {
          throw new StorageError("E_UNAVAILABLE", `"${key}" kept changing while a range of it was read`, {
            driver: NAME,
            key,
          });
        }
      }
    },

    async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
      const full = stored(key);
      checkPutOptions(NAME, key, options);
      checkAborted(NAME, key, options.signal);
      if (!isStream(body)) {
        const bytes = bytesOf(body);
        if (options.size !== undefined && bytes.byteLength !== options.size) {
          throw wrongSize(key, bytes.byteLength, options.size);
        }
        return putOnce(full, key, bytes, options);
      }
      const Fixed = fixedLengthStream();
      if (options.size !== undefined && options.size <= MAX_SINGLE_PUT && Fixed) {
        return putSized(full, key, body, options.size, Fixed, options);
      }
      return putChunked(full, key, body, options);
    },

    async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
      const full = stored(key);
      checkAborted(NAME, key, options.signal);
      const existing = await call("head", key, options.signal, () => bucket.head(full));
      if (options.ifMatch !== undefined && existing?.etag !== normalizeEtag(options.ifMatch)) {
        throw preconditionFailed(key, options, existing !== null);
      }
      if (existing === null) return false;
      checkAborted(NAME, key, options.signal);
      await call("delete", key, options.signal, () => bucket.delete(full));
      return true;
    },

    async list(options: ListOptions = {}): Promise<ListPage> {
      const prefix = validatePrefix(NAME, options.prefix);
      const limit = checkListLimit(NAME, options.limit);
      checkAborted(NAME, undefined, options.signal);
      const { cursor } = options;
      if (cursor !== undefined && (typeof cursor !== "string" || cursor === "")) {
        throw new StorageError("E_INVALID_ARGUMENT", "list cursor is not one this driver returned", { driver: NAME });
      }
      const full = root + prefix;
      // No stored key can be longer, and R2 would refuse the prefix.
      if (encoder.encode(full).byteLength > MAX_KEY_BYTES) return { objects: [] };
      // No `include`: with metadata R2 may return short pages, and callers page by `limit`.
      const page = await call("list", undefined, options.signal, () =>
        bucket.list({ prefix: full, limit, ...(cursor !== undefined && { cursor }) }),
      );
      const objects = page.objects.map((object) => infoOf(object.key.slice(root.length), object));
      return page.truncated && page.cursor ? { objects, cursor: page.cursor } : { objects };
    },
  };
}

function httpMetadataOf(options: PutOptions): R2HttpMetadataLike {
  return {
    ...(options.contentType !== undefined && { contentType: options.contentType }),
    ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
  };
}

function rootOf(prefix: string | undefined): string {
  if (prefix === undefined || prefix === "") return "";
  const folder = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  try {
    validateKey(NAME, folder);
  } catch (error) {
    // The cause says which rule the prefix breaks.
    throw new StorageError("E_INVALID_KEY", `root prefix ${JSON.stringify(prefix)} is not a valid folder`, {
      driver: NAME,
      cause: error,
    });
  }
  // The folder, its slash and a one-byte key must fit; longer keys are checked one by one in `stored`.
  if (encoder.encode(folder).byteLength + 2 > MAX_KEY_BYTES) {
    throw new StorageError("E_INVALID_KEY", "root prefix leaves no room for keys", { driver: NAME });
  }
  return `${folder}/`;
}
