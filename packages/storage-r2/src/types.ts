/**
 * The storage contract every fw component persists through. Drivers (memory, fs, s3, r2) implement
 * it with the same semantics, so a registry on a laptop folder and one on a Cloudflare R2 bucket behave
 * alike. Keys are `/`-separated paths; see `validateKey` for what is accepted.
 */

/** What may be written: bytes, text (UTF-8), or a Web stream of bytes. */
export type PutBody = Uint8Array | ArrayBuffer | string | ReadableStream<Uint8Array>;

export interface ObjectInfo {
  key: string;
  /**
   * Strong validator of the object's content, without quotes. It changes whenever the content changes
   * and is stable across restarts. Its form is driver-specific: compare it only with ETags from the
   * same driver.
   */
  etag: string;
  size: number;
  lastModified: Date;
  contentType?: string;
  cacheControl?: string;
}

export interface ObjectBytes extends ObjectInfo {
  body: Uint8Array;
}

export interface ObjectStream extends ObjectInfo {
  body: ReadableStream<Uint8Array>;
  /** The part of the object the body holds, when a range was asked for. */
  range?: { offset: number; length: number };
}

export interface RequestOptions {
  signal?: AbortSignal;
}

/** `{offset, length?}` reads from an offset (to the end when no length); `{suffix}` reads the last bytes. */
export type ByteRange = { offset: number; length?: number } | { suffix: number };

export interface StreamOptions extends RequestOptions {
  range?: ByteRange;
}

export interface PutOptions extends RequestOptions {
  /** Write only if the stored object's ETag is this one (compare-and-swap). Missing object fails too. */
  ifMatch?: string;
  /** `"*"`: write only if no object exists under the key (create-only). */
  ifNoneMatch?: "*";
  contentType?: string;
  cacheControl?: string;
  /**
   * Byte length of a stream body when the caller knows it. Lets drivers stream it straight through
   * (S3 PutObject, R2 FixedLengthStream) instead of chunking; a body of another length is an error.
   */
  size?: number;
}

export interface DeleteOptions extends RequestOptions {
  /** Delete only if the stored object's ETag is this one. */
  ifMatch?: string;
}

export interface ListOptions extends RequestOptions {
  prefix?: string;
  /** Opaque position returned by the previous page. */
  cursor?: string;
  /** Objects per page, 1–1000; default 1000. */
  limit?: number;
}

export interface ListPage {
  /** In ascending order of the keys' UTF-8 bytes, like S3. */
  objects: ObjectInfo[];
  /** Present when more objects follow; pass it back as `cursor`. */
  cursor?: string;
}

export interface StorageDriver {
  /** Short name used in error messages: `memory`, `fs`, `s3`, `r2`. */
  readonly name: string;
  /** Metadata of an object, or `null` when it does not exist. */
  head(key: string, options?: RequestOptions): Promise<ObjectInfo | null>;
  /** The whole object in memory, or `null` when it does not exist. Use `stream` for large objects. */
  get(key: string, options?: RequestOptions): Promise<ObjectBytes | null>;
  /** The object (or a byte range of it) as a Web stream, or `null` when it does not exist. */
  stream(key: string, options?: StreamOptions): Promise<ObjectStream | null>;
  /**
   * Writes an object; conditional writes throw `E_PRECONDITION` when the condition fails. Once the
   * returned promise settles the driver holds no reference to `body`: the caller may reuse its memory.
   */
  put(key: string, body: PutBody, options?: PutOptions): Promise<ObjectInfo>;
  /** Deletes an object. Resolves `false` when there was nothing to delete. */
  delete(key: string, options?: DeleteOptions): Promise<boolean>;
  /** One page of the objects whose keys start with `prefix`. */
  list(options?: ListOptions): Promise<ListPage>;
  /** Releases connections, timers and handles. */
  dispose?(): Promise<void>;
}
