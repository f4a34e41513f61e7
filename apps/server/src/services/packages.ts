import { createHash } from "node:crypto";
import { type Codec, casUpdate, isStorageError, jsonCodec, readAll, type StorageDriver } from "@fw/storage-r2";
import { LRUCache } from "lru-cache";
import semver from "semver";
import { RegistryError } from "../http/errors.js";
import { readJsonBody } from "../npm/json-stream.js";
import {
  assertPublishableName,
  assertTagName,
  assertVersion,
  baseName,
  tarballFilename,
  truncate,
} from "../npm/names.js";
import { nextRev, type Packument, PackumentEncoder, type Person, type VersionManifest } from "../npm/packument.js";
import { digest, integrityMatches, readTarballManifest } from "../npm/tarball.js";
import { exactBytes, type PackumentCache } from "./cache.js";
import type { ChangeFeed } from "./changes.js";
import type { SearchIndex } from "./search.js";
import { assertTokenCovers, type Identity } from "./users.js";

export const packumentKey = (name: string) => `packages/${name}/packument.json`;
export const tarballKey = (name: string, filename: string) => `packages/${name}/-/${filename}`;
export const attestationKey = (name: string, version: string) => `packages/${name}/attestations/${version}.json`;

/** How long a tarball without a packument entry is assumed to belong to a publish still in flight. */
const ORPHAN_GRACE_MS = 10 * 60 * 1000;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function requireWriter(identity: Identity | undefined, name: string): Identity {
  if (!identity)
    throw new RegistryError("E_UNAUTHORIZED", "you must be logged in to publish or change packages: run `npm login`");
  if (identity.readonly)
    throw new RegistryError("E_FORBIDDEN", "this token is read-only: it cannot publish or change packages");
  assertTokenCovers(identity, name);
  return identity;
}

/**
 * `record[key]` when `key` is the record's own: versions and tags are named by clients, and a name like
 * `__proto__` or `constructor` must not reach what every object inherits.
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Admins (from the profile or the policy's roles) manage every package, as the route's policy check allowed. */
function isMaintainer(doc: Packument, user: Identity): boolean {
  return user.principal.admin || doc.maintainers.some((m) => m.name === user.name);
}

/** A token minted by OIDC trusted publishing: it may add versions to its one package, nothing else. */
function isTrustedPublisher(user: Identity): boolean {
  return user.token?.trustedPublisher !== undefined;
}

function requireMaintainer(doc: Packument, identity: Identity, action: string): void {
  if (!isMaintainer(doc, identity)) {
    throw new RegistryError("E_FORBIDDEN", `you are not a maintainer of "${doc.name}", so you cannot ${action}`);
  }
}

/**
 * A shallow copy of a record that grows with every version (`versions`, `time`), with `changes` set on
 * it. V8 keeps objects with thousands of keys as hash tables, and spreading one is about three times
 * slower than this loop.
 */
function copyWith<T>(record: Record<string, T>, changes: Record<string, T> = {}): Record<string, T> {
  const out: Record<string, T> = {};
  for (const source of [record, changes]) {
    for (const key of Object.keys(source)) {
      const value = source[key] as T;
      if (key === "__proto__")
        Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
  }
  return out;
}

/**
 * The versions with one added, kept in semver order. Usually the new version is the highest, so it is
 * appended without sorting thousands of existing versions on every publish.
 */
function withVersion(
  versions: Record<string, VersionManifest>,
  version: string,
  manifest: VersionManifest,
): Record<string, VersionManifest> {
  const keys = Object.keys(versions);
  const last = keys[keys.length - 1];
  if (last === undefined || semver.gt(version, last)) return copyWith(versions, { [version]: manifest });
  const out: Record<string, VersionManifest> = {};
  for (const v of [...keys, version].sort(semver.compare))
    out[v] = v === version ? manifest : (versions[v] as VersionManifest);
  return out;
}

function highest(doc: Packument, stableOnly: boolean): string | undefined {
  const versions = Object.keys(doc.versions).filter((v) => !stableOnly || semver.prerelease(v) === null);
  return versions.sort(semver.rcompare)[0];
}

/** Tarballs up to this size are kept in memory after their first read. */
const SMALL_TARBALL_BYTES = 1024 * 1024;

export interface TarballContent {
  etag: string;
  size: number;
  body: Uint8Array | ReadableStream<Uint8Array>;
}

export interface PackagesOptions {
  /** Memory for tarballs kept after their first read (each at most 1 MB). Default 32 MB. */
  tarballBytes?: number;
  /** Memory for the last written documents, whose bytes the next publish reuses. Default 16 MB. */
  previousBodyBytes?: number;
}

/** Use cases on packages: publish, metadata changes (deprecate, owners, stars, version unpublish), tags. */
export class PackagesService {
  private readonly tarballs: LRUCache<string, TarballContent & { body: Uint8Array }>;
  private readonly encoder: PackumentEncoder;
  private readonly codec: Codec<Packument> = {
    // Sized from the stored document when this process has not written the package yet.
    encode: (doc) => this.encoder.storedForm(doc, this.cache.storedSize(doc.name)),
    decode: (bytes) => jsonCodec.decode(bytes) as Packument,
    decodeStream: async (body, size) => (await readJsonBody(body, size)) as Packument,
    release: (encoded) => this.encoder.release(encoded),
    contentType: "application/json",
  };

  constructor(
    private readonly storage: StorageDriver,
    private readonly cache: PackumentCache,
    private readonly search: SearchIndex,
    private readonly changes?: ChangeFeed,
    options: PackagesOptions = {},
  ) {
    this.tarballs = new LRUCache({
      maxSize: options.tarballBytes ?? 32 * 1024 * 1024,
      sizeCalculation: (content) => Math.max(1, content.size),
    });
    this.encoder = new PackumentEncoder(options.previousBodyBytes);
  }

  /** The live document, or `null` for packages that do not exist or were unpublished. */
  async read(name: string): Promise<Packument | null> {
    const found = await this.cache.get(name);
    if (!found?.live) return null;
    return found.doc;
  }

  /** Whether a live package has this version; `null` when none exists under the name (see `PackumentCache.hasVersion`). */
  hasVersion(name: string, version: string): Promise<boolean | null> {
    return this.cache.hasVersion(name, version);
  }

  private async commit(name: string, update: (current: Packument | null) => Packument | undefined) {
    const cached = this.cache.peek(name);
    const result = await casUpdate<Packument>(
      this.storage,
      packumentKey(name),
      (current) => {
        const next = update(current);
        return next && { ...next, _rev: nextRev(current?._rev) };
      },
      cached ? { codec: this.codec, initial: { value: cached.doc, etag: cached.etag } } : { codec: this.codec },
    );
    if (result.written && result.value && result.info) {
      this.cache.set(name, result.value, result.info.etag, result.info.size);
      this.search.update(result.value);
      // The document is committed: a feed entry that fails to be written only delays other replicas
      // until they revalidate, so it does not fail the request.
      await this.changes?.append({ name, rev: result.value._rev }).catch(() => {});
    }
    return result.value;
  }

  /**
   * `email` is the publisher's account email: npm view and npm owner ls print maintainers and the
   * publisher as "name <email>" (and "<undefined>" without one). It comes from the account, never the body.
   */
  async publish(identity: Identity | undefined, name: string, body: unknown, email?: string): Promise<Packument> {
    const user = requireWriter(identity, name);
    const publisher: Person = { name: user.name, ...(email && { email }) };
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "publish body must be a JSON object");
    if (body.name !== name || (body._id !== undefined && body._id !== name)) {
      throw new RegistryError(
        "E_BAD_REQUEST",
        `the document's name does not match the URL's package "${truncate(name)}"`,
      );
    }
    assertPublishableName(name);
    const versions = body.versions;
    if (!isObject(versions) || Object.keys(versions).length !== 1) {
      throw new RegistryError("E_BAD_REQUEST", "publish exactly one version at a time");
    }
    const [version, rawManifest] = Object.entries(versions)[0] as [string, unknown];
    assertVersion(version);
    if (!isObject(rawManifest) || rawManifest.name !== name || rawManifest.version !== version) {
      throw new RegistryError(
        "E_BAD_REQUEST",
        `versions["${truncate(version)}"] must be a manifest with this name and version`,
      );
    }
    const distTags = body["dist-tags"] ?? { latest: version };
    if (!isObject(distTags)) throw new RegistryError("E_BAD_REQUEST", "dist-tags must be an object");
    for (const [tag, target] of Object.entries(distTags)) {
      assertTagName(tag);
      if (target !== version)
        throw new RegistryError("E_BAD_REQUEST", `dist-tag "${tag}" must point to the published version ${version}`);
    }

    const { tarball, provenance } = this.attachments(body._attachments);
    const computed = digest(tarball);
    const dist = isObject(rawManifest.dist) ? rawManifest.dist : {};
    if (typeof dist.shasum === "string" && dist.shasum !== computed.shasum) {
      throw new RegistryError("E_INTEGRITY", "the tarball does not match dist.shasum");
    }
    if (typeof dist.integrity === "string" && !integrityMatches(dist.integrity, computed)) {
      throw new RegistryError("E_INTEGRITY", "the tarball does not match dist.integrity");
    }
    if (typeof dist.shasum !== "string" && typeof dist.integrity !== "string") {
      throw new RegistryError("E_INTEGRITY", "dist.integrity or dist.shasum is required");
    }
    const packed = await readTarballManifest(tarball);
    if (packed.name !== name || packed.version !== version) {
      throw new RegistryError(
        "E_BAD_REQUEST",
        `the tarball's package.json is ${truncate(String(packed.name))}@${truncate(String(packed.version))}, not ${name}@${version}`,
      );
    }

    const existing = (await this.cache.get(name))?.doc ?? null;
    this.checkPublishable(existing, user, version);
    const filename = tarballFilename(name, version);
    await this.storeTarball(name, filename, tarball);
    if (provenance) {
      await this.storage.put(attestationKey(name, version), provenance, { contentType: "application/json" });
    }

    const now = new Date().toISOString();
    const { readme, _attachments: _a, ...cleanManifest } = rawManifest as VersionManifest & { readme?: unknown };
    const manifest: VersionManifest = {
      ...cleanManifest,
      name,
      version,
      _npmUser: publisher,
      dist: {
        ...dist,
        shasum: computed.shasum,
        integrity: computed.integrity,
        tarball: "",
        ...(provenance && {
          attestations: { url: "", provenance: { predicateType: provenancePredicate(provenance) } },
        }),
      },
    };
    const doc = await this.commit(name, (current) => {
      this.checkPublishable(current, user, version);
      const base: Packument = current ?? {
        _id: name,
        _rev: "",
        name,
        "dist-tags": {},
        versions: {},
        time: { created: now },
        maintainers: [publisher],
      };
      const next: Packument = {
        ...base,
        versions: withVersion(base.versions, version, manifest),
        "dist-tags": { ...base["dist-tags"], ...(distTags as Record<string, string>) },
        time: copyWith(base.time, { modified: now, [version]: now }),
        _fwPublished: [...(base._fwPublished ?? []), version],
      };
      delete next._fwUnpublished;
      if (base.maintainers.length === 0 && !isTrustedPublisher(user)) next.maintainers = [publisher];
      const latest = next["dist-tags"].latest;
      if (latest === version || !latest) {
        if (!latest) next["dist-tags"].latest = version;
        if (typeof readme === "string") next.readme = readme;
        else if (typeof body.readme === "string") next.readme = body.readme;
        for (const field of ["description", "keywords", "license", "homepage", "repository", "bugs"] as const) {
          if (manifest[field] !== undefined) next[field] = manifest[field] as never;
        }
        if (typeof manifest.readmeFilename === "string") next.readmeFilename = manifest.readmeFilename;
      }
      return next;
    });
    return doc as Packument;
  }

  private checkPublishable(doc: Packument | null, user: Identity, version: string): void {
    if (!doc) {
      // Trust is configured for packages that exist; a CI identity never creates (and owns) a name.
      if (isTrustedPublisher(user)) {
        throw new RegistryError(
          "E_FORBIDDEN",
          "trusted publishing adds versions to existing packages: publish the first version with a user account",
        );
      }
      return;
    }
    // The policy allowed this CI identity to publish this package (the route checked it): no owner list applies.
    if (doc.maintainers.length > 0 && !isMaintainer(doc, user) && !isTrustedPublisher(user)) {
      throw new RegistryError("E_FORBIDDEN", `you are not a maintainer of "${doc.name}", so you cannot publish it`);
    }
    if (own(doc.versions, version)) {
      throw new RegistryError(
        "E_VERSION_EXISTS",
        `cannot publish over the previously published version ${doc.name}@${version}`,
      );
    }
    if (doc._fwPublished?.includes(version)) {
      throw new RegistryError(
        "E_VERSION_EXISTS",
        `${doc.name}@${version} was unpublished; a version number cannot be reused`,
      );
    }
  }

  private attachments(raw: unknown): { tarball: Uint8Array; provenance?: string } {
    if (!isObject(raw)) throw new RegistryError("E_BAD_REQUEST", "the publish has no _attachments with the tarball");
    let tarball: Uint8Array | undefined;
    let provenance: string | undefined;
    for (const [key, value] of Object.entries(raw)) {
      if (!isObject(value) || typeof value.data !== "string") {
        throw new RegistryError("E_BAD_REQUEST", `attachment "${truncate(key)}" has no base64 data`);
      }
      if (!BASE64.test(value.data))
        throw new RegistryError("E_BAD_REQUEST", `attachment "${truncate(key)}" is not valid base64`);
      const bytes = Buffer.from(value.data, "base64");
      if (key.endsWith(".tgz")) {
        if (tarball) throw new RegistryError("E_BAD_REQUEST", "publish exactly one tarball at a time");
        if (value.length !== undefined && value.length !== bytes.byteLength) {
          throw new RegistryError(
            "E_BAD_REQUEST",
            `attachment "${truncate(key)}" length ${String(value.length)} does not match its ${bytes.byteLength} bytes`,
          );
        }
        tarball = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } else if (key.endsWith(".sigstore")) {
        const text = bytes.toString("utf8");
        try {
          JSON.parse(text);
        } catch {
          throw new RegistryError("E_BAD_REQUEST", "the provenance attachment is not a JSON sigstore bundle");
        }
        provenance = text;
      } else {
        throw new RegistryError("E_BAD_REQUEST", `unexpected attachment "${truncate(key)}"`);
      }
    }
    if (!tarball || tarball.byteLength === 0)
      throw new RegistryError("E_BAD_REQUEST", "the publish has no tarball attachment");
    return provenance === undefined ? { tarball } : { tarball, provenance };
  }

  /** Writes the tarball create-only; a same-bytes retry is fine, an abandoned upload may be replaced. */
  private async storeTarball(name: string, filename: string, bytes: Uint8Array): Promise<void> {
    const key = tarballKey(name, filename);
    try {
      await this.storage.put(key, bytes, {
        ifNoneMatch: "*",
        contentType: "application/octet-stream",
        size: bytes.byteLength,
      });
      return;
    } catch (error) {
      if (!isStorageError(error, "E_PRECONDITION")) throw error;
    }
    const existing = await this.storage.head(key);
    if (!existing) return this.storeTarball(name, filename, bytes);
    const md5 = createHash("md5").update(bytes).digest("hex");
    if (existing.etag === md5) return;
    if (Date.now() - existing.lastModified.getTime() < ORPHAN_GRACE_MS) {
      throw new RegistryError("E_CONFLICT", `another publish of ${filename} is in progress; retry in a few minutes`);
    }
    // An old tarball no document references: left by a publish that crashed before committing.
    await this.storage.put(key, bytes, { ifMatch: existing.etag, contentType: "application/octet-stream" });
  }

  /**
   * A full-document PUT without attachments: how npm deprecates, unpublishes single versions, changes
   * owners and stars. Only those differences are applied, each with its own permission; version
   * contents are immutable and other fields are ignored.
   */
  async updateMetadata(
    identity: Identity | undefined,
    name: string,
    body: unknown,
    pathRev?: string,
  ): Promise<Packument | null> {
    const user = requireWriter(identity, name);
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "the document must be a JSON object");
    if (body.name !== undefined && body.name !== name) {
      throw new RegistryError("E_BAD_REQUEST", "the document's name does not match the URL");
    }
    const clientRev = pathRev ?? (typeof body._rev === "string" ? body._rev : undefined);
    const removedTarballs: string[] = [];
    const accounts = await this.accounts(body);
    const doc = await this.commit(name, (current) => {
      if (!current || Object.keys(current.versions).length === 0)
        throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
      removedTarballs.length = 0;
      const next: Packument = structuredClone(current);
      let changed = false;

      if (isObject(body.versions)) {
        const incoming = body.versions;
        const removed = Object.keys(current.versions).filter((v) => !Object.hasOwn(incoming, v));
        if (removed.length > 0) {
          requireMaintainer(current, user, "unpublish versions");
          if (clientRev !== current._rev) {
            throw new RegistryError(
              "E_CONFLICT",
              "the package changed since you read it (revision mismatch); fetch it again and retry",
            );
          }
          for (const v of removed) {
            delete next.versions[v];
            removedTarballs.push(tarballFilename(name, v));
          }
          changed = true;
        }
        for (const [v, manifest] of Object.entries(incoming)) {
          const stored = own(next.versions, v);
          if (!stored || !isObject(manifest)) continue;
          const wanted =
            typeof manifest.deprecated === "string" && manifest.deprecated !== "" ? manifest.deprecated : undefined;
          if (wanted !== stored.deprecated) {
            requireMaintainer(current, user, "deprecate versions");
            if (wanted === undefined) delete stored.deprecated;
            else stored.deprecated = wanted;
            changed = true;
          }
        }
      }

      if (Array.isArray(body.maintainers)) {
        const wanted = body.maintainers.map((m) => (isObject(m) && typeof m.name === "string" ? m.name : ""));
        const have = current.maintainers.map((m) => m.name);
        if (wanted.join("\n") !== have.join("\n") && new Set(wanted).size !== 0) {
          const same = wanted.length === have.length && wanted.every((n) => have.includes(n));
          if (!same) {
            requireMaintainer(current, user, "change its owners");
            if (wanted.some((n) => n === "")) throw new RegistryError("E_BAD_REQUEST", "every maintainer needs a name");
            for (const n of wanted) {
              if (!have.includes(n) && !accounts.has(n))
                throw new RegistryError("E_NOT_FOUND", `user "${truncate(n)}" not found`);
            }
            next.maintainers = wanted.map(
              (n) => current.maintainers.find((m) => m.name === n) ?? accounts.get(n) ?? { name: n },
            );
            changed = true;
          }
        }
        if (Array.isArray(body.maintainers) && body.maintainers.length === 0) {
          throw new RegistryError("E_BAD_REQUEST", "a package needs at least one maintainer");
        }
      }

      if (isObject(body.users)) {
        const wanted = new Set(Object.keys(body.users).filter((k) => (body.users as Record<string, unknown>)[k]));
        const have = new Set(Object.keys(current.users ?? {}));
        const differs = [...wanted].some((u) => !have.has(u)) || [...have].some((u) => !wanted.has(u));
        if (differs) {
          const others = [...wanted, ...have].filter((u) => u !== user.name && wanted.has(u) !== have.has(u));
          if (others.length > 0) throw new RegistryError("E_FORBIDDEN", "you can only star or unstar for yourself");
          next.users = { ...(current.users ?? {}) };
          if (wanted.has(user.name)) next.users[user.name] = true;
          else delete next.users[user.name];
          changed = true;
        }
      }

      if (isObject(body["dist-tags"])) {
        const wanted = body["dist-tags"] as Record<string, unknown>;
        const tagsChanged =
          Object.keys(wanted).length !== Object.keys(current["dist-tags"]).length ||
          Object.entries(wanted).some(([t, v]) => own(current["dist-tags"], t) !== v);
        if (tagsChanged) {
          requireMaintainer(current, user, "change its dist-tags");
          const tags: Record<string, string> = {};
          for (const [tag, v] of Object.entries(wanted)) {
            if (typeof v !== "string" || !own(next.versions, v)) continue;
            assertTagName(tag);
            tags[tag] = v;
          }
          next["dist-tags"] = tags;
          changed = true;
        }
      }

      if (!changed) return undefined;
      // Tags may not point at versions that are gone; `latest` falls back to the highest stable.
      for (const [tag, v] of Object.entries(next["dist-tags"]))
        if (!own(next.versions, v)) delete next["dist-tags"][tag];
      if (Object.keys(next.versions).length === 0) {
        next._fwUnpublished = {
          time: new Date().toISOString(),
          by: user.name,
          versions: Object.keys(current.versions),
        };
      } else if (!next["dist-tags"].latest) {
        const fallback = highest(next, true) ?? highest(next, false);
        if (fallback) next["dist-tags"].latest = fallback;
      }
      next.time = copyWith(next.time, { modified: new Date().toISOString() });
      return next;
    });
    for (const filename of removedTarballs) await this.deleteTarballObject(name, filename);
    return doc;
  }

  /**
   * The accounts named as maintainers in a metadata PUT, as they will be stored. `npm owner add` sends
   * the email it read from the user document, but only the account's own email is trusted.
   */
  private async accounts(body: Record<string, unknown>): Promise<Map<string, Person>> {
    const names = Array.isArray(body.maintainers)
      ? body.maintainers.flatMap((m) => (isObject(m) && typeof m.name === "string" ? [m.name] : []))
      : [];
    const found = new Map<string, Person>();
    for (const n of names.slice(0, 100)) {
      if (!/^[a-z0-9][a-z0-9._-]{0,63}$/i.test(n)) continue;
      const object = await this.storage.get(`users/${n.toLowerCase()}/profile.json`);
      if (!object) continue;
      const { email } = JSON.parse(new TextDecoder().decode(object.body)) as { email?: unknown };
      found.set(n, { name: n, ...(typeof email === "string" && email && { email }) });
    }
    return found;
  }

  /** `DELETE /<name>/-rev/<rev>`: the whole package. The name's history is kept so versions are never reused. */
  async unpublishPackage(identity: Identity | undefined, name: string, rev: string): Promise<void> {
    const user = requireWriter(identity, name);
    let versions: string[] = [];
    await this.commit(name, (current) => {
      if (!current || Object.keys(current.versions).length === 0)
        throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
      requireMaintainer(current, user, "unpublish it");
      if (rev !== current._rev) {
        throw new RegistryError(
          "E_CONFLICT",
          "the package changed since you read it (revision mismatch); fetch it again and retry",
        );
      }
      versions = Object.keys(current.versions);
      const now = new Date().toISOString();
      return {
        ...current,
        versions: {},
        "dist-tags": {},
        time: copyWith(current.time, { modified: now }),
        _fwUnpublished: { time: now, by: user.name, versions },
      };
    });
    this.search.remove(name);
    for (const v of versions) await this.deleteTarballObject(name, tarballFilename(name, v));
  }

  /** `DELETE /<name>/-/<file>/-rev/<rev>`: removes a tarball whose version is no longer published. */
  async deleteTarball(identity: Identity | undefined, name: string, filename: string): Promise<void> {
    const user = requireWriter(identity, name);
    const stored = (await this.cache.get(name))?.doc;
    if (!stored) throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
    requireMaintainer(stored, user, "delete its tarballs");
    const published = Object.keys(stored.versions).some((v) => tarballFilename(name, v) === filename);
    if (published)
      throw new RegistryError("E_FORBIDDEN", `${filename} belongs to a published version; unpublish the version first`);
    if (!filename.startsWith(`${baseName(name)}-`)) throw new RegistryError("E_NOT_FOUND", "not found");
    await this.deleteTarballObject(name, filename);
  }

  private async deleteTarballObject(name: string, filename: string): Promise<void> {
    this.tarballs.delete(tarballKey(name, filename));
    await this.storage.delete(tarballKey(name, filename));
  }

  async tags(name: string): Promise<Record<string, string>> {
    const doc = await this.read(name);
    if (!doc) throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
    return doc["dist-tags"];
  }

  async setTag(
    identity: Identity | undefined,
    name: string,
    tag: string,
    version: unknown,
  ): Promise<Record<string, string>> {
    const user = requireWriter(identity, name);
    assertTagName(tag);
    if (typeof version !== "string")
      throw new RegistryError("E_BAD_REQUEST", "the request body must be a JSON string: the version to tag");
    const doc = await this.commit(name, (current) => {
      if (!current || Object.keys(current.versions).length === 0)
        throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
      requireMaintainer(current, user, "change its dist-tags");
      if (!own(current.versions, version))
        throw new RegistryError("E_NOT_FOUND", `version ${truncate(version)} of "${name}" not found`);
      if (own(current["dist-tags"], tag) === version) return undefined;
      return {
        ...current,
        "dist-tags": { ...current["dist-tags"], [tag]: version },
        time: copyWith(current.time, { modified: new Date().toISOString() }),
      };
    });
    return (doc as Packument)["dist-tags"];
  }

  async removeTag(identity: Identity | undefined, name: string, tag: string): Promise<Record<string, string>> {
    const user = requireWriter(identity, name);
    if (tag === "latest")
      throw new RegistryError("E_BAD_REQUEST", 'the "latest" tag cannot be removed; move it instead');
    const doc = await this.commit(name, (current) => {
      if (!current || Object.keys(current.versions).length === 0)
        throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
      requireMaintainer(current, user, "change its dist-tags");
      if (!Object.hasOwn(current["dist-tags"], tag))
        throw new RegistryError("E_NOT_FOUND", `dist-tag "${truncate(tag)}" not found`);
      const tags = { ...current["dist-tags"] };
      delete tags[tag];
      return { ...current, "dist-tags": tags, time: copyWith(current.time, { modified: new Date().toISOString() }) };
    });
    return (doc as Packument)["dist-tags"];
  }

  /**
   * A tarball's bytes (small ones, from memory after the first read) or stream (large ones). Tarballs
   * never change once published and a version number is never reused, so caching them is safe; the
   * caller checks that the version is still published.
   */
  async tarball(name: string, filename: string): Promise<TarballContent | null> {
    const key = tarballKey(name, filename);
    const cached = this.tarballs.get(key);
    if (cached) return cached;
    const object = await this.storage.stream(key);
    if (!object) return null;
    if (object.size > SMALL_TARBALL_BYTES) return { etag: object.etag, size: object.size, body: object.body };
    const bytes = exactBytes(await readAll(object.body));
    const content = { etag: object.etag, size: bytes.byteLength, body: bytes };
    this.tarballs.set(key, content);
    return content;
  }

  /** A tarball already held in memory, without touching storage (the synchronous read path), or `undefined`. */
  peekTarball(name: string, filename: string): (TarballContent & { body: Uint8Array }) | undefined {
    return this.tarballs.get(tarballKey(name, filename));
  }

  async attestation(name: string, version: string): Promise<string | null> {
    const object = await this.storage.get(attestationKey(name, version));
    return object ? new TextDecoder().decode(object.body) : null;
  }

  /** Loads every packument into the search index (at start-up). */
  async indexAll(): Promise<number> {
    let cursor: string | undefined;
    let count = 0;
    do {
      const page = await this.storage.list({ prefix: "packages/", cursor });
      for (const object of page.objects) {
        if (!object.key.endsWith("/packument.json")) continue;
        const name = object.key.slice("packages/".length, -"/packument.json".length);
        const found = await this.cache.get(name);
        if (found?.live) {
          this.search.update(found.doc);
          count++;
        }
      }
      cursor = page.cursor;
    } while (cursor);
    return count;
  }
}

function provenancePredicate(bundle: string): string {
  try {
    const parsed = JSON.parse(bundle) as { dsseEnvelope?: { payload?: string } };
    const payload = parsed.dsseEnvelope?.payload;
    if (payload) {
      const statement = JSON.parse(Buffer.from(payload, "base64").toString("utf8")) as { predicateType?: unknown };
      if (typeof statement.predicateType === "string") return statement.predicateType;
    }
  } catch {
    // A bundle we cannot read still gets stored; it is the client's attestation, served as given.
  }
  return "https://slsa.dev/provenance/v1";
}
