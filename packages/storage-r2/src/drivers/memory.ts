import { createHash } from "node:crypto";
import {
  bytesOf,
  checkListLimit,
  checkPutOptions,
  isStream,
  normalizeEtag,
  readAll,
  resolveRange,
  streamOfBytes,
} from "../body.js";
import { checkAborted, StorageError } from "../errors.js";
import { compareKeys, validateKey, validatePrefix } from "../keys.js";
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

interface Entry {
  info: ObjectInfo;
  bytes: Uint8Array;
}

const NAME = "memory";

/** Keeps objects in a Map. For unit tests and short-lived tools; everything is gone on exit. */
export function memoryDriver(): StorageDriver {
  const entries = new Map<string, Entry>();

  function lookup(key: string): Entry | undefined {
    return entries.get(key);
  }

  return {
    name: NAME,

    async head(key: string, options: RequestOptions = {}) {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const entry = lookup(key);
      return entry ? { ...entry.info } : null;
    },

    async get(key: string, options: RequestOptions = {}): Promise<ObjectBytes | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const entry = lookup(key);
      return entry ? { ...entry.info, body: entry.bytes.slice() } : null;
    },

    async stream(key: string, options: StreamOptions = {}): Promise<ObjectStream | null> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const entry = lookup(key);
      if (!entry) return null;
      if (!options.range) return { ...entry.info, body: streamOfBytes(entry.bytes) };
      const range = resolveRange(NAME, key, options.range, entry.info.size);
      const part = entry.bytes.subarray(range.offset, range.offset + range.length);
      return { ...entry.info, body: streamOfBytes(part), range };
    },

    async put(key: string, body: PutBody, options: PutOptions = {}): Promise<ObjectInfo> {
      validateKey(NAME, key);
      checkPutOptions(NAME, key, options);
      checkAborted(NAME, key, options.signal);
      // Copy: the caller may reuse its buffer after we return.
      const bytes = isStream(body) ? await readAll(body) : bytesOf(body).slice();
      if (options.size !== undefined && bytes.byteLength !== options.size) {
        throw new StorageError("E_INVALID_ARGUMENT", `body has ${bytes.byteLength} bytes, not ${options.size}`, {
          driver: NAME,
          key,
        });
      }
      checkAborted(NAME, key, options.signal);
      const existing = lookup(key);
      if (options.ifNoneMatch === "*" && existing) {
        throw new StorageError("E_PRECONDITION", `"${key}" already exists`, { driver: NAME, key, retryable: false });
      }
      if (options.ifMatch !== undefined && existing?.info.etag !== normalizeEtag(options.ifMatch)) {
        throw new StorageError("E_PRECONDITION", `"${key}" ${existing ? "has changed" : "does not exist"}`, {
          driver: NAME,
          key,
          retryable: true,
        });
      }
      const info: ObjectInfo = {
        key,
        etag: createHash("md5").update(bytes).digest("hex"),
        size: bytes.byteLength,
        lastModified: new Date(),
        ...(options.contentType !== undefined && { contentType: options.contentType }),
        ...(options.cacheControl !== undefined && { cacheControl: options.cacheControl }),
      };
      entries.set(key, { info, bytes });
      return { ...info };
    },

    async delete(key: string, options: DeleteOptions = {}): Promise<boolean> {
      validateKey(NAME, key);
      checkAborted(NAME, key, options.signal);
      const existing = lookup(key);
      if (options.ifMatch !== undefined && existing?.info.etag !== normalizeEtag(options.ifMatch)) {
        throw new StorageError("E_PRECONDITION", `"${key}" ${existing ? "has changed" : "does not exist"}`, {
          driver: NAME,
          key,
          retryable: true,
        });
      }
      return entries.delete(key);
    },

    async list(options: ListOptions = {}): Promise<ListPage> {
      const prefix = validatePrefix(NAME, options.prefix);
      const limit = checkListLimit(NAME, options.limit);
      checkAborted(NAME, undefined, options.signal);
      const after = options.cursor === undefined ? undefined : decodeCursor(options.cursor);
      const keys = [...entries.keys()]
        .filter((key) => key.startsWith(prefix) && (after === undefined || compareKeys(key, after) > 0))
        .sort(compareKeys);
      const page = keys.slice(0, limit);
      const objects = page.map((key) => ({ ...(entries.get(key) as Entry).info }));
      const last = page[page.length - 1];
      return keys.length > limit && last !== undefined ? { objects, cursor: encodeCursor(last) } : { objects };
    },

    async dispose() {
      entries.clear();
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
