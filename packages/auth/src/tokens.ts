import { randomUUID } from "node:crypto";
import { casUpdate, type StorageDriver } from "@fw/storage-r2";
import { checkCidrs, ipAllowed } from "./cidr.js";
import { AuthError } from "./errors.js";
import { randomText, sha256Hex } from "./secrets.js";
import { createJson, DAY_MS, listKeys, readJson } from "./storage.js";
import type { DueItem, UserProfile, UserStore } from "./users.js";

/** Recognisable prefix, so secret scanners can find leaked fw tokens. Same as `apps/server`'s tokens. */
export const TOKEN_PREFIX = "fw_";
/** 30 random bytes (240 bits) after the prefix: far beyond guessing, which is why SHA-256 storage is enough. */
const TOKEN_BYTES = 30;
const TOKEN_SHAPE = /^fw_[A-Za-z0-9_-]{40}$/;
/** How many characters of a token listings show (`fw_` and six more), as `apps/server` did. */
const SHOWN_PREFIX = 9;
const ENVIRONMENT = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const SCOPE = /^@[a-z0-9][a-z0-9._~-]*$/;
const PACKAGE = /^(@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*$/;
/** Principals of trusted publishers: `oidc:` then printable characters. Accounts cannot contain `:`. */
const OIDC_PRINCIPAL = /^oidc:[\x21-\x7e]{1,200}$/;
const ORG = /^[a-z0-9][a-z0-9._~-]*$/;

/** npm 11's `--packages-and-scopes-permission` / `--orgs-permission` values that grant something. */
export type TokenPermission = "read-only" | "read-write";

/**
 * A token as stored in `tokens/<sha256 of the token>.json` and listed in `users/<name>/tokens.json`: never
 * the token itself. `key`, `user`, `hash`, `prefix`, `name`, `readonly`, `cidr_whitelist`, `created` and
 * `expires` are what `apps/server` already writes (`cidr_whitelist` keeps npm's wire name for that reason);
 * the other fields are optional, and a record without them is an unrestricted token as before.
 */
export interface TokenRecord {
  key: string;
  user: string;
  hash: string;
  prefix: string;
  name?: string;
  description?: string;
  /** No writes at all (npm's classic read-only token). */
  readonly: boolean;
  cidr_whitelist: string[];
  created: string;
  expires?: string;
  /** Rotation schedule: the token stops working this many days after `created`, whatever `expires` says. */
  maxAgeDays?: number;
  /** Label such as `ci` or `prod` that package rules can require for publishing. */
  environment?: string;
  /** Exact package names the token may be used for. With `scopes`, absent or both empty means every package. */
  packages?: string[];
  /** Scopes (`@acme`) whose packages the token may be used for. */
  scopes?: string[];
  /** What the token may do with those packages; default `read-write` (unless `readonly`). */
  packagesAndScopesPermission?: TokenPermission;
  /** Orgs whose membership and teams the token may read or manage. Absent: no org administration. */
  orgs?: string[];
  orgsPermission?: TokenPermission;
  /** Writes with this token need no one-time password (for CI; npm's `--bypass-2fa`). */
  bypass2fa?: boolean;
  /**
   * Set on tokens minted by trusted publishing (`TrustedPublishing.exchange`): the CI identity they were
   * issued to. Such a token belongs to no account (`user` is an `oidc:` principal, a name no account can
   * take), covers one package, and may only publish new versions of it (see `authorize`).
   */
  trustedPublisher?: TrustedPublisherOrigin;
}

/** The CI identity behind a token minted by trusted publishing, from its verified OIDC ID token. */
export interface TrustedPublisherOrigin {
  /** Which claim names were matched: GitHub Actions', GitLab CI's, or only those listed in the config. */
  provider: "github" | "gitlab" | "custom";
  /** The ID token's `iss`. */
  issuer: string;
  /** The ID token's `sub`. */
  subject: string;
  /** `owner/repo` (GitHub) or `group/project` (GitLab). */
  repository?: string;
  /** The workflow (GitHub) or pipeline (GitLab) file in the repository, e.g. `.github/workflows/release.yml`. */
  workflow?: string;
  /** The git ref the run was for, e.g. `refs/heads/main` or `refs/tags/v1.2.0`. */
  ref?: string;
  environment?: string;
  /** The ID token's `jti`, to find the run in the issuer's own logs. */
  jti?: string;
}

export interface TrustedPublisherTokenOptions {
  /** `oidc:` and the CI identity, e.g. `oidc:github:acme/web`: what audit events and `npm whoami` show. */
  principal: string;
  /** The one package the token may publish. */
  package: string;
  origin: TrustedPublisherOrigin;
  /** Minutes until the token expires, 1 to 60. */
  expiresInMinutes: number;
  /** Environment label for package rules that require one (`environments`). */
  environment?: string;
  description?: string;
}

export interface CreateTokenOptions {
  name?: string;
  description?: string;
  readonly?: boolean;
  /** CIDR ranges the token may be used from; empty or absent: anywhere. */
  cidr?: unknown;
  /** Days until the token expires (npm's `--expires`). */
  expiresInDays?: number;
  /** Rotation: maximum age in days. Unlike `expires` it shows up in `due` listings before it bites. */
  maxAgeDays?: number;
  environment?: string;
  packages?: readonly string[];
  scopes?: readonly string[];
  packagesAndScopesPermission?: TokenPermission;
  orgs?: readonly string[];
  orgsPermission?: TokenPermission;
  bypass2fa?: boolean;
}

export type TokenRefusal = {
  ok: false;
  /** `E_UNAUTHORIZED` (no valid credentials: log in again) or `E_FORBIDDEN` (valid, but not from here). */
  code: "E_UNAUTHORIZED" | "E_FORBIDDEN";
  reason: string;
  /** The record, when the token was a real one (for the audit trail). */
  record?: TokenRecord;
};

export type TokenDecision =
  | {
      ok: true;
      record: TokenRecord;
      user: UserProfile;
      /** When what the decision rests on was read from storage (ms since the epoch; older when cached). */
      readAt: number;
    }
  | TokenRefusal;

interface Tombstone {
  key: string;
  user: string;
  prefix: string;
  revoked: string;
}

export interface TokenStoreOptions {
  /** Used to refuse tokens of disabled or deleted accounts. */
  users: UserStore;
  /**
   * How long a looked-up token record (or its absence) and its owner's profile are trusted before storage
   * is asked again, in ms. Default 5000. Revocations through this store apply at once (call `forgetUser`
   * after disabling an account); changes made elsewhere take up to this long. Only lookups are cached, never
   * decisions: expiry, CIDR and the account's state are checked on every call.
   */
  cacheMs?: number;
  /** Most cached entries; the oldest go first. Default 10000. */
  cacheSize?: number;
  clock?: () => number;
}

interface Cached<T> {
  value: T;
  at: number;
}

/** A small bounded cache with per-entry age; Map keeps insertion order, so the first key is the oldest. */
class AgeCache<T> {
  private readonly entries = new Map<string, Cached<T>>();
  constructor(
    private readonly maxAgeMs: number,
    private readonly size: number,
  ) {}

  get(key: string, now: number): T | undefined {
    return this.entry(key, now)?.value;
  }

  /** The value with the time it was stored, while it is fresh. */
  entry(key: string, now: number): Cached<T> | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (now - entry.at >= this.maxAgeMs || now < entry.at) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  set(key: string, value: T, now: number): void {
    this.entries.delete(key);
    this.entries.set(key, { value, at: now });
    while (this.entries.size > this.size) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.entries.delete(key);
  }
}

function assertDays(days: number | undefined, what: string): number | undefined {
  if (days === undefined) return undefined;
  if (!Number.isFinite(days) || days <= 0 || days > 3650) {
    throw new AuthError("E_BAD_REQUEST", `${what} must be a number of days from 1 to 3650`);
  }
  return days;
}

function assertList(
  list: readonly string[] | undefined,
  shape: RegExp,
  what: string,
  example: string,
): string[] | undefined {
  if (list === undefined) return undefined;
  if (!Array.isArray(list)) throw new AuthError("E_BAD_REQUEST", `${what} must be a list`);
  for (const entry of list) {
    if (typeof entry !== "string" || !shape.test(entry)) {
      throw new AuthError(
        "E_BAD_REQUEST",
        `invalid ${what} entry "${String(entry).slice(0, 60)}" (expected e.g. ${example})`,
      );
    }
  }
  return [...new Set(list)];
}

function assertPermission(value: unknown, what: string): TokenPermission | undefined {
  if (value === undefined) return undefined;
  if (value !== "read-only" && value !== "read-write") {
    throw new AuthError("E_BAD_REQUEST", `${what} must be "read-only" or "read-write"`);
  }
  return value;
}

/** When the token stops working: the earlier of `expires` and `created + maxAgeDays`. */
export function tokenExpiry(record: TokenRecord): { at: number; why: "expires" | "maxAge" } | undefined {
  const expires = record.expires ? Date.parse(record.expires) : undefined;
  const aged = record.maxAgeDays !== undefined ? Date.parse(record.created) + record.maxAgeDays * DAY_MS : undefined;
  if (expires === undefined && aged === undefined) return undefined;
  if (aged === undefined || (expires !== undefined && expires <= aged))
    return { at: expires as number, why: "expires" };
  return { at: aged, why: "maxAge" };
}

/** Whether a token's package allow-list covers `pkg` (no list: every package). */
export function tokenCoversPackage(
  record: { packages?: readonly string[]; scopes?: readonly string[] },
  pkg: string,
): boolean {
  const packages = record.packages ?? [];
  const scopes = record.scopes ?? [];
  if (packages.length === 0 && scopes.length === 0) return true;
  if (packages.includes(pkg)) return true;
  const scope = pkg.startsWith("@") ? pkg.slice(0, pkg.indexOf("/")) : undefined;
  return scope !== undefined && scopes.includes(scope);
}

/**
 * The stand-in profile `verify` returns for a trusted publisher's token, so `identityFor` and the server's
 * code paths work unchanged. It is never stored: `UserStore.get` of an `oidc:` name finds nothing, so
 * account operations (profile, tokens, 2FA) have no account to act on.
 */
function trustedPublisherProfile(record: TokenRecord): UserProfile {
  return { name: record.user, passwordHash: "", created: record.created, updated: record.created };
}

/** A token with its secret parts left out, for listings (`npm token list`). */
export function describeToken(record: TokenRecord): Omit<TokenRecord, "hash"> {
  const { hash: _hash, ...rest } = record;
  return rest;
}

/**
 * Bearer tokens: created at random and shown once, stored as their SHA-256 only, checked with one hash
 * and a cached lookup per request (no KDF: 240 random bits cannot be guessed, so a slow hash buys nothing).
 */
export class TokenStore {
  private readonly users: UserStore;
  private readonly clock: () => number;
  private readonly records: AgeCache<TokenRecord | null>;
  private readonly profiles: AgeCache<UserProfile | null>;
  /**
   * Bumped whenever this process changes a token or forgets an account: a read that started before
   * is not cached when it ends, since it may hold what was there before the change.
   */
  private changes = 0;

  constructor(
    private readonly storage: StorageDriver,
    options: TokenStoreOptions,
  ) {
    this.users = options.users;
    this.clock = options.clock ?? Date.now;
    const cacheMs = options.cacheMs ?? 5_000;
    const size = options.cacheSize ?? 10_000;
    this.records = new AgeCache(cacheMs, size);
    this.profiles = new AgeCache(cacheMs, size);
  }

  private indexKey(user: string): string {
    return `users/${user.toLowerCase()}/tokens.json`;
  }

  async create(user: string, options: CreateTokenOptions = {}): Promise<{ token: string; record: TokenRecord }> {
    const profile = await this.users.get(user);
    if (!profile) throw new AuthError("E_NOT_FOUND", `user "${user}" not found`);
    if (profile.disabled) throw new AuthError("E_FORBIDDEN", `the account "${profile.name}" is disabled`);
    const cidrs = checkCidrs(options.cidr);
    const expiresInDays = assertDays(options.expiresInDays, "expires");
    const maxAgeDays = assertDays(options.maxAgeDays, "maxAgeDays");
    if (options.environment !== undefined && !ENVIRONMENT.test(options.environment)) {
      throw new AuthError(
        "E_BAD_REQUEST",
        "environment must be 1–32 lowercase letters, digits, '.', '_' or '-' (e.g. ci)",
      );
    }
    const packages = assertList(options.packages, PACKAGE, "packages", "lodash or @acme/web");
    const scopes = assertList(options.scopes, SCOPE, "scopes", "@acme");
    const orgs = assertList(options.orgs, ORG, "orgs", "acme");
    const packagesAndScopesPermission = assertPermission(
      options.packagesAndScopesPermission,
      "packagesAndScopesPermission",
    );
    const orgsPermission = assertPermission(options.orgsPermission, "orgsPermission");

    const token = `${TOKEN_PREFIX}${randomText(TOKEN_BYTES)}`;
    const now = this.clock();
    const record: TokenRecord = {
      key: randomUUID(),
      user: profile.name,
      hash: sha256Hex(token),
      prefix: token.slice(0, SHOWN_PREFIX),
      ...(options.name && { name: options.name.slice(0, 100) }),
      ...(options.description && { description: options.description.slice(0, 500) }),
      readonly: options.readonly === true,
      cidr_whitelist: cidrs,
      created: new Date(now).toISOString(),
      ...(expiresInDays !== undefined && { expires: new Date(now + expiresInDays * DAY_MS).toISOString() }),
      ...(maxAgeDays !== undefined && { maxAgeDays }),
      ...(options.environment !== undefined && { environment: options.environment }),
      ...(packages && packages.length > 0 && { packages }),
      ...(scopes && scopes.length > 0 && { scopes }),
      ...(packagesAndScopesPermission && { packagesAndScopesPermission }),
      ...(orgs && orgs.length > 0 && { orgs }),
      ...(orgsPermission && { orgsPermission }),
      ...(options.bypass2fa === true && { bypass2fa: true }),
    };
    if (!(await createJson(this.storage, `tokens/${record.hash}.json`, record))) {
      // 240 random bits do not collide; reaching this means the random source is broken.
      throw new AuthError("E_CONFLICT", "token collision: refusing to reuse a token");
    }
    await casUpdate<{ tokens: TokenRecord[] }>(this.storage, this.indexKey(profile.name), (doc) => ({
      tokens: [...(doc?.tokens ?? []), record],
    }));
    this.changes++;
    this.records.delete(record.hash);
    return { token, record };
  }

  /**
   * Mints a short-lived token for a verified trusted publisher: it may publish new versions of one package
   * and do nothing else. It belongs to no account (so no `users/` index lists it and `revoke` by key does
   * not reach it; `revokeValue` does) and skips the second factor, as CI has none. Call it only after
   * the CI identity was verified and matched: `TrustedPublishing.exchange` does both.
   */
  async createForTrustedPublisher(
    options: TrustedPublisherTokenOptions,
  ): Promise<{ token: string; record: TokenRecord }> {
    if (!OIDC_PRINCIPAL.test(options.principal)) {
      throw new AuthError("E_BAD_REQUEST", 'a trusted publisher\'s principal must start with "oidc:"');
    }
    if (!PACKAGE.test(options.package)) {
      throw new AuthError("E_BAD_REQUEST", `invalid package name "${options.package.slice(0, 60)}"`);
    }
    const minutes = options.expiresInMinutes;
    if (!Number.isFinite(minutes) || minutes < 1 || minutes > 60) {
      throw new AuthError("E_BAD_REQUEST", "a trusted publisher's token must expire in 1 to 60 minutes");
    }
    if (options.environment !== undefined && !ENVIRONMENT.test(options.environment)) {
      throw new AuthError(
        "E_BAD_REQUEST",
        "environment must be 1–32 lowercase letters, digits, '.', '_' or '-' (e.g. ci)",
      );
    }
    const token = `${TOKEN_PREFIX}${randomText(TOKEN_BYTES)}`;
    const now = this.clock();
    const record: TokenRecord = {
      key: randomUUID(),
      user: options.principal,
      hash: sha256Hex(token),
      prefix: token.slice(0, SHOWN_PREFIX),
      name: "trusted publishing",
      ...(options.description && { description: options.description.slice(0, 500) }),
      readonly: false,
      cidr_whitelist: [],
      created: new Date(now).toISOString(),
      expires: new Date(now + minutes * 60_000).toISOString(),
      ...(options.environment !== undefined && { environment: options.environment }),
      packages: [options.package],
      packagesAndScopesPermission: "read-write",
      bypass2fa: true,
      trustedPublisher: options.origin,
    };
    if (!(await createJson(this.storage, `tokens/${record.hash}.json`, record))) {
      throw new AuthError("E_CONFLICT", "token collision: refusing to reuse a token");
    }
    this.changes++;
    this.records.delete(record.hash);
    return { token, record };
  }

  async list(user: string): Promise<TokenRecord[]> {
    const doc = await readJson<{ tokens: TokenRecord[] }>(this.storage, this.indexKey(user));
    return doc?.tokens ?? [];
  }

  private async lookup(hash: string, fresh = false): Promise<Cached<TokenRecord | null>> {
    const now = this.clock();
    const cached = fresh ? undefined : this.records.entry(hash, now);
    if (cached !== undefined) return cached;
    const changes = this.changes;
    const record = await readJson<TokenRecord>(this.storage, `tokens/${hash}.json`);
    if (changes === this.changes) this.records.set(hash, record, now);
    return { value: record, at: now };
  }

  private async owner(name: string, fresh = false): Promise<Cached<UserProfile | null>> {
    const now = this.clock();
    const key = name.toLowerCase();
    const cached = fresh ? undefined : this.profiles.entry(key, now);
    if (cached !== undefined) return cached;
    const changes = this.changes;
    const profile = await this.users.get(name);
    if (changes === this.changes) this.profiles.set(key, profile, now);
    return { value: profile, at: now };
  }

  /** Forgets the cached profile of `name`, e.g. right after it was disabled through this process. */
  forgetUser(name: string): void {
    this.changes++;
    this.profiles.delete(name.toLowerCase());
  }

  /**
   * Whether a bearer token may be used for this request. Refusals say what happened and what to do. The
   * package-level checks (read-only, package allow-list, environment) are `authorize`'s, since they depend
   * on the package and the action. `fresh`: read the token and its account from storage rather than
   * from the last few seconds' cache (for a caller that keeps the answer for a while itself).
   */
  async verify(token: string, context: { clientIp?: string; fresh?: boolean } = {}): Promise<TokenDecision> {
    if (!TOKEN_SHAPE.test(token)) {
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        reason: "this is not an fw registry token: log in again with `npm login`",
      };
    }
    const hash = sha256Hex(token);
    const { value: record, at: recordAt } = await this.lookup(hash, context.fresh);
    if (!record) {
      const tombstone = await readJson<Tombstone>(this.storage, `revoked-tokens/${hash}.json`);
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        reason: tombstone
          ? `this token (${tombstone.prefix}…) was revoked on ${tombstone.revoked}: log in again with \`npm login\` or create a new token`
          : "this token is unknown: log in again with `npm login` or create a new token",
      };
    }
    const now = this.clock();
    const expiry = tokenExpiry(record);
    if (expiry && expiry.at <= now) {
      const when = new Date(expiry.at).toISOString();
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        record,
        reason:
          expiry.why === "expires"
            ? `this token (${record.prefix}…) expired on ${when}: create a new one with \`npm token create\``
            : `this token (${record.prefix}…) reached its maximum age of ${record.maxAgeDays} days on ${when} and must be rotated: create a new one with \`npm token create\``,
      };
    }
    if (record.trustedPublisher) {
      // No account behind it: the verified CI identity was the credential, and the record says what it may do.
      return { ok: true, record, user: trustedPublisherProfile(record), readAt: recordAt };
    }
    const { value: user, at: userAt } = await this.owner(record.user, context.fresh);
    if (!user) {
      return { ok: false, code: "E_UNAUTHORIZED", record, reason: `the account "${record.user}" no longer exists` };
    }
    if (user.disabled) {
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        record,
        reason: `the account "${user.name}" is disabled: ask a registry administrator`,
      };
    }
    if (!ipAllowed(context.clientIp, record.cidr_whitelist)) {
      return {
        ok: false,
        code: "E_FORBIDDEN",
        record,
        reason: `this token may only be used from ${record.cidr_whitelist.join(", ")}, not from ${context.clientIp ?? "an unknown address"}`,
      };
    }
    return { ok: true, record, user, readAt: Math.min(recordAt, userAt) };
  }

  /** Revokes one of `user`'s tokens by key, or by an unambiguous key prefix of 6+ characters (as `npm token revoke`). */
  async revoke(user: string, keyOrPrefix: string): Promise<TokenRecord> {
    const tokens = await this.list(user);
    const matches = tokens.filter(
      (t) => t.key === keyOrPrefix || (keyOrPrefix.length >= 6 && t.key.startsWith(keyOrPrefix)),
    );
    if (matches.length === 0) throw new AuthError("E_NOT_FOUND", "no such token");
    if (matches.length > 1) throw new AuthError("E_BAD_REQUEST", "token id prefix is ambiguous; give more characters");
    const record = matches[0] as TokenRecord;
    await this.remove(record);
    return record;
  }

  /** Revokes the token itself (logout). `null` when it was not a live token: the outcome is the same. */
  async revokeValue(token: string): Promise<TokenRecord | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const hash = sha256Hex(token);
    const { value: record } = await this.lookup(hash, true);
    if (!record) return null;
    await this.remove(record);
    return record;
  }

  /** Revokes every token of `user` (after a password reset or a compromise). */
  async revokeAll(user: string): Promise<TokenRecord[]> {
    const tokens = await this.list(user);
    for (const record of tokens) await this.remove(record);
    return tokens;
  }

  private async remove(record: TokenRecord): Promise<void> {
    // The tombstone goes first: a reader that misses the record then finds why.
    const tombstone: Tombstone = {
      key: record.key,
      user: record.user,
      prefix: record.prefix,
      revoked: new Date(this.clock()).toISOString(),
    };
    await createJson(this.storage, `revoked-tokens/${record.hash}.json`, tombstone);
    await this.storage.delete(`tokens/${record.hash}.json`);
    this.changes++;
    this.records.set(record.hash, null, this.clock());
    await casUpdate<{ tokens: TokenRecord[] }>(this.storage, this.indexKey(record.user), (doc) =>
      doc ? { tokens: doc.tokens.filter((t) => t.key !== record.key) } : undefined,
    );
  }

  /** Tokens that stop working before `now + withinDays` (or already have), soonest first. */
  async due(options: { withinDays?: number } = {}): Promise<DueItem[]> {
    const now = this.clock();
    const horizon = now + (options.withinDays ?? 14) * DAY_MS;
    const due: DueItem[] = [];
    for await (const key of listKeys(this.storage, "tokens/")) {
      const record = await readJson<TokenRecord>(this.storage, key);
      const expiry = record ? tokenExpiry(record) : undefined;
      // Trusted publishers' tokens live minutes by design: nobody rotates them.
      if (!record || record.trustedPublisher || !expiry || expiry.at > horizon) continue;
      due.push({
        kind: "token",
        user: record.user,
        key: record.key,
        prefix: record.prefix,
        ...(record.name !== undefined && { name: record.name }),
        due: new Date(expiry.at).toISOString(),
        overdue: expiry.at <= now,
      });
    }
    return due.sort((a, b) => a.due.localeCompare(b.due));
  }
}
