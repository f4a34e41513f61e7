import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import { jsonByteStream, LazyMembers } from "./json-stream.js";
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

/** The top-level objects that grow with every version, whose entries are worth reusing. */
const SECTIONS = ["versions", "time"];

/** Where each entry `"key":value` of one top-level object sits in a serialized body. */
interface Section {
  /** The object serialized, held weakly: see `PackumentEncoder` on when a body is dropped. */
  value: WeakRef<Record<string, unknown>>;
  keys: string[];
  starts: Uint32Array;
  ends: Uint32Array;
}

/** A package's last serialized document. */
interface Serialized {
  name: string;
  body: Uint8Array;
  sections: Map<string, Section>;
  /** Storage is done with the body (its write settled): see `PackumentEncoder.release`. */
  released: boolean;
  /** A newer body of the package was written: this one is no longer copied from. */
  retired: boolean;
  /** An earlier body's buffer, free for the package's next body to be written into. */
  spare?: ArrayBuffer;
}

/**
 * Body buffers over this size are allocated in whole steps of it, so that successive publishes to a
 * growing document fit the buffer of the body before (see `PackumentEncoder.release`) until the
 * document outgrows it. Fresh pages fault in on first write: measured here, copying 1.6 MB into a
 * fresh buffer took 6 ms, into a reused one 0.2 ms — most of a publish to a package of 2,000 versions.
 * The steps cost at most 256 KB of slack per kept body.
 */
const BUFFER_STEP = 256 * 1024;

function stepped(size: number): number {
  return size <= BUFFER_STEP ? size : Math.ceil(size / BUFFER_STEP) * BUFFER_STEP;
}

/**
 * The body being written: one buffer, sized from the package's previous body when there is one, so a
 * large document is never held twice (once in pieces, once joined). Copies from the previous body are
 * held back while they run on, so consecutive reused entries become one copy.
 */
class BodyWriter {
  private buffer: Buffer;
  private length = 0;
  private run: { from: Uint8Array; start: number; end: number } | undefined;

  /** `spare`: a buffer no one reads any more, used when it has room for `capacity`. */
  constructor(capacity: number, spare?: ArrayBuffer) {
    const size = stepped(Math.max(1024, capacity));
    // Every byte up to `length` is written before it is read, so the buffer need not be zeroed.
    this.buffer = spare && spare.byteLength >= size ? Buffer.from(spare) : Buffer.allocUnsafeSlow(size);
  }

  /** Bytes written so far, counting the copy held back. */
  get offset(): number {
    return this.length + (this.run ? this.run.end - this.run.start : 0);
  }

  /** Whether the copy held back ends at `start` of `from`, so copying from there extends it. */
  runEndsAt(from: Uint8Array, start: number): boolean {
    return this.run?.from === from && this.run.end === start;
  }

  copy(from: Uint8Array, start: number, end: number): void {
    if (this.run?.from === from && this.run.end === start) {
      this.run.end = end;
      return;
    }
    this.flushRun();
    this.run = { from, start, end };
  }

  text(text: string): void {
    this.flushRun();
    for (;;) {
      const { read, written } = utf8.encodeInto(text, this.buffer.subarray(this.length));
      this.length += written;
      if (read === text.length) return;
      text = text.slice(read);
      this.grow(Buffer.byteLength(text));
    }
  }

  /**
   * The body. A stepped buffer (see `BUFFER_STEP`) is kept whole unless more than a step of it went
   * unused; a smaller one is copied to its length, so that a kept small body holds only its bytes.
   */
  finish(): Uint8Array {
    this.flushRun();
    const slack = this.buffer.byteLength - this.length;
    const trim = this.buffer.byteLength > BUFFER_STEP ? slack > BUFFER_STEP + 64 * 1024 : slack > 1024;
    if (trim) return new Uint8Array(this.buffer.subarray(0, this.length));
    return new Uint8Array(this.buffer.buffer, this.buffer.byteOffset, this.length);
  }

  private flushRun(): void {
    const run = this.run;
    if (!run) return;
    this.run = undefined;
    const size = run.end - run.start;
    if (this.length + size > this.buffer.byteLength) this.grow(size);
    this.buffer.set(run.from.subarray(run.start, run.end), this.length);
    this.length += size;
  }

  private grow(needed: number): void {
    const capacity = Math.max(this.length + needed, Math.ceil(this.buffer.byteLength * 1.5));
    const next = Buffer.allocUnsafeSlow(stepped(capacity));
    this.buffer.copy(next, 0, 0, this.length);
    this.buffer = next;
  }
}

/** Documents expected above this size may be written as a stream (see `PackumentEncoder.storedForm`). */
const STREAM_ABOVE = 1024 * 1024;

/**
 * Serializes stored packuments byte for byte as `JSON.stringify` would, but reuses the bytes of the
 * `versions` and `time` entries it already serialized in the package's previous document: a publish
 * adds one version to a document of thousands, and stringifying them all again on every write is most
 * of its cost. An entry is reused only when it holds the very same manifest object (by identity), or an
 * equal string, under the same key; documents read from storage or cloned are serialized afresh. This
 * relies on what the packument cache already requires: a document, once written or cached, is never
 * mutated in place.
 *
 * A previous body is kept only while its document is held somewhere else too (the packument cache):
 * once the cache has let the document go, the next write reads it again from storage, whose objects
 * can never be the ones serialized here, so the body could not be reused. It is dropped when the
 * document is collected — after the growing package of the bench was released for a popular one, its
 * 2.3 MB body and the 2,000 parsed manifests the body kept alive stayed in memory to no use.
 *
 * A body's buffer is written again by the package's next body but one, once storage is done with it
 * (`release`, which the storage codec calls when the write settled) and a newer body replaced it: two
 * buffers take turns instead of a fresh one per publish, whose pages fault in on first write and whose
 * predecessors wait for a full garbage collection (a package of 2,000 versions publishing in a loop left
 * 10–20 MB of dead 2.5 MB bodies at any time).
 */
export class PackumentEncoder {
  private readonly last: LRUCache<string, Serialized>;
  private readonly collected = new FinalizationRegistry<{ name: string; serialized: Serialized }>(
    ({ name, serialized }) => {
      if (this.last.peek(name) === serialized) this.last.delete(name);
    },
  );
  /** The bodies handed out and not released yet, to find them by their bytes. */
  private readonly written = new WeakMap<Uint8Array, Serialized>();

  /**
   * `maxBytes`: memory for the previous bodies it keeps, one per package, least recently written
   * dropped first. Default 16 MB; a document larger than that is always serialized in full. A kept
   * body may also hold its spare (the buffer of the body before it, see `release`), not charged: that
   * memory would otherwise be garbage awaiting collection, so at most twice `maxBytes` in all.
   */
  constructor(private readonly maxBytes = 16 * 1024 * 1024) {
    this.last = new LRUCache<string, Serialized>({
      maxSize: maxBytes,
      sizeCalculation: (entry) => {
        let size = entry.body.buffer.byteLength;
        for (const section of entry.sections.values()) size += section.starts.byteLength * 2;
        return Math.max(1, size);
      },
      dispose: (entry) => this.collected.unregister(entry),
    });
  }

  /** Whether the previous body of the package is kept (for tests). */
  keeps(name: string): boolean {
    return this.last.has(name);
  }

  /**
   * Storage is done with `bytes`, an `encode` result (a write of them succeeded or failed; drivers keep
   * no reference to a body once `put` settles): their buffer may be written again once the package has
   * a newer body. Other values are ignored.
   */
  release(bytes: unknown): void {
    if (!(bytes instanceof Uint8Array)) return;
    const serialized = this.written.get(bytes);
    if (!serialized) return;
    this.written.delete(bytes);
    serialized.released = true;
    if (serialized.retired) this.recycle(serialized);
  }

  /** Gives a released, retired body's buffer to the package's current body as its spare. */
  private recycle(serialized: Serialized): void {
    const current = this.last.peek(serialized.name);
    if (current && current !== serialized && current.body.buffer !== serialized.body.buffer) {
      current.spare ??= serialized.body.buffer as ArrayBuffer;
    }
  }

  /**
   * What to store: `encode`'s bytes, or — for a document larger than the bodies this encoder keeps and
   * than `STREAM_ABOVE` — the same bytes as a stream made while it is written, so that a publish to a
   * 20 MB packument does not hold another 20 MB (and its text) at once.
   */
  storedForm(doc: Packument, sizeHint?: number): Uint8Array | ReadableStream<Uint8Array> {
    const expected = this.last.peek(doc.name)?.body.byteLength ?? sizeHint;
    if (expected !== undefined && expected > Math.max(this.maxBytes, STREAM_ABOVE)) {
      this.last.delete(doc.name);
      return jsonByteStream(doc);
    }
    return this.encode(doc, sizeHint);
  }

  /** `sizeHint`: the expected size in bytes (e.g. the stored document's), used when no earlier body is known. */
  encode(doc: Packument, sizeHint?: number): Uint8Array {
    const prev = this.last.get(doc.name);
    const expected = prev?.body.byteLength ?? sizeHint;
    const spare = prev?.spare;
    if (prev) prev.spare = undefined;
    const writer = new BodyWriter(expected === undefined ? 64 * 1024 : expected + 64 * 1024, spare);
    const sections = new Map<string, Section>();
    let first = true;
    writer.text("{");
    for (const key of Object.keys(doc)) {
      const value = doc[key];
      if (SECTIONS.includes(key) && isPlainObject(value)) {
        writer.text(`${first ? "" : ","}${JSON.stringify(key)}:{`);
        first = false;
        sections.set(key, entryBytes(value, prev?.body, prev?.sections.get(key), writer));
        writer.text("}");
        continue;
      }
      const json = JSON.stringify(value);
      if (json === undefined) continue;
      writer.text(`${first ? "" : ","}${JSON.stringify(key)}:${json}`);
      first = false;
    }
    writer.text("}");
    const out = writer.finish();
    if (sections.size > 0) {
      const serialized: Serialized = { name: doc.name, body: out, sections, released: false, retired: false };
      this.last.set(doc.name, serialized);
      if (this.last.peek(doc.name) === serialized) {
        this.written.set(out, serialized);
        for (const section of sections.values()) {
          const value = section.value.deref();
          if (value) this.collected.register(value, { name: doc.name, serialized }, serialized);
        }
      }
    } else this.last.delete(doc.name);
    if (prev && this.last.peek(doc.name) !== prev) {
      prev.retired = true;
      if (prev.released) this.recycle(prev);
    }
    return out;
  }
}

/**
 * Writes an object's entries (without its braces) and returns where each entry lands in the body.
 * Entries reused from the previous body are copied from it.
 */
function entryBytes(
  value: Record<string, unknown>,
  prevBody: Uint8Array | undefined,
  prev: Section | undefined,
  writer: BodyWriter,
): Section {
  const keys = Object.keys(value);
  const starts = new Uint32Array(keys.length);
  const ends = new Uint32Array(keys.length);
  let index: Map<string, number> | undefined;
  let count = 0;
  const prevValue = prev?.value.deref();
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    const entry = value[key];
    const comma = count > 0;
    let j = -1;
    // The same object or string under the same key as before; then find where it was (usually at the same index).
    if (prev && prevBody && prevValue && reusable(entry) && prevValue[key] === entry) {
      if (prev.keys[i] === key) j = i;
      else {
        index ??= new Map(prev.keys.map((k, n) => [k, n]));
        j = index.get(key) ?? -1;
      }
    }
    if (j >= 0 && prevBody && prev) {
      const start = prev.starts[j] as number;
      const end = prev.ends[j] as number;
      if (comma) {
        // The previous body had this entry right after the one just copied: copy its comma along.
        if (writer.runEndsAt(prevBody, start - 1) && prevBody[start - 1] === COMMA)
          writer.copy(prevBody, start - 1, start);
        else writer.text(",");
      }
      starts[i] = writer.offset;
      writer.copy(prevBody, start, end);
      ends[i] = writer.offset;
      count++;
      continue;
    }
    const json = JSON.stringify(entry);
    if (json === undefined) continue;
    const at = writer.offset;
    writer.text(`${comma ? "," : ""}${JSON.stringify(key)}:${json}`);
    starts[i] = at + (comma ? 1 : 0);
    ends[i] = writer.offset;
    count++;
  }
  return { value: new WeakRef(value), keys, starts, ends };
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

/** The full packument as served (`application/json`); its versions are made as they are serialized. */
export function fullDocument(doc: Packument, base: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    if (key.startsWith("_fw")) continue;
    out[key] = value;
  }
  out.versions = new LazyMembers(function* () {
    for (const [version, manifest] of Object.entries(doc.versions)) yield [version, publicVersion(manifest, base)];
  });
  return out;
}

/** A version as the abbreviated packument has it: only the fields installers read. */
function installManifest(manifest: VersionManifest, base: string): Record<string, unknown> {
  const slim: Record<string, unknown> = {};
  for (const field of INSTALL_FIELDS) if (manifest[field] !== undefined) slim[field] = manifest[field];
  const dist = manifest.dist;
  slim.dist = {
    shasum: dist.shasum,
    integrity: dist.integrity,
    tarball: tarballUrl(base, manifest.name, manifest.version),
    ...(dist.fileCount !== undefined && { fileCount: dist.fileCount }),
    ...(dist.unpackedSize !== undefined && { unpackedSize: dist.unpackedSize }),
    ...(dist.signatures !== undefined && { signatures: dist.signatures }),
    ...(dist.attestations !== undefined && { attestations: publicVersion(manifest, base).dist.attestations }),
  };
  return slim;
}

/**
 * The abbreviated packument (`application/vnd.npm.install-v1+json`): only what installers read; its
 * versions are made as they are serialized.
 */
export function abbreviatedDocument(doc: Packument, base: string): Record<string, unknown> {
  return {
    name: doc.name,
    modified: doc.time.modified ?? new Date(0).toISOString(),
    "dist-tags": doc["dist-tags"],
    versions: new LazyMembers(function* () {
      for (const [version, manifest] of Object.entries(doc.versions)) yield [version, installManifest(manifest, base)];
    }),
  };
}

/** Latest non-prerelease… as npm does: the `latest` tag, else the highest version. */
export function latestVersion(doc: Packument): string | undefined {
  return doc["dist-tags"].latest ?? Object.keys(doc.versions).at(-1);
}
