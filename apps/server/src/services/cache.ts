import { once } from "node:events";
import { brotliCompressSync, constants, createGzip, gunzipSync, gzipSync } from "node:zlib";
import type { StorageDriver } from "@fw/storage-r2";
import { LRUCache } from "lru-cache";
import { jsonPieces, readJsonBody } from "../npm/json-stream.js";
import type { Packument } from "../npm/packument.js";

/**
 * One serialized form of a packument (full or abbreviated, for one base URL), compressed lazily once.
 * Large forms keep only their gzip bytes once those exist (see `LARGE_FORM`): `json` is then rebuilt
 * on demand for the rare client that accepts no compression.
 */
export interface Rendered {
  etag: string;
  json?: Uint8Array;
  gzip?: Uint8Array;
  br?: Uint8Array;
  /** Response headers of this form, per encoding (and for 304), made once by the HTTP layer; read-only. */
  headers?: Partial<Record<"304" | "identity" | "gzip" | "br", Readonly<Record<string, string>>>>;
}

/**
 * Above this size a form's uncompressed bytes are dropped once it is gzipped: a popular package's
 * 20 MB document then costs ~2 MB per form in the cache instead of 22, so it stays cached.
 */
const LARGE_FORM = 256 * 1024;

/**
 * Documents stored larger than this are rendered straight into gzip, piece by piece, off the
 * synchronous path: the whole serialized form never exists at once (for a 20 MB packument that is a
 * 20 MB string and a 20 MB buffer less at the peak), and a brotli form is not made for them.
 */
const LARGE_DOCUMENT = 1024 * 1024;

interface Entry {
  /**
   * The parsed document; `null` when none exists under the name, `undefined` when it is large and was
   * released (see `keepLargeDocuments`): its rendered forms still serve, and it is read again when needed.
   */
  doc: Packument | null | undefined;
  /**
   * Whether the document has versions (an unpublished package keeps its document but reads as missing),
   * decided once: asking an object of thousands of keys for its first key enumerates all of them.
   */
  live: boolean;
  etag: string | null;
  checkedAt: number;
  rendered: Map<string, Rendered>;
  /** The stored document's size. */
  stored: number;
  /** The document's `_rev`, known without the document (see `revision`). */
  rev: string | undefined;
  /** A released document's version numbers, so reads of its tarballs need not parse it again. */
  versionNames?: Set<string>;
  /**
   * Memory charged to the entry: the document (its stored size) and its rendered forms; a large document
   * is charged its forms only, as it is held apart from the budget (see `keepLargeDocuments`).
   */
  bytes: number;
}

export interface PackumentCacheOptions {
  /** Memory for cached documents and their serialized forms, in bytes. Default 64 MB. */
  maxBytes?: number;
  /**
   * How long a cached document is served before storage is asked whether it changed (a HEAD), in ms.
   * Writes through this process update the cache at once; this bounds staleness for writes made by
   * other processes or replicas. Default 1000.
   */
  revalidateMs?: number;
  /** Called once per lookup: "hit" (memory), "revalidated" (memory after a HEAD), "miss" (storage read). */
  onLookup?(result: "hit" | "revalidated" | "miss"): void;
  /**
   * How many parsed documents stored larger than 1 MB are held, most recently used first (default 1).
   * They are not charged to `maxBytes` — a popular package's 20 MB document parses into ~14 MB of heap
   * and would not fit a small budget, so it could never be cached at all —, only their rendered forms
   * are. Others keep serving their forms and are read again (in pieces, ~150 ms for 20 MB) when a
   * write, a version read or a new form needs them. `Infinity` for caches whose documents cannot be
   * read again from storage (the caller holds them anyway).
   */
  keepLargeDocuments?: number;
}

const encoder = new TextEncoder();

/**
 * Packuments in memory, with their serialized and precompressed bytes, so the hot read path is a map
 * lookup and a buffer write. Invalidated on every write through this process.
 */
export class PackumentCache {
  private readonly entries: LRUCache<string, Entry>;
  private readonly revalidateMs: number;
  private readonly loading = new Map<string, Promise<Entry>>();
  private readonly rendering = new Map<string, { entry: Entry; promise: Promise<Rendered> }>();
  private readonly onLookup: (result: "hit" | "revalidated" | "miss") => void;
  private readonly keepLarge: number;
  /** Entries of large documents whose parsed document is held, least recently used first. */
  private readonly heldLarge: Entry[] = [];

  constructor(
    private readonly storage: StorageDriver,
    private readonly keyOf: (name: string) => string,
    options: PackumentCacheOptions = {},
  ) {
    this.revalidateMs = options.revalidateMs ?? 1000;
    this.onLookup = options.onLookup ?? (() => {});
    this.keepLarge = options.keepLargeDocuments ?? 1;
    this.entries = new LRUCache<string, Entry>({
      maxSize: options.maxBytes ?? 64 * 1024 * 1024,
      sizeCalculation: (entry) => Math.max(1, entry.bytes),
      dispose: (entry) => this.unhold(entry),
    });
  }

  /**
   * The stored document and its storage ETag, or `null` when the package does not exist; `live` is
   * false for an unpublished package's document (no versions left).
   */
  async get(name: string): Promise<{ doc: Packument; etag: string; live: boolean } | null> {
    const { entry, doc } = await this.withDocument(name, await this.entry(name));
    return doc && entry.etag ? { doc, etag: entry.etag, live: entry.live } : null;
  }

  /**
   * Whether a live package has this version; `null` when no live package exists under the name. Answered
   * without parsing a released large document again (a tarball read needs no more).
   */
  async hasVersion(name: string, version: string): Promise<boolean | null> {
    const entry = await this.entry(name);
    if (!entry.live) return null;
    if (entry.doc) return Object.hasOwn(entry.doc.versions, version);
    if (entry.versionNames) return entry.versionNames.has(version);
    const { doc } = await this.withDocument(name, entry);
    return doc ? Object.hasOwn(doc.versions, version) : null;
  }

  /** The `_rev` of the cached document, without revalidating (and without parsing a released one again). */
  revision(name: string): string | undefined {
    return this.entries.peek(name)?.rev;
  }

  /**
   * Whether a document exists under the name — a live package or an unpublished one, whose name stays
   * reserved — without reading a released large document again.
   */
  async exists(name: string): Promise<boolean> {
    return (await this.entry(name)).etag !== null;
  }

  /** Serialized bytes of a view of the document, built once per document version and variant. */
  async render(name: string, variant: string, build: (doc: Packument) => unknown): Promise<Rendered | null> {
    return this.form(name, await this.entry(name), variant, build);
  }

  /**
   * Like `render`, without waiting: `undefined` when the cached copy is missing or due for
   * revalidation, or when a large document's form is not rendered yet (the caller then takes the async
   * path), `null` when the package is known not to exist.
   */
  renderFresh(name: string, variant: string, build: (doc: Packument) => unknown): Rendered | null | undefined {
    const entry = this.entries.get(name);
    if (!entry || Date.now() - entry.checkedAt >= this.revalidateMs) return undefined;
    this.onLookup("hit");
    return this.renderEntry(name, entry, variant, build);
  }

  /**
   * `render` for a document the caller has just put in with `set`, without asking storage whether it
   * is still current; `undefined` when it is no longer cached (larger than the whole cache).
   */
  async renderCurrent(
    name: string,
    variant: string,
    build: (doc: Packument) => unknown,
  ): Promise<Rendered | null | undefined> {
    const entry = this.entries.peek(name);
    return entry && this.form(name, entry, variant, build);
  }

  private async form(name: string, entry: Entry, variant: string, build: (doc: Packument) => unknown) {
    const rendered = this.renderEntry(name, entry, variant, build);
    if (rendered !== undefined) return rendered;
    // A large document: rendered as a stream, from the document read again if it was released.
    const current = await this.withDocument(name, entry);
    return current.entry.live && current.doc
      ? this.renderLarge(name, current.entry, current.doc, variant, build)
      : null;
  }

  /**
   * The cached document without waiting, when it is fresh: `undefined` when it is missing or due for
   * revalidation, `null` when no live package exists under the name (absent or unpublished).
   */
  docFresh(name: string): Packument | null | undefined {
    const entry = this.entries.get(name);
    if (!entry || Date.now() - entry.checkedAt >= this.revalidateMs) return undefined;
    this.onLookup("hit");
    if (!entry.live) return null;
    if (entry.doc) this.hold(entry);
    return entry.doc;
  }

  /**
   * True when the cached answer is fresh and no document exists under the name at all — not even an
   * unpublished one, which keeps its name reserved. Such names may be served from an uplink.
   */
  knownAbsent(name: string): boolean {
    const entry = this.entries.get(name);
    return entry !== undefined && entry.doc === null && Date.now() - entry.checkedAt < this.revalidateMs;
  }

  /** The form, rendered now when the document is small; `undefined` when a large one still needs `renderLarge`. */
  private renderEntry(
    name: string,
    entry: Entry,
    variant: string,
    build: (doc: Packument) => unknown,
  ): Rendered | null | undefined {
    // An unpublished package keeps its document (versions are never reused) but reads as missing.
    if (!entry.live || entry.doc === null) return null;
    let rendered = entry.rendered.get(variant);
    if (!rendered) {
      if (entry.stored > LARGE_DOCUMENT || !entry.doc) return undefined;
      const json = encoder.encode(JSON.stringify(build(entry.doc)));
      rendered = { etag: `"${entry.etag}-${hashVariant(variant)}"`, json };
      entry.rendered.set(variant, rendered);
      this.resize(name, entry, json.byteLength);
    }
    return rendered;
  }

  /** Renders a large document's form into gzip as a stream; concurrent requests for one form share the work. */
  private renderLarge(name: string, entry: Entry, doc: Packument, variant: string, build: (doc: Packument) => unknown) {
    const key = `${variant}\n${name}`;
    let pending = this.rendering.get(key);
    if (!pending || pending.entry !== entry) {
      const etag = `"${entry.etag}-${hashVariant(variant)}"`;
      const promise = gzipJson(build(doc))
        .then((gzip): Rendered => {
          const rendered = { etag, gzip };
          // Kept only if the document did not change meanwhile; the response uses it either way.
          if (this.entries.peek(name) === entry && !entry.rendered.has(variant)) {
            entry.rendered.set(variant, rendered);
            this.resize(name, entry, gzip.byteLength);
          }
          return entry.rendered.get(variant) ?? rendered;
        })
        .finally(() => {
          if (this.rendering.get(key)?.promise === promise) this.rendering.delete(key);
        });
      pending = { entry, promise };
      this.rendering.set(key, pending);
    }
    return pending.promise;
  }

  compressed(name: string, rendered: Rendered, encoding: "gzip" | "br"): Uint8Array {
    const existing = rendered[encoding];
    if (existing) return existing;
    const json = this.identity(rendered);
    const bytes =
      encoding === "gzip"
        ? gzipSync(json, { level: 6 })
        : brotliCompressSync(json, {
            params: {
              [constants.BROTLI_PARAM_QUALITY]: 5,
              [constants.BROTLI_PARAM_SIZE_HINT]: json.byteLength,
            },
          });
    const view = exactBytes(bytes);
    rendered[encoding] = view;
    let delta = view.byteLength;
    if (encoding === "gzip" && rendered.json && json.byteLength > LARGE_FORM) {
      rendered.json = undefined;
      delta -= json.byteLength;
    }
    const entry = this.entries.peek(name);
    if (entry) this.resize(name, entry, delta);
    return view;
  }

  /** The uncompressed bytes of a form, rebuilt from its gzip when they were dropped. */
  identity(rendered: Rendered): Uint8Array {
    if (rendered.json) return rendered.json;
    const bytes = gunzipSync(rendered.gzip as Uint8Array);
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Records a document this process just wrote (or deleted, with `null`); `bytes` is its stored size. */
  set(name: string, doc: Packument | null, etag: string | null, bytes = 64): void {
    this.add(name, this.newEntry(doc, etag, bytes));
  }

  /**
   * The cached document without revalidating it, for writers that will compare-and-swap anyway;
   * `undefined` when it is not cached or released (the writer then reads it).
   */
  peek(name: string): { doc: Packument; etag: string } | undefined {
    const entry = this.entries.peek(name);
    return entry?.doc && entry.etag ? { doc: entry.doc, etag: entry.etag } : undefined;
  }

  /** The size of the cached document as stored, in bytes, when it is cached. */
  storedSize(name: string): number | undefined {
    const entry = this.entries.peek(name);
    return entry?.doc !== null && entry?.etag ? entry.stored : undefined;
  }

  invalidate(name: string): void {
    this.entries.delete(name);
  }

  private resize(name: string, entry: Entry, added: number): void {
    entry.bytes += added;
    if (this.entries.peek(name) !== entry) return;
    // The LRU sizes a value when it is set anew only, not when the same value is set again: take it
    // out and put it back (which may evict others, or this entry if it alone is over the budget).
    const held = this.heldLarge.includes(entry);
    this.entries.delete(name);
    this.entries.set(name, entry);
    if (held && this.entries.peek(name) === entry) this.hold(entry);
  }

  private async entry(name: string): Promise<Entry> {
    const cached = this.entries.get(name);
    if (cached && Date.now() - cached.checkedAt < this.revalidateMs) {
      this.onLookup("hit");
      return cached;
    }
    const pending = this.loading.get(name);
    if (pending) {
      this.onLookup("hit");
      return pending;
    }
    // Concurrent misses for one name share a single storage read.
    const load = this.load(name, cached).finally(() => this.loading.delete(name));
    this.loading.set(name, load);
    return load;
  }

  private async load(name: string, cached: Entry | undefined): Promise<Entry> {
    const key = this.keyOf(name);
    if (cached) {
      const head = await this.storage.head(key);
      if ((head?.etag ?? null) === cached.etag) {
        cached.checkedAt = Date.now();
        this.onLookup("revalidated");
        return cached;
      }
    }
    this.onLookup("miss");
    return this.read(name);
  }

  private async read(name: string, released?: Entry): Promise<Entry> {
    const before = this.entries.peek(name);
    // An entry set while the read was under way is a write through this process, committed after the
    // read began: it is at least as new as what was read, which must not replace it.
    const replaced = () => {
      const now = this.entries.peek(name);
      return now && now !== before && now !== released ? now : undefined;
    };
    // A stream, so that a large document is parsed as it is read (see readJsonBody).
    const object = await this.storage.stream(this.keyOf(name));
    const current = this.entries.peek(name);
    const newer = replaced() ?? (released && current && current !== released ? current : undefined);
    if (newer) {
      await object?.body.cancel().catch(() => {});
      return newer;
    }
    if (!object) return this.add(name, this.newEntry(null, null));
    const doc = (await readJsonBody(object.body, object.size)) as Packument;
    const now = this.entries.peek(name);
    if (released && now === released && object.etag === released.etag) {
      // Still the same document: its forms stay.
      released.doc = doc;
      released.versionNames = undefined;
      this.hold(released);
      return released;
    }
    if (released && now && now !== released) return now;
    return replaced() ?? this.add(name, this.newEntry(doc, object.etag, object.size));
  }

  /**
   * The entry with its document (read again when it was released, or a newer entry if it changed
   * meanwhile), the document taken at once so that a release by another reader cannot null it later.
   */
  private async withDocument(name: string, entry: Entry): Promise<{ entry: Entry; doc: Packument | null }> {
    for (let current = entry, tries = 0; ; tries++) {
      if (current.doc !== undefined) {
        if (current.doc) this.hold(current);
        return { entry: current, doc: current.doc };
      }
      if (tries >= 3) {
        // Other readers keep releasing it (more large documents in use than are held): parse it for this
        // caller alone rather than answer as if it did not exist.
        const object = await this.storage.stream(this.keyOf(name));
        return { entry: current, doc: object ? ((await readJsonBody(object.body, object.size)) as Packument) : null };
      }
      const pending = this.loading.get(name);
      if (pending) current = await pending;
      else {
        const load = this.read(name, current).finally(() => this.loading.delete(name));
        this.loading.set(name, load);
        current = await load;
      }
    }
  }

  /** An entry for a document of `bytes` stored bytes (`null`: none under the name). */
  private newEntry(doc: Packument | null, etag: string | null, bytes = 64): Entry {
    // A large document is charged its forms only where it can be released and read again.
    const charged = bytes > LARGE_DOCUMENT && this.keepLarge !== Number.POSITIVE_INFINITY ? 64 : bytes;
    return {
      doc,
      live: isLive(doc, etag),
      etag,
      checkedAt: Date.now(),
      rendered: new Map(),
      stored: bytes,
      rev: doc?._rev,
      bytes: charged,
    };
  }

  private add(name: string, entry: Entry): Entry {
    this.entries.set(name, entry);
    if (entry.doc && this.entries.peek(name) === entry) this.hold(entry);
    return entry;
  }

  /** Marks a large document as just used, releasing the least recently used ones beyond `keepLargeDocuments`. */
  private hold(entry: Entry): void {
    if (entry.stored <= LARGE_DOCUMENT || this.keepLarge === Number.POSITIVE_INFINITY) return;
    this.unhold(entry);
    this.heldLarge.push(entry);
    while (this.heldLarge.length > this.keepLarge) {
      const released = this.heldLarge.shift() as Entry;
      if (released.doc) released.versionNames = new Set(Object.keys(released.doc.versions));
      released.doc = undefined;
    }
  }

  private unhold(entry: Entry): void {
    const at = this.heldLarge.indexOf(entry);
    if (at >= 0) this.heldLarge.splice(at, 1);
  }
}

/**
 * The bytes in memory of their own, for keeping. zlib's one-shot functions answer a view of their
 * output chunk (64 KB on Node 24), so a 2 KB gzip form kept as it came would hold 64 KB: hundreds of
 * small packuments cached that way held tens of megabytes of nothing. Streams' chunks can be views too.
 */
export function exactBytes(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer.byteLength - bytes.byteLength > 1024) return new Uint8Array(bytes);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function hashVariant(variant: string): string {
  let hash = 2166136261;
  for (let i = 0; i < variant.length; i++) hash = Math.imul(hash ^ variant.charCodeAt(i), 16777619);
  return (hash >>> 0).toString(36);
}

function isLive(doc: Packument | null, etag: string | null): boolean {
  if (!doc || !etag) return false;
  for (const _ in doc.versions) return true;
  return false;
}

/** Bytes of JSON handed to the compressor at a time. */
const GZIP_INPUT = 64 * 1024;

/**
 * `gzip(JSON.stringify(value))` without ever holding the whole JSON text: pieces are encoded into two
 * buffers that take turns, one filled while the compressor reads the other. Writing the text in strings
 * instead had each batch converted to a fresh buffer, and for a 17 MB form those piled up to ~12 MB
 * between young-generation collections.
 */
async function gzipJson(value: unknown): Promise<Uint8Array> {
  const gzip = createGzip({ level: 6 });
  const chunks: Buffer[] = [];
  gzip.on("data", (chunk: Buffer) => chunks.push(chunk));
  const ended = once(gzip, "end");
  const buffers = [Buffer.allocUnsafeSlow(GZIP_INPUT), Buffer.allocUnsafeSlow(GZIP_INPUT)];
  /** Per buffer, the write of its bytes until the compressor has read them. */
  const writes: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let turn = 0;
  let filled = 0;
  const hand = async () => {
    const full = buffers[turn] as Buffer;
    const bytes = full.subarray(0, filled);
    const write = new Promise<void>((resolve, reject) =>
      gzip.write(bytes, (error) => (error ? reject(error) : resolve())),
    );
    // A failed compressor fails `ended` too; the last write may never be awaited.
    write.catch(() => {});
    writes[turn] = write;
    turn ^= 1;
    filled = 0;
    // The other buffer is filled next, once the compressor is done with it.
    await writes[turn];
  };
  for (const piece of jsonPieces(value)) {
    let text = piece;
    for (;;) {
      const { read, written } = encoder.encodeInto(text, (buffers[turn] as Buffer).subarray(filled));
      filled += written;
      if (read === text.length) break;
      text = text.slice(read);
      await hand();
    }
  }
  if (filled > 0) await hand();
  gzip.end();
  await ended;
  return exactBytes(Buffer.concat(chunks));
}
