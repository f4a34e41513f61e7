import semver from "semver";
import type { TakedownMode } from "../config/uplinks.js";
import type { Packument, VersionManifest } from "../npm/packument.js";

/** Where an uplink's cached copies live, apart from hosted packages (`packages/…`), so one never shadows the other. */
export const uplinkPackumentKey = (uplink: string, name: string) => `uplinks/${uplink}/packages/${name}/packument.json`;
export const uplinkTarballKey = (uplink: string, name: string, filename: string) =>
  `uplinks/${uplink}/packages/${name}/-/${filename}`;
export const uplinkPackagePrefix = (uplink: string, name: string) => `uplinks/${uplink}/packages/${name}/`;

/** fw's bookkeeping on a cached upstream document, stored with it (fields starting `_fw` are never served). */
export interface UplinkMeta {
  uplink: string;
  /** The URL the document was fetched from. */
  url: string;
  /** The upstream's ETag, sent back as If-None-Match when the copy is revalidated. */
  etag?: string;
  /** When the upstream last sent this document (ms since the epoch). */
  fetchedAt: number;
  /** Versions the upstream removed that are kept here (`takedowns: "keep"`). */
  removedUpstream?: string[];
}

export interface CachedPackument extends Packument {
  _fwUplink: UplinkMeta;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** An upstream document fw cannot use: not a packument, or another package's. */
export class UnusableDocument extends Error {
  override readonly name = "UnusableDocument";
}

/**
 * An upstream packument made safe to cache and serve as `name`: it must be that package's document;
 * versions without a usable manifest (an object with `dist.tarball`) are left out; every manifest is
 * pinned to `name` and its version key, so tarball links and file names are built from them and
 * nothing the upstream writes can point elsewhere; fw's own `_fw…` fields and attachments are
 * dropped; dist-tags may only name versions that remain. Attestation links are dropped: fw does not
 * serve an uplink's attestations.
 */
export function sanitizeUpstream(name: string, raw: unknown): Packument {
  if (!isObject(raw)) throw new UnusableDocument("the upstream document is not a JSON object");
  const declared = raw.name ?? raw._id;
  if (declared !== name) {
    throw new UnusableDocument(`the upstream answered with the document of "${String(declared).slice(0, 80)}"`);
  }
  if (!isObject(raw.versions)) throw new UnusableDocument("the upstream document has no versions object");
  const versions: Record<string, VersionManifest> = {};
  for (const [version, manifest] of Object.entries(raw.versions)) {
    if (semver.valid(version) !== version || !isObject(manifest) || !isObject(manifest.dist)) continue;
    if (typeof manifest.dist.tarball !== "string") continue;
    const { attestations: _attestations, ...dist } = manifest.dist;
    versions[version] = { ...manifest, name, version, dist: dist as VersionManifest["dist"] };
  }
  const tags: Record<string, string> = {};
  if (isObject(raw["dist-tags"])) {
    for (const [tag, version] of Object.entries(raw["dist-tags"])) {
      if (typeof version === "string" && Object.hasOwn(versions, version)) tags[tag] = version;
    }
  }
  const time: Record<string, string> = {};
  if (isObject(raw.time)) {
    for (const [key, value] of Object.entries(raw.time)) if (typeof value === "string") time[key] = value;
  }
  const doc: Packument = {
    _id: name,
    _rev: typeof raw._rev === "string" ? raw._rev : "",
    name,
    "dist-tags": tags,
    versions,
    time,
    maintainers: Array.isArray(raw.maintainers) ? (raw.maintainers as Packument["maintainers"]) : [],
  };
  for (const [key, value] of Object.entries(raw)) {
    if (key in doc || key.startsWith("_fw") || key === "_attachments") continue;
    doc[key] = value;
  }
  return doc;
}

/**
 * Applies what a revalidation found to the cached copy. Versions the new document lacks were removed
 * upstream (an unpublish, a malware takedown): with `remove` they are gone (and returned, so their
 * tarballs can be deleted); with `keep` the cached manifests stay, listed in `removedUpstream`.
 */
export function applyTakedowns(
  previous: CachedPackument | undefined,
  next: Packument,
  mode: TakedownMode,
): { doc: Packument; removed: string[]; kept: string[] } {
  if (!previous) return { doc: next, removed: [], kept: [] };
  const removed = Object.keys(previous.versions).filter((version) => !next.versions[version]);
  if (removed.length === 0 || mode === "remove") return { doc: next, removed, kept: [] };
  const versions: Record<string, VersionManifest> = {};
  const all = [...Object.keys(next.versions), ...removed].sort(semver.compare);
  for (const version of all)
    versions[version] = (next.versions[version] ?? previous.versions[version]) as VersionManifest;
  return { doc: { ...next, versions }, removed: [], kept: removed };
}
