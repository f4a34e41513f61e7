import { createHash } from "node:crypto";
import { isStorageError, type StorageDriver } from "@fw/storage-r2";
import { LRUCache } from "lru-cache";
import type { UplinkConfig } from "../config/uplinks.js";
import type { Logger } from "../context.js";
import { RegistryError } from "../http/errors.js";
import { tarballFilename, tarballVersion } from "../npm/names.js";
import type { Packument } from "../npm/packument.js";
import { PackumentCache, type Rendered } from "../services/cache.js";
import { type AuditAnswer, AuditForwarder, type AuditKind } from "./audit.js";
import { packumentPath, UpstreamClient, type UpstreamClientOptions, UpstreamFailure } from "./client.js";
import {
  applyTakedowns,
  type CachedPackument,
  sanitizeUpstream,
  UnusableDocument,
  uplinkPackumentKey,
  uplinkTarballKey,
} from "./document.js";
import { expectedDigest, IntegrityError, verifyingStream } from "./integrity.js";
import { SearchForwarder, type UplinkSearchQuery, type UplinkSearchResults } from "./search.js";

export interface UplinkServiceOptions {
  storage: StorageDriver;
  /**
   * The hosted packages' cache. A name with a hosted document — even an unpublished one, whose name
   * stays reserved — is never answered from an uplink.
   */
  hosted: PackumentCache;
  uplinks: Readonly<Record<string, UplinkConfig>>;
  /** The uplinks that may serve a name, in order; `[]` for names that must never go upstream. */
  proxyFor(name: string): readonly string[];
  logger: Logger;
  /** Keeps shutdown waiting for tarball writes still in flight after their response. */
  track?(task: Promise<void>): void;
  fetch?: UpstreamClientOptions["fetch"];
  env?: UpstreamClientOptions["env"];
  now?: () => number;
  /** Memory for cached upstream documents, in bytes (and as much again for their rendered forms). Default 64 MB. */
  maxBytes?: number;
}

/** A cached upstream document in memory. */
interface State {
  uplink: string;
  doc: CachedPackument;
  /** Storage ETag of the stored copy: the base of the ETags clients see. */
  etag: string;
  bytes: number;
  /** When the upstream last confirmed the copy (a 200 or a 304). */
  fetchedAt: number;
  /** Set while the copy is served because revalidation failed; the text of the `npm-notice` header. */
  notice?: string;
  /** With `notice`: when to ask the upstream again. */
  retryAt?: number;
}

/** A tarball from an uplink: from storage (with its ETag and size), or streaming from the upstream. */
export interface ProxiedTarball {
  etag?: string;
  size?: number;
  body: ReadableStream<Uint8Array>;
}

/** How long a stale copy is served without asking a failing upstream again. */
const STALE_RETRY_MS = 5_000;
/** How long a tarball that failed its integrity check is refused without fetching it again. */
const BAD_TARBALL_MS = 60_000;
const encoder = new TextEncoder();

function describeFailures(failures: UpstreamFailure[]): string {
  return failures.map((failure) => `uplink "${failure.uplink}" ${failure.message}`).join("; ");
}

/** The integrity or upstream failure behind an error a storage driver may have wrapped. */
function rootCause(error: unknown): unknown {
  for (let current = error, depth = 0; depth < 5; depth++) {
    if (current instanceof IntegrityError || current instanceof UpstreamFailure) return current;
    if (!(current instanceof Error) || current.cause === undefined) break;
    current = current.cause;
  }
  return error;
}

/** 504 when every uplink timed out, else 502: the registry answered, its upstream did not. */
function upstreamError(failures: UpstreamFailure[], what: string): RegistryError {
  const timeout = failures.length > 0 && failures.every((failure) => failure.kind === "timeout");
  return new RegistryError(
    timeout ? "E_UPSTREAM_TIMEOUT" : "E_UPSTREAM",
    `${what} is not cached and the upstream registry could not provide it: ${describeFailures(failures)}`,
  );
}

/**
 * The proxy use case: packages not hosted in fw are fetched from the uplinks their `packages` rule names,
 * cached in storage under `uplinks/<uplink>/…` and served. Metadata is revalidated with If-None-Match
 * after `maxAgeMs`; while an upstream fails, the cached copy is served with an `npm-notice`; concurrent
 * misses for one name share one upstream call; tarballs are checked against the metadata's integrity as
 * they stream to the client and to storage, and a mismatch is neither served whole nor stored.
 */
export class UplinkService {
  /** Rendered (and compressed) forms of cached upstream documents, built once per document and variant. */
  readonly cache: PackumentCache;
  readonly enabled: boolean;
  private readonly clients = new Map<string, UpstreamClient>();
  private readonly states: LRUCache<string, State>;
  private readonly loading = new Map<string, Promise<State | null>>();
  private readonly downloads = new Map<string, Promise<void>>();
  private readonly badTarballs = new Map<string, { until: number; message: string }>();
  private readonly storage: StorageDriver;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly forwarder: AuditForwarder;
  private readonly searcher: SearchForwarder;

  constructor(private readonly options: UplinkServiceOptions) {
    this.storage = options.storage;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    for (const [name, settings] of Object.entries(options.uplinks)) {
      this.clients.set(
        name,
        new UpstreamClient(name, settings, {
          logger: options.logger,
          ...(options.fetch && { fetch: options.fetch }),
          ...(options.env && { env: options.env }),
          now: this.now,
        }),
      );
    }
    this.enabled = this.clients.size > 0;
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    // The copies are kept here with their state; the cache only renders them, so it never reloads by itself.
    this.cache = new PackumentCache(options.storage, () => "", {
      maxBytes,
      revalidateMs: Number.POSITIVE_INFINITY,
      keepLargeDocuments: Number.POSITIVE_INFINITY,
    });
    this.states = new LRUCache<string, State>({
      maxSize: maxBytes,
      sizeCalculation: (state) => Math.max(1, state.bytes),
    });
    this.forwarder = new AuditForwarder({
      clients: [...this.clients.values()].filter((client) => client.settings.audit),
      proxyFor: options.proxyFor,
      isHosted: (name) => this.isHosted(name),
      logger: options.logger,
      now: this.now,
    });
    this.searcher = new SearchForwarder({
      clients: [...this.clients.values()].filter((client) => client.settings.search !== false),
      proxyFor: options.proxyFor,
      isHosted: (name) => this.isHosted(name),
      logger: options.logger,
      now: this.now,
    });
  }

  /** Whether `name` may be served from an uplink at all (by the rules; a hosted document still wins). */
  proxies(name: string): boolean {
    return this.enabled && this.options.proxyFor(name).length > 0;
  }

  /**
   * A view of the cached upstream document, rendered once per copy and variant; `notice` is set when the
   * copy is served because the upstream failed. `null` when the name is hosted, not proxied, or no uplink
   * has it. Throws `E_UPSTREAM`/`E_UPSTREAM_TIMEOUT` when nothing is cached and the upstream fails.
   */
  async render(
    name: string,
    variant: string,
    build: (doc: Packument) => unknown,
  ): Promise<{ rendered: Rendered; notice: string | undefined } | null> {
    const state = await this.resolve(name);
    if (!state) return null;
    return { rendered: await this.renderState(name, state, variant, build), notice: state.notice };
  }

  /**
   * For the Node fast path: the rendered view when a fresh copy is in memory, else `undefined` (the async
   * route then decides). The caller has already found that no hosted document exists.
   */
  renderFresh(name: string, variant: string, build: (doc: Packument) => unknown): Rendered | undefined {
    const state = this.states.get(name);
    if (!state || state.notice !== undefined || !this.isFresh(state)) return undefined;
    if (this.cache.peek(name)?.etag !== state.etag) return undefined;
    return this.cache.renderFresh(name, variant, build) ?? undefined;
  }

  /** The cached upstream document itself (for version and dist-tag reads). */
  async document(name: string): Promise<{ doc: Packument; notice: string | undefined } | null> {
    const state = await this.resolve(name);
    return state && { doc: state.doc, notice: state.notice };
  }

  /**
   * A tarball of a proxied package: from storage once fetched, else from the upstream, streamed to the
   * caller while it is stored. `null` when the name is not proxied or no cached version has this file.
   */
  async tarball(name: string, filename: string): Promise<ProxiedTarball | null> {
    const state = await this.resolve(name);
    if (!state) return null;
    const version = tarballVersion(name, filename);
    const manifest = Object.hasOwn(state.doc.versions, version) ? state.doc.versions[version] : undefined;
    if (!manifest || tarballFilename(name, version) !== filename) return null;
    const key = uplinkTarballKey(state.uplink, name, filename);
    const stored = await this.storage.stream(key);
    if (stored) return { etag: stored.etag, size: stored.size, body: stored.body };
    const bad = this.badTarballs.get(key);
    if (bad && bad.until > this.now()) throw new RegistryError("E_UPSTREAM", bad.message);
    const pending = this.downloads.get(key);
    if (pending) {
      // Someone is fetching it now: wait for their copy rather than asking the upstream again.
      await pending;
      const fetched = await this.storage.stream(key);
      if (fetched) return { etag: fetched.etag, size: fetched.size, body: fetched.body };
      const failed = this.badTarballs.get(key);
      if (failed && failed.until > this.now()) throw new RegistryError("E_UPSTREAM", failed.message);
    }
    // Registered before the first await, so concurrent requests find it.
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    this.downloads.set(key, done);
    try {
      return await this.download(state, name, version, key, finished);
    } catch (error) {
      finished();
      throw error;
    } finally {
      void done.finally(() => {
        if (this.downloads.get(key) === done) this.downloads.delete(key);
      });
    }
  }

  /** Forwards an `npm audit` request to the first uplink that offers audits; `null` when there is none. */
  async audit(kind: AuditKind, body: Uint8Array, contentEncoding: string | undefined): Promise<AuditAnswer | null> {
    return this.forwarder.forward(kind, body, contentEncoding);
  }

  /** The uplinks' part of a search page (see `SearchForwarder`); empty when no uplink takes searches. */
  async search(query: UplinkSearchQuery, visible: (name: string) => boolean): Promise<UplinkSearchResults> {
    return this.searcher.search(query, visible);
  }

  /** Whether a hosted document (live or unpublished) holds the name, which then never comes from an uplink. */
  private isHosted(name: string): Promise<boolean> {
    return this.options.hosted.exists(name);
  }

  private isFresh(state: State): boolean {
    const settings = this.clients.has(state.uplink) ? this.options.uplinks[state.uplink] : undefined;
    return settings !== undefined && this.now() - state.fetchedAt < settings.maxAgeMs;
  }

  private async renderState(
    name: string,
    state: State,
    variant: string,
    build: (doc: Packument) => unknown,
  ): Promise<Rendered> {
    if (this.cache.peek(name)?.etag !== state.etag) this.cache.set(name, state.doc, state.etag, state.bytes);
    const rendered = await this.cache.renderCurrent(name, variant, build);
    if (rendered) return rendered;
    // Larger than the whole cache: rendered for this response only.
    const tag = createHash("sha1").update(variant).digest("hex").slice(0, 12);
    return { etag: `"${state.etag}-${tag}"`, json: encoder.encode(JSON.stringify(build(state.doc))) };
  }

  private async resolve(name: string): Promise<State | null> {
    const uplinks = this.enabled ? this.options.proxyFor(name) : [];
    if (uplinks.length === 0) return null;
    if (await this.isHosted(name)) return null;
    const state = this.states.get(name);
    if (state && this.isFresh(state) && state.notice === undefined) return state;
    if (state?.notice !== undefined && (state.retryAt ?? 0) > this.now()) return state;
    let load = this.loading.get(name);
    if (!load) {
      // Concurrent requests for one name share one storage read and one upstream call.
      load = this.refresh(name, uplinks, state).finally(() => this.loading.delete(name));
      this.loading.set(name, load);
    }
    return load;
  }

  private remember(name: string, state: State): State {
    this.states.set(name, state);
    return state;
  }

  private async readStored(name: string, uplinks: readonly string[]): Promise<State | undefined> {
    for (const uplink of uplinks) {
      const object = await this.storage.get(uplinkPackumentKey(uplink, name));
      if (!object) continue;
      try {
        const doc = JSON.parse(new TextDecoder().decode(object.body)) as CachedPackument;
        if (doc.name !== name || doc._fwUplink?.uplink !== uplink) throw new Error("not this package's copy");
        return { uplink, doc, etag: object.etag, bytes: object.body.byteLength, fetchedAt: doc._fwUplink.fetchedAt };
      } catch (error) {
        this.logger.warn("ignoring an unreadable cached upstream document", { uplink, name, err: String(error) });
      }
    }
    return undefined;
  }

  private async refresh(name: string, uplinks: readonly string[], cached: State | undefined): Promise<State | null> {
    let state = cached;
    if (!state) {
      // Not in memory: another replica or an earlier run may have cached it.
      state = await this.readStored(name, uplinks);
      if (state && this.isFresh(state)) return this.remember(name, state);
    }
    const failures: UpstreamFailure[] = [];
    let missing = 0;
    for (const uplink of uplinks) {
      const client = this.clients.get(uplink);
      const settings = this.options.uplinks[uplink];
      if (!client || !settings) continue;
      const etag = state?.uplink === uplink ? state.doc._fwUplink.etag : undefined;
      try {
        const result = await client.packument(name, etag);
        if (result.status === "not-found") {
          missing++;
          continue;
        }
        if (result.status === "not-modified") {
          if (!state) continue;
          state.fetchedAt = this.now();
          state.notice = undefined;
          state.retryAt = undefined;
          return this.remember(name, state);
        }
        let raw: unknown;
        try {
          raw = JSON.parse(new TextDecoder().decode(result.body));
        } catch (cause) {
          throw new UnusableDocument("the upstream document is not valid JSON", { cause });
        }
        const fresh = sanitizeUpstream(name, raw);
        const previous = state?.uplink === uplink ? state.doc : undefined;
        return this.remember(name, await this.store(name, uplink, settings, previous, fresh, result.etag));
      } catch (error) {
        if (error instanceof UnusableDocument) {
          client.recordFailure();
          failures.push(new UpstreamFailure("bad-response", uplink, error.message));
        } else if (error instanceof UpstreamFailure) failures.push(error);
        else throw error;
        this.logger.warn("uplink request failed", { uplink, package: name, err: failures.at(-1)?.message });
      }
    }
    if (state) {
      const settings = this.options.uplinks[state.uplink];
      if (failures.length === 0 && missing > 0 && settings?.takedowns === "remove") {
        // Every uplink says the package is gone: a takedown of the whole package.
        await this.forget(name, state);
        return null;
      }
      if (failures.length === 0 && missing > 0) {
        state.fetchedAt = this.now();
        return this.remember(name, state);
      }
      state.notice = `${name} was served from fw's cached copy: the upstream registry "${state.uplink}" could not be reached`;
      state.retryAt = this.now() + Math.min(STALE_RETRY_MS, settings?.maxAgeMs ?? STALE_RETRY_MS);
      return this.remember(name, state);
    }
    if (failures.length > 0) throw upstreamError(failures, `package "${name}"`);
    return null;
  }

  /** Stores a fetched document (after applying takedowns to the previous copy) and returns its state. */
  private async store(
    name: string,
    uplink: string,
    settings: UplinkConfig,
    previous: CachedPackument | undefined,
    fresh: Packument,
    upstreamEtag: string | undefined,
  ): Promise<State> {
    const { doc, removed, kept } = applyTakedowns(previous, fresh, settings.takedowns);
    const fetchedAt = this.now();
    const cached: CachedPackument = {
      ...doc,
      _fwUplink: {
        uplink,
        url: `${settings.url}/${packumentPath(name)}`,
        ...(upstreamEtag !== undefined && { etag: upstreamEtag }),
        fetchedAt,
        ...(kept.length > 0 && { removedUpstream: kept }),
      },
    };
    const bytes = encoder.encode(JSON.stringify(cached));
    let etag: string;
    try {
      const info = await this.storage.put(uplinkPackumentKey(uplink, name), bytes, { contentType: "application/json" });
      etag = info.etag;
    } catch (error) {
      // Storage trouble must not take the proxy down: serve the copy from memory and store it next time.
      this.logger.error("could not store an upstream document", { uplink, package: name, err: String(error) });
      etag = createHash("sha1").update(bytes).digest("hex");
    }
    if (removed.length > 0) {
      this.logger.info("versions removed upstream were dropped from the cache", {
        uplink,
        package: name,
        versions: removed.slice(0, 20),
      });
      for (const version of removed) {
        const key = uplinkTarballKey(uplink, name, tarballFilename(name, version));
        await this.storage.delete(key).catch((error: unknown) => {
          this.logger.error("could not delete a tarball removed upstream", { uplink, key, err: String(error) });
        });
      }
    }
    return { uplink, doc: cached, etag, bytes: bytes.byteLength, fetchedAt };
  }

  /** Drops a package every uplink says no longer exists, with its tarballs. */
  private async forget(name: string, state: State): Promise<void> {
    this.logger.info("package removed upstream was dropped from the cache", { uplink: state.uplink, package: name });
    this.states.delete(name);
    this.cache.invalidate(name);
    const keys = [
      ...Object.keys(state.doc.versions).map((version) =>
        uplinkTarballKey(state.uplink, name, tarballFilename(name, version)),
      ),
      uplinkPackumentKey(state.uplink, name),
    ];
    for (const key of keys) {
      await this.storage.delete(key).catch((error: unknown) => {
        this.logger.error("could not delete a package removed upstream", {
          uplink: state.uplink,
          key,
          err: String(error),
        });
      });
    }
  }

  /**
   * Fetches a tarball and tees it: one branch to the caller, one to storage (create-only). Both come out of
   * the integrity check, which holds back the last chunk until the hash matches, so a wrong tarball ends
   * as a failed response and a failed write.
   */
  private async download(
    state: State,
    name: string,
    version: string,
    key: string,
    finished: () => void,
  ): Promise<ProxiedTarball | null> {
    const manifest = state.doc.versions[version];
    const client = this.clients.get(state.uplink);
    if (!manifest || !client) {
      finished();
      return null;
    }
    const expected = expectedDigest(manifest.dist);
    if (!expected) {
      throw new RegistryError(
        "E_UPSTREAM",
        `${name}@${version} has no integrity or shasum in the upstream metadata, so its tarball cannot be checked`,
      );
    }
    let fetched: Awaited<ReturnType<UpstreamClient["tarball"]>>;
    try {
      fetched = await client.tarball(manifest.dist.tarball);
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      this.logger.warn("uplink tarball request failed", { uplink: state.uplink, package: name, err: error.message });
      throw upstreamError([error], `tarball ${tarballFilename(name, version)}`);
    }
    if (!fetched) {
      throw new RegistryError(
        "E_UPSTREAM",
        `the upstream registry "${state.uplink}" lists ${name}@${version} but does not have its tarball`,
      );
    }
    const [toClient, toStorage] = fetched.body.pipeThrough(verifyingStream(expected)).tee();
    const write = this.storage
      .put(key, toStorage, {
        ifNoneMatch: "*",
        contentType: "application/octet-stream",
        ...(fetched.size !== undefined && { size: fetched.size }),
      })
      .then(
        () => undefined,
        (error: unknown) => {
          if (isStorageError(error, "E_PRECONDITION")) return; // another replica stored it first
          const reason = rootCause(error);
          if (reason instanceof IntegrityError) {
            client.recordFailure();
            const message = `the upstream registry "${state.uplink}" sent a tarball of ${name}@${version} that does not match its metadata`;
            this.badTarballs.set(key, { until: this.now() + BAD_TARBALL_MS, message });
            this.logger.warn("uplink tarball failed its integrity check; not stored", {
              uplink: state.uplink,
              package: name,
              version,
              err: reason.message,
            });
          } else if (reason instanceof UpstreamFailure) {
            client.recordFailure();
            this.logger.warn("uplink tarball transfer failed; not stored", {
              uplink: state.uplink,
              package: name,
              version,
              err: reason.message,
            });
          } else {
            this.logger.error("could not store an upstream tarball", { uplink: state.uplink, key, err: String(error) });
          }
        },
      )
      .finally(finished);
    this.options.track?.(write);
    return { ...(fetched.size !== undefined && { size: fetched.size }), body: toClient };
  }
}
