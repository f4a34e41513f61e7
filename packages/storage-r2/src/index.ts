export { readAll } from "./body.js";
export { type CasOptions, type CasResult, type CasUpdater, type Codec, casUpdate, jsonCodec } from "./cas.js";
export { isStorageError, StorageError, type StorageErrorCode, type StorageErrorOptions } from "./errors.js";
export { compareKeys, MAX_KEY_BYTES, MAX_SEGMENT_BYTES, validateKey, validatePrefix } from "./keys.js";
export { type SyncOptions, type SyncProgress, type SyncReport, sync } from "./sync.js";
export type {
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
} from "./types.js";
