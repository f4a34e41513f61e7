import { checkAborted } from "./errors.js";
import { compareKeys, validatePrefix } from "./keys.js";
import type { ObjectInfo, StorageDriver } from "./types.js";

export interface SyncOptions {
  /** Only keys under this prefix are mirrored. Default: everything. */
  prefix?: string;
  /** Report what would happen without writing or deleting anything. */
  dryRun?: boolean;
  /** Delete objects under the prefix that the source no longer has. Default `true` (a mirror). */
  deleteExtraneous?: boolean;
  /** Copies in flight at once. Default 8. */
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?(event: SyncProgress): void;
}

export interface SyncProgress {
  action: "copy" | "skip" | "delete";
  key: string;
  size: number;
}

export interface SyncReport {
  copied: string[];
  skipped: string[];
  deleted: string[];
  bytesCopied: number;
  dryRun: boolean;
}

const MD5 = /^[0-9a-f]{32}$/;

/**
 * Whether `target` already holds `source`'s content. Single-part ETags are MD5s of the content on
 * every driver, so they are compared directly; when either side is multipart (`…-N`) or opaque, equal
 * size and a target at least as new as the source count as the same.
 */
export function sameObject(source: ObjectInfo, target: ObjectInfo): boolean {
  if (source.size !== target.size) return false;
  if (MD5.test(source.etag) && MD5.test(target.etag)) return source.etag === target.etag;
  if (source.etag === target.etag) return true;
  return target.lastModified.getTime() >= source.lastModified.getTime();
}

async function* walk(driver: StorageDriver, prefix: string, signal?: AbortSignal): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined;
  do {
    const page = await driver.list({ prefix, cursor, signal });
    yield* page.objects;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

/**
 * Mirrors the objects under a prefix from one driver to another (for example a laptop's fs storage to
 * R2), copying only what is new or changed. Both listings are walked in key order side by side, so
 * memory stays flat however many objects there are.
 */
export async function sync(from: StorageDriver, to: StorageDriver, options: SyncOptions = {}): Promise<SyncReport> {
  const prefix = validatePrefix("sync", options.prefix);
  const dryRun = options.dryRun ?? false;
  const deleteExtraneous = options.deleteExtraneous ?? true;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const { signal } = options;
  const report: SyncReport = { copied: [], skipped: [], deleted: [], bytesCopied: 0, dryRun };
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;

  const schedule = async (task: () => Promise<void>) => {
    const running = task().catch((error: unknown) => {
      failure ??= error;
    });
    const tracked = running.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    if (inFlight.size >= concurrency) await Promise.race(inFlight);
  };

  const copy = (object: ObjectInfo) =>
    schedule(async () => {
      if (!dryRun) {
        const source = await from.stream(object.key, { signal });
        if (!source) return; // deleted while we were syncing: nothing to mirror
        await to.put(object.key, source.body, {
          size: source.size,
          signal,
          ...(source.contentType !== undefined && { contentType: source.contentType }),
          ...(source.cacheControl !== undefined && { cacheControl: source.cacheControl }),
        });
      }
      report.copied.push(object.key);
      report.bytesCopied += object.size;
      options.onProgress?.({ action: "copy", key: object.key, size: object.size });
    });

  const remove = (object: ObjectInfo) =>
    schedule(async () => {
      if (!dryRun) await to.delete(object.key, { signal });
      report.deleted.push(object.key);
      options.onProgress?.({ action: "delete", key: object.key, size: object.size });
    });

  const sources = walk(from, prefix, signal);
  const targets = walk(to, prefix, signal);
  let source = await sources.next();
  let target = await targets.next();
  while (!source.done || !target.done) {
    checkAborted("sync", undefined, signal);
    if (failure) break;
    const order = source.done ? 1 : target.done ? -1 : compareKeys(source.value.key, target.value.key);
    if (order < 0 && !source.done) {
      await copy(source.value);
      source = await sources.next();
    } else if (order > 0 && !target.done) {
      if (deleteExtraneous) await remove(target.value);
      target = await targets.next();
    } else if (!source.done && !target.done) {
      if (sameObject(source.value, target.value)) {
        report.skipped.push(source.value.key);
        options.onProgress?.({ action: "skip", key: source.value.key, size: source.value.size });
      } else {
        await copy(source.value);
      }
      source = await sources.next();
      target = await targets.next();
    }
  }
  await Promise.all(inFlight);
  if (failure) throw failure;
  report.copied.sort(compareKeys);
  report.deleted.sort(compareKeys);
  return report;
}
