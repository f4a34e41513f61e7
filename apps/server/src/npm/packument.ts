import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
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
  return `${revisionNumber(rev) + 1}-${randomBytes(16).toString("hex")}`;
}

/** The count of a revision `<n>-<id>`: how many writes made the document; 0 without one. */
export function revisionNumber(rev: string | undefined): number {
  return rev ? Number.parseInt(rev, 10) || 0 : 0;
}

const utf8 = new TextEncoder();
const COMMA = 0x2c;
const COMMA_BYTES = utf8.encode(",");

/** The top-level objects that grow with every version, whose entries are worth reusing. */
const SECTIONS = ["versions", "time"];

/** Where each entry `"key":value` of one top-level object sits in a serialized body. */
interface Section {
  value: Record<string, unknown>;
  keys: string[];
  starts: Uint32Array;
  ends: Uint32Array;
}

/** A package's last serialized document. */
interface Serialized {
  body: Uint8Array;
  sections: Map<string, Section>;
}

/** A run of bytes of the new document: copied from the previous body, or freshly encoded. */
type Piece = { from: Uint8Array; start: number; end: number };

/**
 * Serializes stored packuments byte for byte as `JSON.stringify` would, but reuses the bytes of the
 * `versions` and `time` entries it already serialized in the package's previous document: a publish
 * adds one version to a document of thousands, and stringifying them all again on every write is most
 * of its cost. An entry is reused only when it holds the very same manifest object (by identity), or an
 * equal string, under the same key; documents read from storage or cloned are serialized afresh. This
 * relies on what the packument cache already requires: a document, once written or cached, is never
 * mutated in place.
 */
export class PackumentEncoder {
  private readonly last: LRUCache<string, Serialized>;

  /**
   * `maxBytes`: memory for the previous bodies it keeps, one per package, least recently written
   * dropped first. Default 16 MB; a document larger than that is always serialized in full.
   */
  constructor(maxBytes = 16 * 1024 * 1024) {
    this.last = new LRUCache<string, Serialized>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => {
        let size = entry.body.byteLength;
        for (const section of entry.sections.values()) size += section.starts.byteLength * 2;
        return Math.max(1, size);
      },
    });
  }

  encode(doc: Packument): Uint8Array {
    const prev = this.last.get(doc.name);
    const pieces: Piece[] = [];
    const sections = new Map<string, Section>();
    let text = "{";
    let first = true;
    let length = 0;
    const flush = () => {
      const bytes = utf8.encode(text);
      pieces.push({ from: bytes, start: 0, end: bytes.byteLength });
      length += bytes.byteLength;
      text = "";
    };
    for (const key of Object.keys(doc)) {
      const value = doc[key];
      if (SECTIONS.includes(key) && isPlainObject(value)) {
        text += `${first ? "" : ","}${JSON.stringify(key)}:{`;
        first = false;
        flush();
        const section = entryPieces(value, prev?.body, prev?.sections.get(key), pieces, length);
        sections.set(key, section.section);
        length = section.offset;
        text = "}";
        continue;
      }
      const json = JSON.stringify(value);
      if (json === undefined) continue;
      text += `${first ? "" : ","}${JSON.stringify(key)}:${json}`;
      first = false;
    }
    text += "}";
    flush();
    // Every byte is written below, so the buffer need not be zeroed first.
    const body = Buffer.allocUnsafeSlow(length);
    let offset = 0;
    for (const piece of pieces) {
      body.set(piece.from.subarray(piece.start, piece.end), offset);
      offset += piece.end - piece.start;
    }
    if (offset !== length) throw new Error(`packument encoder wrote ${offset} of ${length} bytes`);
    const out = new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    if (sections.size > 0) this.last.set(doc.name, { body: out, sections });
    else this.last.delete(doc.name);
    return out;
  }
}

/**
 * Appends the pieces of an object's entries (without its braces), starting at byte `offset` of the
 * body, and returns where each entry lands. Consecutive reused entries become one copy.
 */
function entryPieces(
  value: Record<string, unknown>,
  prevBody: Uint8Array | undefined,
  prev: Section | undefined,
  pieces: Piece[],
  offset: number,
): { section: Section; offset: number } {
  const keys = Object.keys(value);
  const starts = new Uint32Array(keys.length);
  const ends = new Uint32Array(keys.length);
  let index: Map<string, number> | undefined;
  let run: Piece | undefined;
  let count = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const entry = value[key];
    const comma = count > 0;
    let j = -1;
    // The same object or string under the same key as before; then find where it was (usually at the same index).
    if (prev && prevBody && reusable(entry) && prev.value[key] === entry) {
      if (prev.keys[i] === key) j = i;
      else {
        index ??= new Map(prev.keys.map((k, n) => [k, n]));
        j = index.get(key) ?? -1;
      }
    }
    if (j >= 0 && prevBody && prev) {
      const start = prev.starts[j] as number;
      const end = prev.ends[j] as number;
      // The previous body had this entry right after the one just copied: extend that copy over the comma.
      if (comma && run?.from === prevBody && run.end + 1 === start && prevBody[run.end] === COMMA) {
        run.end = end;
        offset += 1;
      } else {
        if (comma) {
          pieces.push({ from: COMMA_BYTES, start: 0, end: 1 });
          offset += 1;
        }
        run = { from: prevBody, start, end };
        pieces.push(run);
      }
      starts[i] = offset;
      offset += end - start;
      ends[i] = offset;
      count++;
      continue;
    }
    const json = JSON.stringify(entry);
    if (json === undefined) continue;
    const bytes = utf8.encode(`${comma ? "," : ""}${JSON.stringify(key)}:${json}`);
    run = undefined;
    pieces.push({ from: bytes, start: 0, end: bytes.byteLength });
    starts[i] = offset + (comma ? 1 : 0);
    offset += bytes.byteLength;
    ends[i] = offset;
    count++;
  }
  return { section: { value, keys, starts, ends }, offset };
}

/** Values whose serialization is fixed by identity (objects never mutated) or by value (strings). */
function reusable(value: unknown): boolean {
  return typeof value === "string" || (typeof value === "object" && value !== null);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { toJSON?: unknown }).toJSON !== "function"
  );
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
