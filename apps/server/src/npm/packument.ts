import { randomBytes } from "node:crypto";
import { tarballFilename } from "./names.js";

export interface Person {
  name: string;
  email?: string;
}

export interface VersionManifest {
  name: string;
  version: string;
  deprecated?: string;
  dist: {
    shasum: string;
    integrity: string;
    tarball: string;
    fileCount?: number;
    unpackedSize?: number;
    attestations?: { url: string; provenance: { predicateType: string } };
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** The stored document of one package: a CouchDB-style packument plus fw bookkeeping. */
export interface Packument {
  _id: string;
  _rev: string;
  name: string;
  description?: string;
  "dist-tags": Record<string, string>;
  versions: Record<string, VersionManifest>;
  time: Record<string, string>;
  maintainers: Person[];
  readme?: string;
  readmeFilename?: string;
  users?: Record<string, boolean>;
  keywords?: string[];
  license?: unknown;
  homepage?: string;
  repository?: unknown;
  bugs?: unknown;
  /** fw: versions ever published, so an unpublished version number is never reused. */
  _fwPublished?: string[];
  /** fw: set when the whole package was unpublished; the name stays reserved until re-published. */
  _fwUnpublished?: { time: string; by: string; versions: string[] };
  [key: string]: unknown;
}

/**
 * CouchDB-style revision `<n>-<id>`. The id is random rather than a content hash: hashing would
 * serialize the whole document once more per write, and clients only compare revisions for equality.
 */
export function nextRev(rev: string | undefined): string {
  const n = rev ? Number.parseInt(rev.split("-")[0] ?? "0", 10) || 0 : 0;
  return `${n + 1}-${randomBytes(16).toString("hex")}`;
}

/** Fields npm, pnpm, yarn and bun need to install; the public registry's abbreviated format. */
const INSTALL_FIELDS = [
  "name",
  "version",
  "deprecated",
  "dependencies",
  "optionalDependencies",
  "devDependencies",
  "bundleDependencies",
  "bundledDependencies",
  "peerDependencies",
  "peerDependenciesMeta",
  "acceptDependencies",
  "bin",
  "directories",
  "engines",
  "cpu",
  "os",
  "libc",
  "funding",
  "license",
  "_hasShrinkwrap",
  "hasInstallScript",
] as const;

function tarballUrl(base: string, name: string, version: string): string {
  return `${base}/${name}/-/${tarballFilename(name, version)}`;
}

/** A version manifest as served: tarball URL pointing at this registry, internal fields dropped. */
export function publicVersion(manifest: VersionManifest, base: string): VersionManifest {
  const attestations = manifest.dist.attestations;
  return {
    ...manifest,
    dist: {
      ...manifest.dist,
      tarball: tarballUrl(base, manifest.name, manifest.version),
      ...(attestations && {
        attestations: { ...attestations, url: `${base}/-/npm/v1/attestations/${manifest.name}@${manifest.version}` },
      }),
    },
  };
}

/** The full packument as served (`application/json`). */
export function fullDocument(doc: Packument, base: string): Record<string, unknown> {
  const versions: Record<string, VersionManifest> = {};
  for (const [version, manifest] of Object.entries(doc.versions)) versions[version] = publicVersion(manifest, base);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key.startsWith("_fw")) continue;
    out[key] = value;
  }
  out.versions = versions;
  return out;
}

/** The abbreviated packument (`application/vnd.npm.install-v1+json`): only what installers read. */
export function abbreviatedDocument(doc: Packument, base: string): Record<string, unknown> {
  const versions: Record<string, Record<string, unknown>> = {};
  for (const [version, manifest] of Object.entries(doc.versions)) {
    const slim: Record<string, unknown> = {};
    for (const field of INSTALL_FIELDS) if (manifest[field] !== undefined) slim[field] = manifest[field];
    const dist = publicVersion(manifest, base).dist;
    slim.dist = {
      shasum: dist.shasum,
      integrity: dist.integrity,
      tarball: dist.tarball,
      ...(dist.fileCount !== undefined && { fileCount: dist.fileCount }),
      ...(dist.unpackedSize !== undefined && { unpackedSize: dist.unpackedSize }),
      ...(dist.signatures !== undefined && { signatures: dist.signatures }),
      ...(dist.attestations !== undefined && { attestations: dist.attestations }),
    };
    versions[version] = slim;
  }
  return {
    name: doc.name,
    modified: doc.time.modified ?? new Date(0).toISOString(),
    "dist-tags": doc["dist-tags"],
    versions,
  };
}

/** Latest non-prerelease… as npm does: the `latest` tag, else the highest version. */
export function latestVersion(doc: Packument): string | undefined {
  return doc["dist-tags"].latest ?? Object.keys(doc.versions).at(-1);
}
