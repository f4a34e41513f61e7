import { randomUUID } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  type CompletedPart,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type PutObjectCommandInput,
  S3Client,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { bytesOf, checkListLimit, checkPutOptions, isStream, normalizeEtag, resolveRange } from "../body.js";
import { abortError, checkAborted, StorageError, type StorageErrorCode } from "../errors.js";
import { MAX_KEY_BYTES, validateKey, validatePrefix } from "../keys.js";
import type {
  ByteRange,
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

const NAME = "s3";
const MiB = 1024 * 1024;
/** S3's smallest part (all but the last), its largest single PUT, and its most parts per upload. */
const MIN_PART_BYTES = 5 * MiB;
const MAX_SINGLE_PUT_BYTES = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const encoder = new TextEncoder();

export interface S3DriverOptions {
  bucket: string;
  /**
   * Where the S3 API is, e.g. `https://<account>.r2.cloudflarestorage.com` or a Ceph RGW. Default: AWS
   * S3 for `region`.
   */
  endpoint?: string;
  /** Signing region. Default `"us-east-1"`, which S3-compatible servers accept; R2 documents `"auto"`. */
  region?: string;
  /** Default: the AWS SDK's provider chain (environment, shared files, instance metadata). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /**
   * Address the bucket as `endpoint/bucket/key` instead of `bucket.endpoint/key`. Default `false`;
   * Ceph, MinIO and other servers without wildcard DNS need `true`.
   */
  forcePathStyle?: boolean;
  /**
   * Folder inside the bucket that this driver owns: every key is stored under it, listings strip it,
   * and no key can leave it. Default: the bucket's root. Several registries (or tests) can share a
   * bucket this way, at a cost: S3 limits the whole stored key to 1024 bytes, so the prefix's bytes are
   * taken from the room left for keys.
   */
  prefix?: string;
  /** Milliseconds to wait for a TCP connection. Default 5,000. */
  connectTimeoutMs?: number;
  /**
   * Milliseconds a request may go without the server sending or accepting a byte. Default 30,000. It
   * is an idle limit, not a total one, so a slow 1 GB upload is not cut off while it makes progress;
   * a server that accepts connections and then says nothing fails after this long (per attempt).
   */
  idleTimeoutMs?: number;
  /**
   * Tries per request, counting the first; throttling, 5xx, timeouts and network errors are retried
   * with the SDK's jittered exponential back-off. Default 3. Worst case before `E_UNAVAILABLE` is about
   * `maxAttempts × (connectTimeoutMs or idleTimeoutMs)` plus back-off. Streamed single PUTs cannot be
   * replayed, so the SDK tries them once.
   */
  maxAttempts?: number;
  /**
   * Stream bodies of known `size` up to this many bytes go out as one streamed PutObject. Larger or
   * unsized ones are read a part at a time: one that ends within its first part is sent as a single
   * PutObject, a longer one as a multipart upload. Default 16 MiB. A streamed PUT is one round trip
   * but cannot be retried; a multipart upload retries each part and sends `queueSize` parts at once.
   */
  multipartThreshold?: number;
  /**
   * Bytes per multipart part. Default 5 MiB, S3's minimum (and the AWS SDK's `Upload` default). Memory
   * per upload is about `partSize × (queueSize + 1)`, 25 MiB by default; an object can have at most
   * 10,000 parts, so 5 MiB parts cap unsized streams at 48.8 GiB. Raise it for bigger objects.
   */
  partSize?: number;
  /** Parts uploaded at once. Default 4: faster uploads cost `partSize` of memory each. */
  queueSize?: number;
  /**
   * Folder for temporary files. Default `os.tmpdir()`. A conditional write of a stream that is too
   * big for one part and has no declared `size` is staged here first (see `put`).
   */
  spoolDirectory?: string;
  /**
   * An S3 client to use instead of building one; `endpoint`, `region`, `credentials`, `forcePathStyle`,
   * the timeouts and `maxAttempts` are then ignored, and `dispose` leaves the client to its owner. It
   * must not compute CRC checksums on requests (`requestChecksumCalculation: "WHEN_REQUIRED"`): the
   * chunked uploads that needs are refused by Ceph 16 and other S3-compatible servers.
   */
  client?: S3Client;
}

/** How this endpoint wants the ETag in a conditional write's `If-Match`: see `conditional`. */
type EtagForm = "unknown" | "quoted" | "unquoted";

interface Settings {
  bucket: string;
  root: string;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxAttempts: number;
  multipartThreshold: number;
  partSize: number;
  queueSize: number;
  spoolDirectory: string;
}

/**
 * Stores objects in an S3-compatible bucket: Cloudflare R2 (through its S3 API), AWS S3, Ceph RGW,
 * MinIO. Conditional writes are sent as real `If-Match` / `If-None-Match` headers on a single
 * PutObject, so compare-and-swap holds across processes and machines that share the bucket; a
 * conditional stream too big for one part is staged on disk to keep it a single PutObject (see
 * `spoolDirectory`). Conditional deletes are checked with a HEAD first and are only atomic where the
 * server honours `If-Match` on DeleteObject, which Ceph 16 does not (see `delete`).
 */
export function s3Driver(options: S3DriverOptions): StorageDriver {
  const settings = checkOptions(options);
  const { bucket, root } = settings;
  const owned = options.client === undefined;
  const client = options.client ?? createClient(options, settings);
  let etagForm: EtagForm = "unknown";

  function storedKey(key: string): string {
    const stored = root + key;
    if (root !== "" && encoder.encode(stored).byteLength > MAX_KEY_BYTES) {
      const room = MAX_KEY_BYTES - encoder.encode(root).byteLength;
      const shown = key.length > 80 ? `${key.slice(0, 80)}…` : key;
      throw new StorageError("E_INVALID_KEY", `key "${shown}" is longer than the ${room} bytes left under "${root}"`, {
        driver: NAME,
        key,
      });
    }
    return stored;
  }

  async function headStored(stored: string, signal: AbortSignal | undefined): Promise<ObjectInfo | null> {
    try {
      const out = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: stored }), { abortSignal: signal });
      return infoOf(stored.slice(root.length), out.ETag, out.ContentLength, out);
    } catch (error) {
      if (isMissing(error)) return null;
      throw error;
    }
  }

  /**
   * Sends a write with `If-Match` in the form this endpoint accepts. RFC 9110, AWS S3 and R2 take the
   * quoted ETag; Ceph 16's RGW compares the header byte for byte with its unquoted ETag and answers 412
   * to the quoted form even when it matches. So the quoted form goes first; on a 412 a HEAD tells a
   * real conflict from the quirk, and in the latter case the write is repeated unquoted and the driver
   * remembers the endpoint's preference. Only PutObject teaches it: Ceph 16 ignores `If-Match` on
   * DeleteObject, so a delete that succeeds proves nothing. `send` must be safe to call twice.
   */
  async function conditional<T>(
    stored: string,
    expected: string | undefined,
    send: (ifMatch: string | undefined) => Promise<T>,
    learn: boolean,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    if (expected === undefined) return send(undefined);
    const form = etagForm;
    try {
      const out = await send(form === "unquoted" ? expected : `"${expected}"`);
      if (learn && form === "unknown") etagForm = "quoted";
      return out;
    } catch (error) {
      if (form !== "unknown" || statusOf(error) !== 412) throw error;
      const current = await headStored(stored, signal);
      if (current?.etag !== expected) throw error;
      const out = await send(expected);
      if (learn) etagForm = "unquoted";
      return out;
    }
  }

  /** One PutObject. `body` is called again when the write must be repeated (see `conditional`). */
  async function putOnce(
    key: string,
    stored: string,
    body: () => PutObjectCommandInput["Body"],
    length: number,
    options: PutOptions,
    signal: AbortSignal | undefined,
  ): Promise<ObjectInfo> {
    const expected = options.ifMatch === undefined ? undefined : normalizeEtag(options.ifMatch);
    const out = await conditional(
      stored,
      expected,
      (ifMatch) =>
        client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: stored,
            Body: body(),
            // Also for bytes: without it the SDK warns about "a Stream of unknown length" on empty bodies.
            ContentLength: length,
            ContentType: options.contentType,
            CacheControl: options.cacheControl,
            IfMatch: ifMatch,
            IfNoneMatch: options.ifNoneMatch,
          }),
          { abortSignal: signal },
        ),
      true,
      signal,
    );
    return {
      key,
      etag: etagOf(key, out.ETag),
      size: length,
      lastModified: new Date(),
      ...(options.contentType !== undefined && { contentType: options.contentType }),
      ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
    };
  }

  /** A stream of declared length, straight through one PutObject: nothing is buffered. */
  async function putStreamed(
    key: string,
    stored: string,
    reader: ReadableStreamDefaultReader<Uint8Array>,
    size: number,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const body = exactLength(key, reader, size, (reason) => stop.abort(reason));
    try {
      return await putOnce(key, stored, () => body, size, options, signal);
    } catch (error) {
      // A body of the wrong length (or a failing source) aborted the request: report why, not the abort.
      if (stop.signal.aborted) throw stop.signal.reason;
      throw error;
    }
  }

  /**
   * Conditional writes of big unsized streams land in a temporary file first and then go out as one
   * PutObject from it, because a single PUT is the only write whose conditions every server enforces:
   * Ceph 16 ignores `If-Match` and `If-None-Match` on CompleteMultipartUpload (and on CopyObject),
   * which would let such a write silently replace a newer version. The file also makes the body
   * replayable for the `If-Match` form retry. Memory stays at one part; disk holds the object briefly.
   */
  async function putSpooled(
    key: string,
    stored: string,
    pieces: Pieces,
    first: Buffer,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const path = join(settings.spoolDirectory, `fw-s3-${randomUUID()}`);
    const file = await open(path, "wx", 0o600);
    try {
      try {
        for (let piece = first; piece.byteLength > 0; piece = await pieces.next(settings.partSize)) {
          checkAborted(NAME, key, options.signal);
          checkTooLong(key, pieces.total, options.size, MAX_SINGLE_PUT_BYTES);
          await file.write(piece);
        }
      } finally {
        await file.close();
      }
      checkLength(key, pieces.total, options.size);
      return await putOnce(key, stored, () => createReadStream(path), pieces.total, options, options.signal);
    } finally {
      await rm(path, { force: true });
    }
  }

  /** An unconditional stream in parts, `queueSize` at a time; the upload is aborted on any failure. */
  async function putMultipart(
    key: string,
    stored: string,
    pieces: Pieces,
    first: Buffer,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const stop = new AbortController();
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    const created = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: stored,
        ContentType: options.contentType,
        CacheControl: options.cacheControl,
      }),
      { abortSignal: signal },
    );
    const uploadId = created.UploadId;
    if (!uploadId) throw new StorageError("E_INTERNAL", `no upload id for "${key}"`, { driver: NAME, key });
    const parts: CompletedPart[] = [];
    const inFlight = new Set<Promise<void>>();
    // A part's buffer is refilled once its upload is done: allocating a fresh one per part leaves the
    // heap to the garbage collector's and the allocator's timing, which added tens of MB of RSS.
    const spare: Buffer[] = [];
    let broken: { error: unknown } | undefined;
    try {
      let number = 1;
      const nextPiece = () => pieces.next(settings.partSize, spare.pop() ?? Buffer.allocUnsafe(settings.partSize));
      for (let piece = first; piece.byteLength > 0; piece = await nextPiece(), number++) {
        checkTooLong(key, pieces.total, options.size, settings.partSize * MAX_PARTS);
        const partNumber = number;
        const body = piece;
        const upload = client
          .send(
            new UploadPartCommand({
              Bucket: bucket,
              Key: stored,
              UploadId: uploadId,
              PartNumber: partNumber,
              Body: body,
              ContentLength: body.byteLength,
            }),
            { abortSignal: signal },
          )
          .then((out) => {
            parts[partNumber - 1] = { PartNumber: partNumber, ETag: out.ETag };
            // Only the last part is shorter, and nothing follows it.
            if (body.byteLength === settings.partSize) spare.push(body);
          })
          .catch((error: unknown) => {
            broken ??= { error };
            stop.abort(error);
          });
        const tracked = upload.finally(() => inFlight.delete(tracked));
        inFlight.add(tracked);
        if (inFlight.size >= settings.queueSize) await Promise.race(inFlight);
        if (broken) throw broken.error;
      }
      await Promise.all(inFlight);
      if (broken) throw broken.error;
      checkLength(key, pieces.total, options.size);
      const done = await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: stored,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
        { abortSignal: signal },
      );
      if (done.ETag) {
        return {
          key,
          etag: normalizeEtag(done.ETag),
          size: pieces.total,
          lastModified: new Date(),
          ...(options.contentType !== undefined && { contentType: options.contentType }),
          ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
        };
      }
      // Ceph's answer carries no ETag the SDK can read. A writer that replaces the object within the
      // moment between completion and this HEAD would lend us its ETag; the upload itself is intact.
      const info = await headStored(stored, signal);
      if (!info)
        throw new StorageError("E_INTERNAL", `"${key}" vanished right after its upload`, { driver: NAME, key });
      return info;
    } catch (error) {
      stop.abort(error);
      await Promise.allSettled(inFlight);
      // Best effort and without the caller's signal, which may be what failed; parts left behind by a
      // failed abort cost storage until a lifecycle rule (AbortIncompleteMultipartUpload) removes them.
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: stored, UploadId: uploadId }))
        .catch(() => {});
      throw error;
    }
  }

  async function putStream(
    key: string,
    stored: string,
    stream: ReadableStream<Uint8Array>,
    options: PutOptions,
  ): Promise<ObjectInfo> {
    const reader = stream.getReader();
    try {
      const { size } = options;
      const guarded = options.ifMatch !== undefined || options.ifNoneMatch !== undefined;
      // Straight through when one PUT will do and cannot need repeating; only the If-Match form probe
      // repeats a write (see `conditional`), and it needs a body it can send twice.
      const direct =
        size !== undefined &&
        (guarded
          ? size <= MAX_SINGLE_PUT_BYTES && (options.ifMatch === undefined || etagForm !== "unknown")
          : size <= settings.multipartThreshold);
      if (direct) return await putStreamed(key, stored, reader, size, options);
      const pieces = new Pieces(key, reader);
      const first = await pieces.next(settings.partSize);
      if (first.byteLength < settings.partSize) {
        checkLength(key, pieces.total, size);
        return await putOnce(key, stored, () => first, first.byteLength, options, options.signal);
      }
      if (guarded) return await putSpooled(key, stored, pieces, first, options);
      return await putMultipart(key, stored, pieces, first, options);
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    }
  }

  async function streamObject(key: string, options: StreamOptions): Promise<ObjectStream | null> {
    validateKey(NAME, key);
    // Malformed ranges fail before any request; whether the start is past the end only S3 knows.
    if (options.range) resolveRange(NAME, key, options.range, Number.MAX_SAFE_INTEGER);
    checkAborted(NAME, key, options.signal);
    const stored = storedKey(key);
    const { range, signal } = options;
    try {
      const out = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: stored, Range: range && rangeHeader(range) }),
        { abortSignal: signal },
      );
      const served = out.ContentRange ? parseContentRange(key, out.ContentRange) : undefined;
      const info = infoOf(key, out.ETag, served?.size ?? out.ContentLength, out);
      const body = webStreamOf(key, out.Body, signal);
      if (!range) return { ...info, body };
      if (served) return { ...info, body, range: { offset: served.offset, length: served.length } };
      // A server that ignored Range sent everything, which is only right when everything was asked for.
      const wanted = resolveRange(NAME, key, range, info.size);
      if (wanted.length !== info.size) {
        await body.cancel();
        throw new StorageError("E_INTERNAL", `the server ignored the Range of "${key}"`, { driver: NAME, key });
      }
      return { ...info, body, range: wanted };
    } catch (error) {
      if (isMissing(error)) return null;
      // S3 answers 416 to any range of an empty object, where a suffix range means "all of it".
      if (range && "suffix" in range && statusOf(error) === 416) {
        const whole = await streamObject(key, { signal });
        return whole && { ...whole, range: { offset: 0, length: whole.size } };
      }
      throw failure(error, "stream", key, signal);
    }
  }

  return {
    name: NAME,

    async head(key: string, options: RequestOptions = {}): Promise<ObjectInfo | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const stored = storedKey(key);
      try {
        return await headStored(stored, options.signal);
      } catch (error) {
        throw failure(error, "head", key, options.signal);
      }
    },

    stream: (key: string, options: StreamOptions = {}) => streamObject(key, options),

    async get(key: string, options: RequestOptions = {}): Promise<ObjectBytes | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const stored = storedKey(key);
      try {
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: stored }), {
          abortSignal: options.signal,
        });
        const info = infoOf(key, out.ETag, out.ContentLength, out);
        const bytes = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
        // The SDK hands out a Buffer; callers get the plain Uint8Array the contract promises.
        return { ...info, body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
      } catch (error) {
        if (isMissing(error)) return null;
        throw failure(error, "get", key, options.signal);
      }
    },

    async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
      validateKey(NAME, key);
      checkPutOptions(NAME, key, options);
      checkAborted(NAME, key, options.signal);
      const stored = storedKey(key);
      try {
        if (isStream(body)) return await putStream(key, stored, body, options);
        const bytes = bytesOf(body);
        checkLength(key, bytes.byteLength, options.size);
        return await putOnce(key, stored, () => bytes, bytes.byteLength, options, options.signal);
      } catch (error) {
        throw failure(error, "put", key, options.signal, options.ifNoneMatch === undefined);
      }
    },

    /**
     * Deletes after a HEAD, which tells whether there was anything to delete and checks `ifMatch`. The
     * DELETE then carries `If-Match` too, so servers that honour it on DeleteObject (AWS S3) refuse it
     * atomically if the object changed since. Ceph 16 ignores that header: there a write that lands
     * between the HEAD and the DELETE (a few milliseconds) is deleted although its ETag differs.
     */
    async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const stored = storedKey(key);
      const { signal } = options;
      const expected = options.ifMatch === undefined ? undefined : normalizeEtag(options.ifMatch);
      try {
        const current = await headStored(stored, signal);
        if (expected !== undefined && current?.etag !== expected) throw precondition(key, current !== null);
        if (!current) return false;
        await conditional(
          stored,
          expected,
          (ifMatch) =>
            client.send(new DeleteObjectCommand({ Bucket: bucket, Key: stored, IfMatch: ifMatch }), {
              abortSignal: signal,
            }),
          false,
          signal,
        );
        return true;
      } catch (error) {
        // Gone between the HEAD and a DELETE that carried If-Match: the expected version is not there.
        if (expected !== undefined && isMissing(error)) throw precondition(key, false);
        throw failure(error, "delete", key, signal);
      }
    },

    async list(options: ListOptions = {}): Promise<ListPage> {
      const prefix = validatePrefix(NAME, options.prefix);
      const limit = checkListLimit(NAME, options.limit);
      checkAborted(NAME, undefined, options.signal);
      try {
        const out = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: root + prefix,
            MaxKeys: limit,
            ContinuationToken: options.cursor,
          }),
          { abortSignal: options.signal },
        );
        const objects: ObjectInfo[] = [];
        for (const object of out.Contents ?? []) {
          if (object.Key === undefined || !object.Key.startsWith(root)) continue;
          const key = object.Key.slice(root.length);
          objects.push({
            key,
            etag: etagOf(key, object.ETag),
            size: object.Size ?? 0,
            lastModified: object.LastModified ?? new Date(0),
          });
        }
        const cursor = out.IsTruncated ? out.NextContinuationToken : undefined;
        return cursor === undefined ? { objects } : { objects, cursor };
      } catch (error) {
        if (options.cursor !== undefined && statusOf(error) === 400) {
          throw new StorageError("E_INVALID_ARGUMENT", "list cursor is not one this driver returned", {
            driver: NAME,
            cause: error,
          });
        }
        throw failure(error, "list", undefined, options.signal);
      }
    },

    async dispose() {
      if (owned) client.destroy();
    },
  };
}

/**
 * Driver options from environment variables. Explicit S3 settings win when `S3_BUCKET` or
 * `S3_ENDPOINT` is set: `S3_ENDPOINT`, `S3_REGION`, `S3_BUCKET`, `S3_ACCESS_KEY_ID`,
 * `S3_SECRET_ACCESS_KEY`, `S3_FORCE_PATH_STYLE` (`true`/`1`). Otherwise Cloudflare R2 from
 * `R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY` and `R2_REGISTRY_BUCKET`. Throws
 * `E_INVALID_ARGUMENT` naming the variables that are missing.
 */
export function s3OptionsFromEnv(env: Record<string, string | undefined> = process.env): S3DriverOptions {
  const value = (name: string) => {
    const found = env[name]?.trim();
    return found === "" ? undefined : found;
  };
  const need = (names: string[]) => {
    const missing = names.filter((name) => value(name) === undefined);
    if (missing.length > 0) {
      throw new StorageError("E_INVALID_ARGUMENT", `missing environment variable(s): ${missing.join(", ")}`, {
        driver: NAME,
      });
    }
  };
  const credentials = (id: string, secret: string) => {
    const accessKeyId = value(id);
    const secretAccessKey = value(secret);
    if (accessKeyId === undefined && secretAccessKey === undefined) return {};
    need([id, secret]);
    return { credentials: { accessKeyId: accessKeyId as string, secretAccessKey: secretAccessKey as string } };
  };

  if (value("S3_BUCKET") !== undefined || value("S3_ENDPOINT") !== undefined) {
    need(["S3_BUCKET"]);
    const endpoint = value("S3_ENDPOINT");
    const region = value("S3_REGION");
    const pathStyle = value("S3_FORCE_PATH_STYLE")?.toLowerCase();
    return {
      bucket: value("S3_BUCKET") as string,
      ...(endpoint !== undefined && { endpoint }),
      ...(region !== undefined && { region }),
      ...(pathStyle !== undefined && { forcePathStyle: pathStyle === "true" || pathStyle === "1" }),
      ...credentials("S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"),
    };
  }
  need(["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_REGISTRY_BUCKET"]);
  const account = value("R2_ACCOUNT_ID") as string;
  // The account id becomes a host name: anything but letters, digits and dashes would change the host.
  if (!/^[A-Za-z0-9-]+$/.test(account)) {
    throw new StorageError("E_INVALID_ARGUMENT", "R2_ACCOUNT_ID must contain only letters, digits and dashes", {
      driver: NAME,
    });
  }
  return {
    bucket: value("R2_REGISTRY_BUCKET") as string,
    endpoint: `https://${account}.r2.cloudflarestorage.com`,
    region: "auto",
    ...credentials("R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"),
  };
}

function checkOptions(options: S3DriverOptions): Settings {
  const invalid = (message: string) => new StorageError("E_INVALID_ARGUMENT", message, { driver: NAME });
  const integer = (name: string, value: number | undefined, fallback: number, min: number, max: number) => {
    if (value === undefined) return fallback;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw invalid(`${name} must be an integer from ${min} to ${max}`);
    }
    return value;
  };
  if (typeof options.bucket !== "string" || options.bucket === "") throw invalid("bucket is required");
  const prefix = validatePrefix(NAME, options.prefix);
  return {
    bucket: options.bucket,
    // The slash keeps prefix "a" from reaching into a sibling "ab/" when listing.
    root: prefix === "" || prefix.endsWith("/") ? prefix : `${prefix}/`,
    connectTimeoutMs: integer("connectTimeoutMs", options.connectTimeoutMs, 5_000, 1, 600_000),
    idleTimeoutMs: integer("idleTimeoutMs", options.idleTimeoutMs, 30_000, 1, 3_600_000),
    maxAttempts: integer("maxAttempts", options.maxAttempts, 3, 1, 20),
    multipartThreshold: integer("multipartThreshold", options.multipartThreshold, 16 * MiB, 0, MAX_SINGLE_PUT_BYTES),
    partSize: integer("partSize", options.partSize, MIN_PART_BYTES, MIN_PART_BYTES, MAX_SINGLE_PUT_BYTES),
    queueSize: integer("queueSize", options.queueSize, 4, 1, 64),
    spoolDirectory: options.spoolDirectory ?? tmpdir(),
  };
}

function createClient(options: S3DriverOptions, settings: Settings): S3Client {
  return new S3Client({
    ...(options.endpoint !== undefined && { endpoint: options.endpoint }),
    region: options.region ?? "us-east-1",
    // A copy: the SDK tags the credentials object it is given with where it came from.
    ...(options.credentials !== undefined && { credentials: { ...options.credentials } }),
    forcePathStyle: options.forcePathStyle ?? false,
    maxAttempts: settings.maxAttempts,
    logger: sdkLogger,
    retryMode: "standard",
    // The SDK's default CRC32 trailers turn a streamed PutObject into an aws-chunked upload, which
    // Ceph 16 refuses (411 MissingContentLength); checksums are sent only where S3 requires them.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: new NodeHttpHandler({
      connectionTimeout: settings.connectTimeoutMs,
      // socketTimeout is the idle limit; the handler's requestTimeout only logs unless told otherwise.
      socketTimeout: settings.idleTimeoutMs,
    }),
  });
}

// The SDK logs every failed command at error level, a 404 or a conditional write's 412 included, and
// warns on each failed streamed PUT that it cannot retry it. Those are answers, not faults, and the
// StorageError the caller gets carries the SDK's error as `cause`; only other warnings get through.
const NOT_RETRIED = "An error was encountered in a non-retryable streaming request.";
const sdkLogger = {
  debug: () => {},
  info: () => {},
  warn: (message: unknown, ...rest: unknown[]) => {
    if (message !== NOT_RETRIED) console.warn(message, ...rest);
  },
  error: () => {},
};

/** Reads a body stream in pieces of a chosen size, keeping what overshoots for the next piece. */
class Pieces {
  total = 0;
  private rest: Uint8Array | undefined;
  private ended = false;

  constructor(
    private readonly key: string,
    private readonly reader: ReadableStreamDefaultReader<Uint8Array>,
  ) {}

  /**
   * Up to `size` bytes; fewer only at the end of the stream, nothing once it has ended. They are
   * copied into `into` when given (a buffer of at least `size` bytes, reused from part to part).
   */
  async next(size: number, into?: Buffer): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    let length = 0;
    while (length < size) {
      let chunk = this.rest;
      this.rest = undefined;
      if (!chunk) {
        if (this.ended) break;
        const { done, value } = await this.reader.read();
        if (done) {
          this.ended = true;
          break;
        }
        chunk = checkChunk(this.key, value);
      }
      if (chunk.byteLength > size - length) {
        this.rest = chunk.subarray(size - length);
        chunk = chunk.subarray(0, size - length);
      }
      if (into) into.set(chunk, length);
      else chunks.push(chunk);
      length += chunk.byteLength;
    }
    this.total += length;
    return into ? into.subarray(0, length) : Buffer.concat(chunks, length);
  }
}

/**
 * A Node stream of exactly `size` bytes from a Web stream, for a PutObject with that Content-Length.
 * Each chunk is held back until the next read shows whether more follows, so a body that turns out
 * longer or shorter is cut off (through `fail`, which aborts the request) before S3 has the bytes it
 * was promised, and nothing is stored.
 */
function exactLength(
  key: string,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  size: number,
  fail: (reason: unknown) => void,
): Readable {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let total = 0;
    let held: Uint8Array | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += checkChunk(key, value).byteLength;
      if (total > size) throw wrongLength(key, total, size, true);
      if (held) yield held;
      held = value;
    }
    if (total !== size) throw wrongLength(key, total, size, false);
    if (held) yield held;
  }
  async function* guarded(): AsyncGenerator<Uint8Array> {
    try {
      yield* chunks();
    } catch (error) {
      fail(error);
      throw error;
    }
  }
  const readable = Readable.from(guarded(), { objectMode: false });
  // The failure reaches the caller through `fail`; a piped stream's error would otherwise go unhandled.
  readable.on("error", () => {});
  return readable;
}

/**
 * A Web stream over the SDK's response body whose errors are `StorageError`s. Node bodies are wrapped
 * by hand rather than with `Readable.toWeb`, which maps no errors; an injected client with another
 * HTTP handler gets the SDK's own conversion.
 */
function webStreamOf(
  key: string,
  body: GetObjectCommandOutput["Body"],
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  if (body === undefined) return new ReadableStream({ start: (controller) => controller.close() });
  if (!(body instanceof Readable)) return body.transformToWebStream();
  // The SDK ties its abort listener to the request; this one holds until the body is read or closed.
  const onAbort = () => body.destroy(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  body.once("close", () => signal?.removeEventListener("abort", onAbort));
  const iterator: AsyncIterator<unknown> = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await iterator.next();
          if (done) return controller.close();
          const chunk = checkChunk(key, value);
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        } catch (error) {
          controller.error(failure(error, "stream", key, signal));
        }
      },
      async cancel() {
        body.destroy();
      },
    },
    // Pull only when the reader asks, so a slow consumer slows the download instead of buffering it.
    { highWaterMark: 0 },
  );
}

function checkChunk(key: string, value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  throw new StorageError("E_INVALID_ARGUMENT", `body stream of "${key}" yielded a non-byte chunk`, {
    driver: NAME,
    key,
  });
}

function checkLength(key: string, actual: number, declared: number | undefined): void {
  if (declared !== undefined && actual !== declared) throw wrongLength(key, actual, declared, false);
}

function checkTooLong(key: string, total: number, declared: number | undefined, max: number): void {
  if (declared !== undefined && total > declared) throw wrongLength(key, total, declared, true);
  if (total > max) {
    throw new StorageError("E_INVALID_ARGUMENT", `body of "${key}" is larger than ${max} bytes`, { driver: NAME, key });
  }
}

function wrongLength(key: string, actual: number, declared: number, atLeast: boolean): StorageError {
  const has = atLeast ? `at least ${actual}` : `${actual}`;
  return new StorageError("E_INVALID_ARGUMENT", `body of "${key}" has ${has} bytes, not ${declared}`, {
    driver: NAME,
    key,
  });
}

function precondition(key: string, exists: boolean): StorageError {
  return new StorageError("E_PRECONDITION", `"${key}" ${exists ? "has changed" : "does not exist"}`, {
    driver: NAME,
    key,
    retryable: true,
  });
}

function rangeHeader(range: ByteRange): string {
  if ("suffix" in range) return `bytes=-${range.suffix}`;
  return range.length === undefined
    ? `bytes=${range.offset}-`
    : `bytes=${range.offset}-${range.offset + range.length - 1}`;
}

function parseContentRange(key: string, header: string): { offset: number; length: number; size: number } {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header.trim());
  if (!match) {
    throw new StorageError("E_INTERNAL", `unexpected Content-Range "${header}" for "${key}"`, { driver: NAME, key });
  }
  const offset = Number(match[1]);
  return { offset, length: Number(match[2]) - offset + 1, size: Number(match[3]) };
}

function etagOf(key: string, etag: string | undefined): string {
  if (!etag) throw new StorageError("E_INTERNAL", `the server sent no ETag for "${key}"`, { driver: NAME, key });
  return normalizeEtag(etag);
}

function infoOf(
  key: string,
  etag: string | undefined,
  size: number | undefined,
  meta: { LastModified?: Date; ContentType?: string; CacheControl?: string },
): ObjectInfo {
  return {
    key,
    etag: etagOf(key, etag),
    size: size ?? 0,
    lastModified: meta.LastModified ?? new Date(0),
    ...(meta.ContentType !== undefined && { contentType: meta.ContentType }),
    ...(meta.CacheControl !== undefined && { cacheControl: meta.CacheControl }),
  };
}

interface SdkFailure {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $metadata?: { httpStatusCode?: unknown; attempts?: unknown };
}

function sdkFailure(error: unknown): SdkFailure {
  return typeof error === "object" && error !== null ? (error as SdkFailure) : {};
}

function statusOf(error: unknown): number | undefined {
  const status = sdkFailure(error).$metadata?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** A 404 for the object; a missing bucket is a configuration error, not a missing object. */
function isMissing(error: unknown): boolean {
  return statusOf(error) === 404 && sdkFailure(error).name !== "NoSuchBucket";
}

const PERMISSION = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "CredentialsProviderError",
]);
const NETWORK = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
]);

function codeFor(error: unknown): StorageErrorCode {
  const { name, code } = sdkFailure(error);
  const status = statusOf(error);
  if (typeof name === "string" && PERMISSION.has(name)) return "E_PERMISSION";
  if (name === "InvalidObjectName" || name === "KeyTooLongError") return "E_INVALID_KEY";
  if (name === "EntityTooLarge") return "E_INVALID_ARGUMENT";
  if (status === 412 || (status === 409 && name === "ConditionalRequestConflict")) return "E_PRECONDITION";
  if (status === 416) return "E_RANGE";
  if (status === 403 || status === 401) return "E_PERMISSION";
  if (status !== undefined)
    return status >= 500 || status === 429 || name === "SlowDown" ? "E_UNAVAILABLE" : "E_INTERNAL";
  if (name === "TimeoutError" || (typeof code === "string" && NETWORK.has(code))) return "E_UNAVAILABLE";
  return "E_INTERNAL";
}

/**
 * The `StorageError` a failed call becomes. A fired caller signal wins over whatever the SDK made of
 * it; 412 on a create-only write is not worth repeating, on an `If-Match` write it is (after a re-read).
 */
function failure(
  error: unknown,
  operation: string,
  key: string | undefined,
  signal: AbortSignal | undefined,
  retryable = true,
): StorageError {
  if (signal?.aborted)
    return error instanceof StorageError && error.code === "E_ABORTED" ? error : abortError(NAME, key, signal);
  if (error instanceof StorageError) return error;
  const code = codeFor(error);
  const { name, message, $metadata } = sdkFailure(error);
  const status = statusOf(error);
  const target = key === undefined ? "" : ` "${key}"`;
  const attempts =
    typeof $metadata?.attempts === "number" && $metadata.attempts > 1 ? ` after ${$metadata.attempts} attempts` : "";
  const detail = [typeof name === "string" ? name : "error", status === undefined ? "" : ` (HTTP ${status})`].join("");
  const text = typeof message === "string" && message !== "" && message !== "UnknownError" ? `: ${message}` : "";
  return new StorageError(code, `${operation}${target} failed${attempts}: ${detail}${text}`, {
    driver: NAME,
    key,
    cause: error,
    ...(code === "E_PRECONDITION" && { retryable }),
  });
}
