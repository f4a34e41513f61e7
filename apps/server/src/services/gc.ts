import { createHash } from "node:crypto";
import { isStorageError, type ObjectInfo, type StorageDriver } from "@fw/storage-r2";
import { tarballFilename } from "../npm/names.js";
import type { Packument } from "../npm/packument.js";
import { packumentKey } from "./packages.js";

/**
 * The default grace period: 10 minutes, the same as the server's own `ORPHAN_GRACE_MS`
 * (services/packages.ts), after which a publish may replace a tarball no packument references. A
 * younger unreferenced object may belong to a publish that stored its tarball and has not committed
 * the document yet, so it is never collected. Keep the two equal.
 */
export const DEFAULT_GC_GRACE_MS = 10 * 60 * 1000;

/** What an orphan is: a tarball of a version the packument does not list, or that version's attestation. */
export type OrphanKind = "tarball" | "attestation";

export interface Orphan {
  key: string;
  package: string;
  kind: OrphanKind;
  size: number;
  /** The ETag seen while listing; deletion is conditional on it. */
  etag: string;
  lastModified: string;
}

export interface SkippedOrphan extends Orphan {
  reason: string;
}

export interface GcOptions {
  /** Unreferenced objects younger than this (by last-modified time) are left alone. Default `DEFAULT_GC_GRACE_MS`. */
  graceMs?: number;
  /** Delete the orphans found. Default false: only report them (a dry run). */
  apply?: boolean;
  /**
   * After deleting, wait this long and read the packuments again: a retried publish with the same
   * bytes reuses an existing tarball without rewriting it (so its ETag does not change), and if it
   * committed while the tarball was being deleted, the tarball is put back. Default 5000 ms.
   */
  settleMs?: number;
  /**
   * Bytes of deleted objects kept in memory until that re-check; past it the re-check runs early.
   * Default 256 MiB.
   */
  restoreBudgetBytes?: number;
  /** The clock, in ms since the epoch. Default `Date.now`. */
  now?: () => number;
  signal?: AbortSignal;
}

export interface GcReport {
  /** Packages (folders under `packages/`) looked at. */
  packages: number;
  /** Objects listed under `packages/`. */
  objects: number;
  /** Unreferenced objects older than the grace period: what a run with `apply` deletes. */
  orphans: Orphan[];
  /** Their total size in bytes. */
  bytes: number;
  /** Unreferenced objects still inside the grace period, left alone. */
  young: number;
  /** Deleted (only with `apply`). */
  deleted: Orphan[];
  /** Found but not deleted, or put back (only with `apply`): changed since listed, or referenced by now. */
  skipped: SkippedOrphan[];
  /** Packages whose packument could not be read: none of their objects is touched. */
  errors: Array<{ package: string; reason: string }>;
}

interface Candidate {
  info: ObjectInfo;
  kind: OrphanKind;
  /** The tarball's file name or the attestation's version. */
  ref: string;
}

/** `packages/<name>/<rest…>` → name (scoped names span two segments) and the rest. */
function splitPackageKey(key: string): { name: string; rest: string[] } | undefined {
  const segments = key.split("/");
  if (segments[0] !== "packages") return undefined;
  const scoped = segments[1]?.startsWith("@") ?? false;
  const nameParts = scoped ? 2 : 1;
  if (segments.length < 2 + nameParts) return undefined;
  return { name: segments.slice(1, 1 + nameParts).join("/"), rest: segments.slice(1 + nameParts) };
}

function candidateOf(info: ObjectInfo, rest: string[]): Candidate | undefined {
  if (rest.length !== 2) return undefined;
  const [folder, file] = rest as [string, string];
  if (folder === "-" && file.endsWith(".tgz")) return { info, kind: "tarball", ref: file };
  if (folder === "attestations" && file.endsWith(".json"))
    return { info, kind: "attestation", ref: file.slice(0, -".json".length) };
  return undefined;
}

/**
 * The tarball file names and attestation versions a packument references: those of its versions,
 * plus the file named by any version's `dist.tarball` (documents imported from elsewhere may name
 * their own files).
 */
function references(name: string, doc: Packument | null): { files: Set<string>; versions: Set<string> } {
  const files = new Set<string>();
  const versions = new Set<string>();
  for (const [version, manifest] of Object.entries(doc?.versions ?? {})) {
    versions.add(version);
    files.add(tarballFilename(name, version));
    const url = manifest?.dist?.tarball;
    if (typeof url === "string" && url !== "") {
      const last = url.slice(url.lastIndexOf("/") + 1);
      try {
        files.add(decodeURIComponent(last));
      } catch {
        files.add(last);
      }
    }
  }
  return { files, versions };
}

function isReferenced(candidate: { kind: OrphanKind; ref: string }, refs: ReturnType<typeof references>): boolean {
  return candidate.kind === "tarball" ? refs.files.has(candidate.ref) : refs.versions.has(candidate.ref);
}

class UnreadablePackument extends Error {}

/** The stored packument, `null` when there is none; throws `UnreadablePackument` when it is not a document. */
async function readPackument(storage: StorageDriver, name: string, signal?: AbortSignal): Promise<Packument | null> {
  const object = await storage.get(packumentKey(name), signal ? { signal } : {});
  if (!object) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(object.body));
  } catch {
    throw new UnreadablePackument("the packument is not valid JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new UnreadablePackument("not an object");
  const versions = (doc as { versions?: unknown }).versions;
  if (versions !== undefined && (typeof versions !== "object" || versions === null || Array.isArray(versions)))
    throw new UnreadablePackument("its versions are not an object");
  return doc as Packument;
}

function orphanOf(name: string, candidate: Candidate): Orphan {
  return {
    key: candidate.info.key,
    package: name,
    kind: candidate.kind,
    size: candidate.info.size,
    etag: candidate.info.etag,
    lastModified: candidate.info.lastModified.toISOString(),
  };
}

/** The sha512 SRI of bytes, to check a tarball before it is put back under a version that names it. */
function sri(bytes: Uint8Array): string {
  return `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

interface Deleted {
  orphan: Orphan;
  ref: string;
  bytes: Uint8Array;
}

/**
 * Finds tarballs and attestations under `packages/` that no packument references and that are older
 * than the grace period: left by publishes that stored the tarball and crashed before committing the
 * document, or by unpublishes that crashed before deleting it. With `apply` it deletes them, each
 * conditional on the ETag it saw and only after reading the packument once more, and puts back any a
 * concurrent publish referenced meanwhile. Referenced objects, other keys, and every object of a
 * package whose packument cannot be read are never touched.
 */
export async function collectGarbage(storage: StorageDriver, options: GcOptions = {}): Promise<GcReport> {
  const graceMs = options.graceMs ?? DEFAULT_GC_GRACE_MS;
  if (!(graceMs >= 0)) throw new RangeError("graceMs must be a number of milliseconds of at least 0");
  const now = (options.now ?? Date.now)();
  const { signal } = options;
  const report: GcReport = {
    packages: 0,
    objects: 0,
    orphans: [],
    bytes: 0,
    young: 0,
    deleted: [],
    skipped: [],
    errors: [],
  };
  const found: Array<{ orphan: Orphan; ref: string }> = [];

  const judge = async (name: string, candidates: Candidate[]) => {
    report.packages++;
    if (candidates.length === 0) return;
    let refs: ReturnType<typeof references>;
    try {
      refs = references(name, await readPackument(storage, name, signal));
    } catch (error) {
      if (!(error instanceof UnreadablePackument)) throw error;
      report.errors.push({ package: name, reason: error.message });
      return;
    }
    for (const candidate of candidates) {
      if (isReferenced(candidate, refs)) continue;
      if (now - candidate.info.lastModified.getTime() < graceMs) {
        report.young++;
        continue;
      }
      const orphan = orphanOf(name, candidate);
      report.orphans.push(orphan);
      report.bytes += orphan.size;
      found.push({ orphan, ref: candidate.ref });
    }
  };

  let current: { name: string; candidates: Candidate[] } | undefined;
  let cursor: string | undefined;
  do {
    const page = await storage.list({
      prefix: "packages/",
      ...(cursor !== undefined && { cursor }),
      ...(signal && { signal }),
    });
    for (const info of page.objects) {
      report.objects++;
      const parts = splitPackageKey(info.key);
      if (!parts) continue;
      if (current?.name !== parts.name) {
        if (current) await judge(current.name, current.candidates);
        current = { name: parts.name, candidates: [] };
      }
      const candidate = candidateOf(info, parts.rest);
      if (candidate) current.candidates.push(candidate);
    }
    cursor = page.cursor;
  } while (cursor);
  if (current) await judge(current.name, current.candidates);

  if (options.apply) await remove(storage, found, report, options);
  return report;
}

async function remove(
  storage: StorageDriver,
  found: Array<{ orphan: Orphan; ref: string }>,
  report: GcReport,
  options: GcOptions,
): Promise<void> {
  const { signal } = options;
  const budget = options.restoreBudgetBytes ?? 256 * 1024 * 1024;
  let pending: Deleted[] = [];
  let pendingBytes = 0;
  const skip = (orphan: Orphan, reason: string) => report.skipped.push({ ...orphan, reason });

  const byPackage = new Map<string, Array<{ orphan: Orphan; ref: string }>>();
  for (const entry of found) {
    const list = byPackage.get(entry.orphan.package) ?? [];
    list.push(entry);
    byPackage.set(entry.orphan.package, list);
  }
  for (const [name, entries] of byPackage) {
    let refs: ReturnType<typeof references>;
    try {
      refs = references(name, await readPackument(storage, name, signal));
    } catch (error) {
      if (!(error instanceof UnreadablePackument)) throw error;
      for (const { orphan } of entries) skip(orphan, `the packument became unreadable: ${error.message}`);
      continue;
    }
    for (const { orphan, ref } of entries) {
      if (isReferenced({ kind: orphan.kind, ref }, refs)) {
        skip(orphan, "a publish referenced it since it was listed");
        continue;
      }
      const object = await storage.get(orphan.key, signal ? { signal } : {});
      if (!object) {
        skip(orphan, "already gone");
        continue;
      }
      if (object.etag !== orphan.etag) {
        skip(orphan, "it changed since it was listed");
        continue;
      }
      try {
        if (!(await storage.delete(orphan.key, { ifMatch: orphan.etag, ...(signal && { signal }) }))) {
          skip(orphan, "already gone");
          continue;
        }
      } catch (error) {
        if (!isStorageError(error, "E_PRECONDITION")) throw error;
        skip(orphan, "it changed since it was listed");
        continue;
      }
      pending.push({ orphan, ref, bytes: object.body });
      pendingBytes += object.body.byteLength;
      if (pendingBytes >= budget) {
        await settle(storage, pending, report, options);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  await settle(storage, pending, report, options);
}

/** Waits, then puts back any deleted object that a publish referenced meanwhile. */
async function settle(storage: StorageDriver, deleted: Deleted[], report: GcReport, options: GcOptions) {
  if (deleted.length === 0) return;
  const { signal } = options;
  await sleep(options.settleMs ?? 5000, signal);
  const docs = new Map<string, Packument | null | "unreadable">();
  for (const entry of deleted) {
    const name = entry.orphan.package;
    if (!docs.has(name)) {
      try {
        docs.set(name, await readPackument(storage, name, signal));
      } catch (error) {
        if (!(error instanceof UnreadablePackument)) throw error;
        docs.set(name, "unreadable");
      }
    }
    const doc = docs.get(name);
    const refs = doc === "unreadable" ? undefined : references(name, doc ?? null);
    if (refs && !isReferenced({ kind: entry.orphan.kind, ref: entry.ref }, refs)) {
      report.deleted.push(entry.orphan);
      continue;
    }
    // Referenced again (or the document is unreadable, so it may be): put the same bytes back, unless
    // a version names the tarball with other content or another upload already took the key.
    const wanted =
      entry.orphan.kind === "tarball" && doc && doc !== "unreadable"
        ? Object.entries(doc.versions).find(([v]) => tarballFilename(name, v) === entry.ref)?.[1]?.dist?.integrity
        : undefined;
    const sha512s =
      typeof wanted === "string"
        ? wanted
            .split(/\s+/)
            .filter((each) => each.startsWith("sha512-"))
            .map((each) => each.split("?")[0])
        : [];
    if (sha512s.length > 0 && !sha512s.includes(sri(entry.bytes))) {
      report.deleted.push(entry.orphan);
      continue;
    }
    try {
      await storage.put(entry.orphan.key, entry.bytes, {
        ifNoneMatch: "*",
        contentType: entry.orphan.kind === "tarball" ? "application/octet-stream" : "application/json",
        ...(signal && { signal }),
      });
      report.skipped.push({ ...entry.orphan, reason: "a publish referenced it while it was deleted: put back" });
    } catch (error) {
      if (!isStorageError(error, "E_PRECONDITION")) throw error;
      report.skipped.push({ ...entry.orphan, reason: "a publish referenced it and uploaded it again" });
    }
  }
}
