import { createHash, randomBytes } from "node:crypto";
import {
  closeSync,
  fstatSync,
  fsync,
  mkdir as mkdirCallback,
  mkdirSync,
  openSync,
  readFileSync,
  realpath,
  realpathSync,
  renameSync,
  rmdir,
  rmdirSync,
  rmSync,
  stat as statCallback,
  statSync,
  unlinkSync,
  utimes,
  utimesSync,
  writeSync,
} from "node:fs";
import { type FileHandle, mkdir, open, readdir, rm, stat, statfs } from "node:fs/promises";
import { join, resolve, sep } from "node:path";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";
import {
  bytesOf,
  checkListLimit,
  checkPutOptions,
  isStream,
  normalizeEtag,
  resolveRange,
  streamOfChunk,
} from "../body.js";
import { checkAborted, StorageError } from "../errors.js";
import { compareKeys, RESERVED_SEGMENT, validateKey, validatePrefix } from "../keys.js";
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

const NAME = "fs";

/**
 * The file-system calls proper-lockfile makes. It copies the object it is given on every lock; all of
 * node:fs (its default, via graceful-fs) costs ~50 µs per copy (measured), these few nothing.
 */
const LOCK_FS = {
  mkdir: mkdirCallback,
  mkdirSync,
  realpath,
  realpathSync,
  rmdir,
  rmdirSync,
  stat: statCallback,
  statSync,
  utimes,
  utimesSync,
};

const fsyncFd = promisify(fsync);

/** Byte bodies up to this size are written with synchronous calls (see `fsDriver`); larger ones and streams asynchronously. */
const SYNC_WRITE_MAX = 1024 * 1024;

export interface FsDriverOptions {
  /** Folder that holds the objects; created when missing. Each key is a plain file below it. */
  root: string;
  /**
   * Flush file data and the folder entry to disk before a write is acknowledged. Default `true`: an
   * acknowledged write survives a power cut. `false` is faster and fine for caches and tests. Left
   * unset on a Linux tmpfs or ramfs (e.g. /dev/shm), it is off: nothing there survives a power cut.
   */
  fsync?: boolean;
  /**
   * How long a lock left by a crashed process blocks writers of that key before it is taken over, in
   * ms. Default 10 000. Live lock holders refresh their lock, so this only delays recovery.
   */
  staleLockMs?: number;
}

/** What the sidecar remembers about one version of a data file, identified by inode, size and mtime. */
interface Sidecar {
  ino: string;
  size: number;
  mtimeNs: string;
  etag: string;
  contentType?: string;
  cacheControl?: string;
}

/** The current version and the one before it, so readers racing a rename still find their metadata. */
interface SidecarFile {
  current: Sidecar;
  previous?: Sidecar;
}

type Stats = Awaited<ReturnType<FileHandle["stat"]>>;

function fileId(stats: { ino: bigint; size: bigint; mtimeNs: bigint }) {
  return { ino: stats.ino.toString(), size: Number(stats.size), mtimeNs: stats.mtimeNs.toString() };
}

function matches(sidecar: Sidecar | undefined, stats: Stats & { ino: bigint; size: bigint; mtimeNs: bigint }) {
  const id = fileId(stats);
  return sidecar !== undefined && sidecar.ino === id.ino && sidecar.size === id.size && sidecar.mtimeNs === id.mtimeNs;
}

/** Whole objects up to this size are streamed from one read instead of a file stream. */
const WHOLE_READ = 256 * 1024;

function objectInfo(
  key: string,
  stats: { size: bigint | number; mtimeMs: bigint | number },
  etag: string,
  sidecar?: Sidecar,
): ObjectInfo {
  return {
    key,
    etag,
    size: Number(stats.size),
    lastModified: new Date(Number(stats.mtimeMs)),
    ...(sidecar?.contentType !== undefined && { contentType: sidecar.contentType }),
    ...(sidecar?.cacheControl !== undefined && { cacheControl: sidecar.cacheControl }),
  };
}

/** Bytes read at a time to hash a file. */
const HASH_CHUNK = 256 * 1024;

/**
 * The MD5 of an open file's content, read through one buffer: a stream of chunks would leave the whole
 * file behind in garbage buffers (20 MB for a popular package's document) until the next collection.
 */
async function md5Of(handle: FileHandle): Promise<string> {
  const hash = createHash("md5");
  const buffer = Buffer.allocUnsafe(HASH_CHUNK);
  for (let position = 0; ; ) {
    const { bytesRead } = await handle.read(buffer, 0, HASH_CHUNK, position);
    if (bytesRead === 0) return hash.digest("hex");
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

/**
 * An open object's bytes. Objects are replaced by rename, never changed in place: the open file keeps
 * the size it was opened with.
 */
async function readWhole(key: string, handle: FileHandle, size: number, signal?: AbortSignal): Promise<Uint8Array> {
  const body = new Uint8Array(size);
  let offset = 0;
  while (offset < size) {
    checkAborted(NAME, key, signal);
    const { bytesRead } = await handle.read(body, offset, size - offset, offset);
    if (bytesRead === 0) break;
    offset += bytesRead;
  }
  return offset === size ? body : body.subarray(0, offset);
}

/**
 * `length` bytes of a file from `start`, as a byte stream that owns the handle (closed at the end, on
 * cancel and on error). A reader that brings its own buffer (`getReader({ mode: "byob" })`) has the file
 * read straight into it — a 20 MB document parsed in pieces goes through one reused buffer instead of
 * 80 fresh chunks left for the garbage collector —; other readers get chunks of 256 KB.
 */
function fileStream(
  key: string,
  handle: FileHandle,
  start: number,
  length: number,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let position = start;
  const end = start + length;
  let open = true;
  let onAbort: (() => void) | undefined;
  const close = async () => {
    if (!open) return;
    open = false;
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    await handle.close().catch(() => {});
  };
  return new ReadableStream({
    type: "bytes",
    start(controller) {
      // A reader that stops reading still lets go of the file when the signal fires.
      onAbort = () => {
        void close();
        try {
          checkAborted(NAME, key, signal);
        } catch (error) {
          controller.error(error);
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      const request = controller.byobRequest;
      try {
        checkAborted(NAME, key, signal);
        // A reader that brings its own buffer has the file read into it; others (an HTTP response body)
        // get a chunk that is not zeroed first, as the stream's own `autoAllocateChunkSize` buffers
        // are, and that the read fills before anyone sees it.
        const target = request
          ? (request.view as Uint8Array<ArrayBuffer>)
          : Buffer.allocUnsafeSlow(Math.min(CHUNK_BYTES, end - position));
        const wanted = Math.min(target.byteLength, end - position);
        const { bytesRead } = wanted > 0 ? await handle.read(target, 0, wanted, position) : { bytesRead: 0 };
        position += bytesRead;
        // The end, or a file cut shorter since it was opened.
        const finished = bytesRead === 0 || position >= end;
        if (finished) await close();
        if (request) {
          if (bytesRead === 0) controller.close();
          request.respond(bytesRead);
          if (bytesRead > 0 && finished) controller.close();
          return;
        }
        // Cut shorter: only the bytes read, in a buffer of their own, so the unread rest is never reachable.
        if (bytesRead > 0) {
          controller.enqueue(bytesRead === target.byteLength ? target : new Uint8Array(target.subarray(0, bytesRead)));
        }
        if (finished) controller.close();
      } catch (error) {
        await close();
        controller.error(wrap(error, "read", key));
      }
    },
    cancel: close,
  });
}

/** Chunks for readers that bring no buffer of their own (see `fileStream`). */
const CHUNK_BYTES = 256 * 1024;

/** Bytes a byte-stream body is read through when it is written (see `byobReader`). */
const WRITE_BUFFER = 256 * 1024;

/** A reader that fills buffers of the caller's own, when the body is a byte stream; else `undefined`. */
function byobReader(body: ReadableStream<Uint8Array>): ReadableStreamBYOBReader | undefined {
  try {
    return body.getReader({ mode: "byob" });
  } catch {
    return undefined;
  }
}

function errno(error: unknown): string | undefined {
  return typeof error === "object" && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

function wrap(error: unknown, action: string, key?: string): StorageError {
  if (error instanceof StorageError) return error;
  const code = errno(error);
  const what = key ? `${action} "${key}"` : action;
  if (code === "EACCES" || code === "EPERM" || code === "EROFS") {
    return new StorageError("E_PERMISSION", `cannot ${what}: ${code}`, { driver: NAME, key, cause: error });
  }
  if (code === "ENOSPC" || code === "EIO" || code === "EMFILE" || code === "ENFILE" || code === "EBUSY") {
    return new StorageError("E_UNAVAILABLE", `cannot ${what}: ${code}`, { driver: NAME, key, cause: error });
  }
  if (code === "ELOCKED") {
    return new StorageError("E_UNAVAILABLE", `cannot ${what}: the key stayed locked by another writer`, {
      driver: NAME,
      key,
      cause: error,
    });
  }
  return new StorageError("E_INTERNAL", `cannot ${what}: ${(error as Error)?.message ?? String(error)}`, {
    driver: NAME,
    key,
    cause: error,
  });
}

/**
 * Stores objects as plain files under a folder: the embedded default for a laptop or a single server.
 *
 * - Writes go to a temp file, are fsynced and renamed into place, so readers never see half a file.
 * - Each key has a lock (a directory created atomically with mkdir, via proper-lockfile) taken for
 *   every write and delete, so conditional writes hold between processes sharing the folder.
 * - ETags are MD5s of the content, kept in a sidecar under `.fw/meta` and tied to the data file's
 *   inode, size and mtime; they are stable across restarts and equal S3's single-part ETags.
 * - Only data files and their folders are fsynced. A sidecar is a cache of what the data file gives
 *   back anyway: after a power loss one that is missing, torn or describing another file is ignored
 *   and the MD5 computed from the content again (the same ETag). Only a content type or cache-control
 *   value written in the last moments before the loss can read back unset. That is one fsync fewer
 *   per write (~0.7 ms each on this project's disk, measured).
 * - A key cannot be both an object and a "folder" of other keys (`a` and `a/b`): the second write
 *   fails with E_INVALID_KEY. Object stores allow it; fw's own layouts never need it.
 * - Small metadata calls (stat, mkdir, rename, sidecars, the lock directory, bodies up to 1 MiB) are
 *   synchronous: on a local disk each takes a few microseconds, while an asynchronous call costs a
 *   thread-pool round trip of ~50 µs (measured here), and a write makes about twenty of them. fsync,
 *   streams, large bodies and waiting for another process's lock stay asynchronous.
 */
export function fsDriver(options: FsDriverOptions): StorageDriver {
  const root = resolve(options.root);
  const internal = join(root, RESERVED_SEGMENT);
  const tmpDir = join(internal, "tmp");
  const metaDir = join(internal, "meta");
  const lockDir = join(internal, "locks");
  // Decided once the folder exists (see init): fsync on a memory file system flushes nothing.
  let durable = options.fsync ?? true;
  const stale = Math.max(options.staleLockMs ?? 10_000, 2_000);
  let ready: Promise<void> | undefined;

  const init = () => {
    ready ??= (async () => {
      await Promise.all([tmpDir, metaDir, lockDir].map((dir) => mkdir(dir, { recursive: true })));
      if (options.fsync === undefined && (await inMemory(root))) durable = false;
      void sweepTemp(tmpDir);
    })().catch((error) => {
      ready = undefined;
      throw wrap(error, `create storage folder ${root}`);
    });
    return ready;
  };

  function dataPath(key: string): string {
    const path = join(root, ...key.split("/"));
    // validateKey already rules out escapes; this guards against any future change to it.
    if (!path.startsWith(root + sep) || path.startsWith(internal + sep)) {
      throw new StorageError("E_INVALID_KEY", `key "${key}" escapes the storage folder`, { driver: NAME, key });
    }
    return path;
  }

  /** Sidecars live in a flat, hashed layout: a key's segments may already use the whole name length. */
  function sidecarPath(key: string): string {
    const hash = createHash("sha256").update(key).digest("hex");
    return join(metaDir, hash.slice(0, 2), `${hash}.json`);
  }

  function lockPath(key: string): string {
    return join(lockDir, `${createHash("sha256").update(key).digest("hex")}.lock`);
  }

  /**
   * Sidecars this process read or wrote, newest last. An entry is only used when it matches the data
   * file's inode, size and mtime, so another process's writes are never hidden by it.
   */
  const sidecarCache = new Map<string, SidecarFile>();
  const SIDECAR_CACHE_SIZE = 10_000;

  function rememberSidecar(key: string, file: SidecarFile): void {
    sidecarCache.delete(key);
    sidecarCache.set(key, file);
    if (sidecarCache.size > SIDECAR_CACHE_SIZE) sidecarCache.delete(sidecarCache.keys().next().value as string);
  }

  async function readSidecar(key: string): Promise<SidecarFile | undefined> {
    try {
      const file = JSON.parse(readFileSync(sidecarPath(key), "utf8")) as SidecarFile;
      rememberSidecar(key, file);
      return file;
    } catch (error) {
      if (errno(error) === "ENOENT" || errno(error) === "ENOTDIR" || error instanceof SyntaxError) return undefined;
      throw error;
    }
  }

  type FileStats = Stats & { ino: bigint; size: bigint; mtimeNs: bigint };

  /** The sidecar entry describing this exact file, from memory when it can be trusted, else from disk. */
  async function sidecarFor(key: string, stats: FileStats): Promise<Sidecar | undefined> {
    const remembered = sidecarCache.get(key);
    const pick = (file: SidecarFile | undefined) => [file?.current, file?.previous].find((s) => matches(s, stats));
    return pick(remembered) ?? pick(await readSidecar(key));
  }

  /** Opens a data file for reading with its stats, or `null` when the key holds no object. */
  async function openData(key: string): Promise<{ handle: FileHandle; stats: FileStats } | null> {
    // A missing key (a new package, a 404) is answered by one synchronous stat: an asynchronous open that
    // fails costs a thread-pool round trip and an error with a stack (~0.7 ms on one busy core, measured).
    if (!(await statData(key))) return null;
    let handle: FileHandle | undefined;
    try {
      handle = await open(dataPath(key), "r");
      const stats = (await handle.stat({ bigint: true })) as unknown as FileStats;
      if (!stats.isFile()) {
        await handle.close();
        return null;
      }
      return { handle, stats };
    } catch (error) {
      await handle?.close().catch(() => {});
      const code = errno(error);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") return null;
      throw error;
    }
  }

  /** The data file's stats without opening it, or `null` when the key holds no object. */
  async function statData(key: string): Promise<FileStats | null> {
    try {
      const stats = statSync(dataPath(key), { bigint: true, throwIfNoEntry: false }) as unknown as
        | FileStats
        | undefined;
      return stats?.isFile() ? stats : null;
    } catch (error) {
      const code = errno(error);
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      throw error;
    }
  }

  /**
   * ETags computed for data files without a sidecar (put there by hand, or by a copy that left the
   * sidecars behind), by key: hashing a 20 MB document again on every revalidation read it whole each
   * time. Like a sidecar, an entry counts only for the exact file it describes (inode, size, mtime).
   */
  const hashed = new Map<string, Sidecar>();
  const HASHED_SIZE = 1000;

  /** The MD5 ETag of an open data file without a sidecar, computed once per file. */
  async function hashedEtag(key: string, handle: FileHandle, stats: FileStats): Promise<string> {
    const known = hashed.get(key);
    if (matches(known, stats)) return (known as Sidecar).etag;
    const etag = await md5Of(handle);
    hashed.delete(key);
    hashed.set(key, { ...fileId(stats), etag });
    if (hashed.size > HASHED_SIZE) hashed.delete(hashed.keys().next().value as string);
    return etag;
  }

  /**
   * Metadata of a data file open as `handle`, plus the sidecar entry that matched it (a writer keeps it
   * as `previous`). Without a matching sidecar the MD5 is computed from the content.
   */
  async function inspect(
    key: string,
    handle: FileHandle,
    stats: FileStats,
  ): Promise<{ info: ObjectInfo; sidecar?: Sidecar }> {
    const sidecar = await sidecarFor(key, stats);
    if (sidecar) return { info: objectInfo(key, stats, sidecar.etag, sidecar), sidecar };
    return { info: objectInfo(key, stats, await hashedEtag(key, handle, stats)) };
  }

  /** `inspect` for a file this call has open. */
  function describe(key: string, handle: FileHandle, stats: FileStats): Promise<ObjectInfo> {
    return inspect(key, handle, stats).then((r) => r.info);
  }

  /** Writers of one key in this process queue here, so only other processes contend for the lock file. */
  const queues = new Map<string, Promise<unknown>>();

  function withLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = queues.get(key) ?? Promise.resolve();
    const run = before.then(
      () => withFileLock(key, work),
      () => withFileLock(key, work),
    );
    const settled = run.catch(() => {});
    queues.set(key, settled);
    void settled.then(() => {
      if (queues.get(key) === settled) queues.delete(key);
    });
    return run;
  }

  async function withFileLock<T>(key: string, work: () => Promise<T>): Promise<T> {
    let compromised: Error | undefined;
    const path = lockPath(key);
    // proper-lockfile tracks its locks by the first argument, so it must be unique per key.
    const options = {
      lockfilePath: path,
      realpath: false,
      fs: LOCK_FS,
      stale,
      // Another process judged our lock stale (we stalled for longer than `stale`): do not commit.
      onCompromised: (error: Error) => {
        compromised = error;
      },
    };
    let release: () => unknown;
    try {
      // Uncontended (the usual case): one mkdir, no waiting.
      release = lockfile.lockSync(path, options);
    } catch (error) {
      if (errno(error) !== "ELOCKED") throw error;
      release = await lockfile.lock(path, {
        ...options,
        retries: { retries: 400, factor: 1.3, minTimeout: 1, maxTimeout: 50, randomize: true },
      });
    }
    try {
      const result = await work();
      if (compromised) {
        throw new StorageError("E_UNAVAILABLE", `lost the lock on "${key}" while writing`, {
          driver: NAME,
          key,
          cause: compromised,
        });
      }
      return result;
    } finally {
      try {
        await release();
      } catch {
        // Already released or taken over as stale: nothing of ours to clean up.
      }
    }
  }

  async function current(key: string): Promise<ObjectInfo | null> {
    return (await currentWithSidecar(key))?.info ?? null;
  }

  async function currentWithSidecar(key: string): Promise<{ info: ObjectInfo; sidecar?: Sidecar } | null> {
    const stats = await statData(key);
    if (!stats) return null;
    const sidecar = await sidecarFor(key, stats);
    if (sidecar) return { info: objectInfo(key, stats, sidecar.etag, sidecar), sidecar };
    // No sidecar: the file is opened, so that the hash and the stats describe the same file.
    const opened = await openData(key);
    if (!opened) return null;
    try {
      return await inspect(key, opened.handle, opened.stats);
    } finally {
      await opened.handle.close();
    }
  }

  function ensureParent(path: string, key: string): void {
    const parent = path.slice(0, path.lastIndexOf(sep));
    try {
      mkdirSync(parent, { recursive: true });
    } catch (error) {
      const code = errno(error);
      if (code === "EEXIST" || code === "ENOTDIR") {
        throw new StorageError("E_INVALID_KEY", `key "${key}" is below an existing object`, {
          driver: NAME,
          key,
          cause: error,
        });
      }
      throw error;
    }
  }

  async function syncDir(dir: string): Promise<void> {
    if (!durable) return;
    const fd = openSync(dir, "r");
    try {
      await fsyncFd(fd);
    } finally {
      closeSync(fd);
    }
  }

  // Temp names: random per driver (other processes share the folder), then a counter; a random suffix
  // per file cost ~15 µs of synchronous randomBytes (measured), a few per write.
  const tempPrefix = randomBytes(8).toString("hex");
  let tempCounter = 0;
  function tempPath(kind = ""): string {
    return join(tmpDir, `${kind}${tempPrefix}-${(tempCounter++).toString(36)}`);
  }

  function checkDeclaredSize(key: string, size: number, options: PutOptions): void {
    if (options.size !== undefined && size !== options.size) {
      throw new StorageError(
        "E_INVALID_ARGUMENT",
        `body has ${size > options.size ? "more than" : ""} ${size} bytes, not the declared ${options.size}`,
        { driver: NAME, key },
      );
    }
  }

  /** Writes the body to a temp file; returns the temp path and what was written. */
  async function writeTemp(key: string, body: PutBody, options: PutOptions) {
    if (!isStream(body)) {
      const bytes = bytesOf(body);
      if (bytes.byteLength <= SYNC_WRITE_MAX) return writeTempSync(key, bytes, options);
    }
    return streamTemp(key, body, options);
  }

  async function writeTempSync(key: string, bytes: Uint8Array, options: PutOptions) {
    checkDeclaredSize(key, bytes.byteLength, options);
    const tmp = tempPath();
    const fd = openSync(tmp, "wx", 0o644);
    try {
      let offset = 0;
      while (offset < bytes.byteLength) offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
      // The thread pool flushes the file while this thread hashes it.
      const synced = durable ? fsyncFd(fd) : undefined;
      const etag = createHash("md5").update(bytes).digest("hex");
      await synced;
      const stats = fstatSync(fd, { bigint: true });
      closeSync(fd);
      return { tmp, etag, size: bytes.byteLength, id: fileId(stats), mtimeMs: Number(stats.mtimeMs) };
    } catch (error) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  /** Streams the body into a temp file, hashing as it goes. */
  async function streamTemp(key: string, body: PutBody, options: PutOptions) {
    const tmp = tempPath();
    const handle = await open(tmp, "wx", 0o644);
    const hash = createHash("md5");
    let size = 0;
    try {
      const writeAll = async (chunk: Uint8Array) => {
        let offset = 0;
        while (offset < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
          offset += bytesWritten;
        }
      };
      const write = async (chunk: Uint8Array) => {
        size += chunk.byteLength;
        // The thread pool writes the chunk while this thread hashes it: a large body costs the slower
        // of the two, not their sum.
        const writing = writeAll(chunk);
        hash.update(chunk);
        await writing;
      };
      if (isStream(body)) {
        const byob = byobReader(body);
        const reader = byob ?? body.getReader();
        // A byte stream writes into this one buffer, taken over by each read and handed back filled.
        let buffer = new ArrayBuffer(byob ? WRITE_BUFFER : 0);
        const next = async (): Promise<Uint8Array | undefined> => {
          if (!byob) {
            const read = await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
            return read.done ? undefined : read.value;
          }
          const read = await byob.read(new Uint8Array(buffer));
          if (read.value) buffer = read.value.buffer;
          return read.done ? undefined : read.value;
        };
        try {
          for (;;) {
            checkAborted(NAME, key, options.signal);
            const value = await next();
            if (!value) break;
            await write(value);
            if (options.size !== undefined && size > options.size) break;
          }
        } catch (error) {
          await reader.cancel(error).catch(() => {});
          throw error;
        } finally {
          reader.releaseLock();
        }
      } else {
        await write(bytesOf(body));
      }
      checkDeclaredSize(key, size, options);
      if (durable) await handle.sync();
      const stats = await handle.stat({ bigint: true });
      await handle.close();
      return { tmp, etag: hash.digest("hex"), size, id: fileId(stats), mtimeMs: Number(stats.mtimeMs) };
    } catch (error) {
      await handle.close().catch(() => {});
      await rm(tmp, { force: true });
      throw error;
    }
  }

  async function writeSidecar(key: string, file: SidecarFile): Promise<void> {
    const path = sidecarPath(key);
    const tmp = tempPath("meta-");
    const fd = openSync(tmp, "wx", 0o644);
    try {
      // Not fsynced: a sidecar only saves rehashing the data file, which is durable on its own (see above).
      writeSync(fd, JSON.stringify(file));
    } finally {
      closeSync(fd);
    }
    rememberSidecar(key, file);
    try {
      renameSync(tmp, path);
    } catch (error) {
      // The first sidecar in its hash folder: make the folder, then try once more.
      if (errno(error) !== "ENOENT") {
        rmSync(tmp, { force: true });
        throw error;
      }
      mkdirSync(path.slice(0, path.lastIndexOf(sep)), { recursive: true });
      renameSync(tmp, path);
    }
  }

  /** Removes folders left empty by a delete, up to (not including) the root; racing writers recreate them. */
  function pruneEmpty(path: string, stop: string): void {
    let dir = path.slice(0, path.lastIndexOf(sep));
    while (dir.length > stop.length && dir.startsWith(stop + sep)) {
      try {
        rmdirSync(dir);
      } catch {
        return;
      }
      dir = dir.slice(0, dir.lastIndexOf(sep));
    }
  }

  async function* walk(dir: string, keyPrefix: string, after: string | undefined): AsyncGenerator<string> {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      if (errno(error) === "ENOENT" || errno(error) === "ENOTDIR") return;
      throw error;
    }
    // Sort as full keys sort: a folder "a" sorts as "a/" so "a-c" comes before "a/b", like S3.
    const named = entries
      .filter((entry) => !(keyPrefix === "" && entry.name === RESERVED_SEGMENT))
      .map((entry) => ({ entry, sortKey: keyPrefix + entry.name + (entry.isDirectory() ? "/" : "") }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const { entry, sortKey } of named) {
      if (entry.isDirectory()) {
        // Skip folders whose every key sorts at or before the cursor.
        if (after !== undefined && compareKeys(sortKey, after) < 0 && !after.startsWith(sortKey)) continue;
        yield* walk(join(dir, entry.name), sortKey, after);
      } else if (entry.isFile()) {
        if (after === undefined || compareKeys(sortKey, after) > 0) yield sortKey;
      }
    }
  }

  return {
    name: NAME,

    async head(key: string, options: RequestOptions = {}) {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      await init();
      try {
        return await current(key);
      } catch (error) {
        throw wrap(error, "read", key);
      }
    },

    async get(key: string, options: RequestOptions = {}): Promise<ObjectBytes | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      await init();
      try {
        const opened = await openData(key);
        if (!opened) return null;
        const { handle, stats } = opened;
        try {
          const info = await describe(key, handle, stats);
          const bytes = await readWhole(key, handle, Number(stats.size), options.signal);
          return { ...info, size: bytes.byteLength, body: bytes };
        } finally {
          await handle.close();
        }
      } catch (error) {
        if (options.signal?.aborted) checkAborted(NAME, key, options.signal);
        throw wrap(error, "read", key);
      }
    },

    async stream(key: string, options: StreamOptions = {}): Promise<ObjectStream | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      await init();
      let handle: FileHandle | null = null;
      try {
        const opened = await openData(key);
        if (!opened) return null;
        handle = opened.handle;
        const info = await describe(key, handle, opened.stats);
        const range = options.range ? resolveRange(NAME, key, options.range, info.size) : undefined;
        if (!range && info.size <= WHOLE_READ) {
          // One read and a one-chunk stream: a Node read stream bridged to a Web stream costs ~230 µs more.
          const bytes = await readWhole(key, handle, info.size, options.signal);
          await handle.close();
          handle = null;
          return { ...info, size: bytes.byteLength, body: streamOfChunk(bytes) };
        }
        const start = range?.offset ?? 0;
        const body = fileStream(key, handle, start, range?.length ?? info.size - start, options.signal);
        handle = null; // the stream owns and closes it now
        return range ? { ...info, body, range } : { ...info, body };
      } catch (error) {
        await handle?.close();
        throw wrap(error, "read", key);
      }
    },

    async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
      validateKey(NAME, key);
      checkPutOptions(NAME, key, options);
      checkAborted(NAME, key, options.signal);
      await init();
      const path = dataPath(key);
      try {
        // The body is written before taking the lock so a slow upload never blocks other writers.
        const written = await writeTemp(key, body, options);
        let renamed = false;
        try {
          return await withLock(key, async () => {
            checkAborted(NAME, key, options.signal);
            const found = await currentWithSidecar(key);
            const existing = found?.info;
            if (options.ifNoneMatch === "*" && existing) {
              throw new StorageError("E_PRECONDITION", `"${key}" already exists`, {
                driver: NAME,
                key,
                retryable: false,
              });
            }
            if (options.ifMatch !== undefined && existing?.etag !== normalizeEtag(options.ifMatch)) {
              throw new StorageError("E_PRECONDITION", `"${key}" ${existing ? "has changed" : "does not exist"}`, {
                driver: NAME,
                key,
                retryable: true,
              });
            }
            // The sidecar of the file being replaced stays as `previous` for readers racing the rename.
            const previous = found?.sidecar;
            const sidecar: Sidecar = {
              ...written.id,
              etag: written.etag,
              ...(options.contentType !== undefined && { contentType: options.contentType }),
              ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
            };
            await writeSidecar(key, previous ? { current: sidecar, previous } : { current: sidecar });
            for (let attempt = 0; ; attempt++) {
              try {
                renameSync(written.tmp, path);
                renamed = true;
                break;
              } catch (error) {
                // A new folder (or one a concurrent delete of a sibling just pruned): make it and retry.
                // ensureParent reports a key below an existing object.
                const code = errno(error);
                if ((code !== "ENOENT" && code !== "ENOTDIR") || attempt > 3) throw error;
                ensureParent(path, key);
              }
            }
            await syncDir(path.slice(0, path.lastIndexOf(sep)));
            // rename keeps the temp file's inode and mtime, so what it was written with describes it.
            return {
              key,
              etag: written.etag,
              size: written.size,
              lastModified: new Date(written.mtimeMs),
              ...(options.contentType !== undefined && { contentType: options.contentType }),
              ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
            };
          });
        } finally {
          if (!renamed) rmSync(written.tmp, { force: true });
        }
      } catch (error) {
        if (options.signal?.aborted) checkAborted(NAME, key, options.signal);
        if (errno(error) === "EISDIR") {
          throw new StorageError("E_INVALID_KEY", `key "${key}" is a folder of other keys`, {
            driver: NAME,
            key,
            cause: error,
          });
        }
        throw wrap(error, "write", key);
      }
    },

    async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      await init();
      const path = dataPath(key);
      try {
        return await withLock(key, async () => {
          if (options.ifMatch !== undefined) {
            const existing = await current(key);
            if (existing?.etag !== normalizeEtag(options.ifMatch)) {
              throw new StorageError("E_PRECONDITION", `"${key}" ${existing ? "has changed" : "does not exist"}`, {
                driver: NAME,
                key,
                retryable: true,
              });
            }
          }
          try {
            unlinkSync(path);
          } catch (error) {
            const code = errno(error);
            if (code === "ENOENT" || code === "ENOTDIR") return false;
            if (code === "EISDIR" || code === "EPERM") return false;
            throw error;
          }
          sidecarCache.delete(key);
          rmSync(sidecarPath(key), { force: true });
          await syncDir(path.slice(0, path.lastIndexOf(sep))).catch(() => {});
          pruneEmpty(path, root);
          return true;
        });
      } catch (error) {
        throw wrap(error, "delete", key);
      }
    },

    async list(options: ListOptions = {}): Promise<ListPage> {
      const prefix = validatePrefix(NAME, options.prefix);
      const limit = checkListLimit(NAME, options.limit);
      checkAborted(NAME, undefined, options.signal);
      await init();
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
      // Start the walk in the deepest folder the prefix names completely.
      const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/") + 1) : "";
      const objects: ObjectInfo[] = [];
      try {
        for await (const key of walk(join(root, ...base.split("/").filter(Boolean)), base, after)) {
          if (!key.startsWith(prefix)) continue;
          if (objects.length === limit) return { objects, cursor: encodeCursor(objects[limit - 1]?.key ?? key) };
          checkAborted(NAME, undefined, options.signal);
          const info = await current(key);
          if (info) objects.push(info);
        }
      } catch (error) {
        throw wrap(error, "list", prefix);
      }
      return { objects };
    },
  };
}

function encodeCursor(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeCursor(cursor: string): string {
  if (typeof cursor !== "string" || !/^[A-Za-z0-9_-]*$/.test(cursor)) {
    throw new StorageError("E_INVALID_ARGUMENT", "list cursor is not one this driver returned", { driver: NAME });
  }
  return Buffer.from(cursor, "base64url").toString("utf8");
}

/** Linux's tmpfs and ramfs (statfs magic numbers): nothing there survives a power loss, fsync or not. */
const MEMORY_FILE_SYSTEMS = new Set([0x01021994, 0x858458f6]);

/**
 * Whether `dir` is on a memory file system (a tmpfs such as /dev/shm, common for CI and caches), where an
 * fsync costs a thread-pool round trip and keeps nothing safer. Unknown (no statfs): treated as a disk.
 */
async function inMemory(dir: string): Promise<boolean> {
  if (process.platform !== "linux") return false;
  try {
    return MEMORY_FILE_SYSTEMS.has((await statfs(dir)).type);
  } catch {
    return false;
  }
}

/** Removes temp files left by processes that died mid-write (older than an hour, so never a live one). */
async function sweepTemp(dir: string): Promise<void> {
  const cutoff = Date.now() - 60 * 60 * 1000;
  try {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      const stats = await stat(path).catch(() => undefined);
      if (stats && stats.mtimeMs < cutoff) await rm(path, { force: true });
    }
  } catch {
    // Best effort: a sweep that fails leaves only unused files behind.
  }
}
