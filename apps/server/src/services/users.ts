import { createHmac, randomBytes } from "node:crypto";
import {
  type CreateTokenOptions,
  identityFor,
  ipAllowed,
  type Policy,
  sha256Hex,
  TOKEN_PREFIX,
  type TokenRecord,
  TokenStore,
  tokenCoversPackage,
  tokenExpiry,
  type UserIdentity,
  type UserProfile,
  UserStore,
} from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { RegistryError } from "../http/errors.js";

export type User = UserProfile;
export type { TokenRecord };

export interface Identity {
  name: string;
  /** The account's email when it has one: npm shows publishers and maintainers as "name <email>". */
  email?: string;
  readonly: boolean;
  /** The token's key when authenticated with a token; absent for passwords. */
  tokenKey?: string;
  /** The token's record when authenticated with a token, for its package and scope limits. */
  token?: TokenRecord;
  /** Who this is for the access policy: roles, teams, admin, the token's limits. */
  principal: UserIdentity;
}

export interface UsersOptions {
  /** The access policy, for the roles and teams of each identity. */
  policy: Policy;
  /** `org:team` names a user belongs to beyond the config's `teams` (teams managed with `npm team`). */
  teamsOf?(user: string): readonly string[];
  /** Seals users' TOTP secrets at rest (see @fw/auth's `UserStoreOptions.tfaKey`). */
  tfaKey?: string;
  /** How long a verified token is trusted by the synchronous fast path, in ms. Revocations on this process apply at once. */
  tokenCacheMs?: number;
}

interface Verified {
  identity: Identity;
  record: TokenRecord;
  at: number;
  /** When the token stops being valid (`tokenExpiry`), worked out once. */
  expiresAt: number;
  /** The token has no CIDR allow-list: the client's address need not be looked at on each request. */
  anyAddress: boolean;
  /** Taken out of the cache (revoked, replaced by a newer check, cleared): connections' copies are void. */
  gone: boolean;
}

/** What a connection last sent in `Authorization` and what it was found to be. */
interface ConnectionToken {
  /**
   * The whole header (`Bearer <token>`) that carried this token when `verified` was found for it, the
   * one key of a set, so that the next request's header is compared with it by hash (see
   * `cachedBearer`), not character by character.
   */
  header: Set<string> | undefined;
  token: string;
  hash: string;
  /** The cache entry this token was last found in, while it holds (see `Verified.gone`). */
  verified: Verified | undefined;
}

/**
 * The tokens verified recently, by hash. An entry taken out — deleted, replaced, cleared — is marked
 * `gone`, so that a connection holding it directly (see `UsersService.cachedBearer`) stops using it at once.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, Verified>();

  get(hash: string): Verified | undefined {
    return this.entries.get(hash);
  }

  set(hash: string, entry: Verified): void {
    if (this.entries.size > 10_000) this.clear();
    this.delete(hash);
    this.entries.set(hash, entry);
  }

  delete(hash: string): void {
    const entry = this.entries.get(hash);
    if (!entry) return;
    entry.gone = true;
    this.entries.delete(hash);
  }

  /** Takes out the entries of the tokens of one user (by name, case-insensitively). */
  deleteUser(lower: string): void {
    for (const [hash, entry] of this.entries) {
      if (entry.record.user.toLowerCase() === lower) this.delete(hash);
    }
  }

  clear(): void {
    for (const entry of this.entries.values()) entry.gone = true;
    this.entries.clear();
  }
}

interface PasswordCheck {
  user: User;
  at: number;
}

/**
 * The registry's accounts and tokens: `@fw/auth`'s UserStore and TokenStore, plus the small
 * synchronous cache of verified tokens the packument fast path needs.
 */
export class UsersService {
  readonly store: UserStore;
  readonly tokens: TokenStore;
  private readonly verified = new VerifiedTokens();
  /**
   * The last token seen on each connection, its hash and its cache entry: an install sends the same
   * token on every request of a keep-alive connection, and SHA-256 was most of what a cached
   * authenticated read cost beyond an anonymous one (then the lookups behind it, see `cachedBearer`).
   * The token is held no longer than the connection that carries it (a weak key), and is compared only
   * with what arrives on that same connection — in constant time, since a proxy's connection carries
   * many clients' requests.
   */
  private readonly connectionTokens = new WeakMap<object, ConnectionToken>();
  private readonly tokenCacheMs: number;
  /**
   * Recent successful Basic-auth checks, keyed by an HMAC of the credentials under a key made at start
   * (the credentials themselves are not kept), and the checks in flight. Without them every request of
   * an install with `_auth` in its .npmrc would run scrypt (tens of ms and 32 MiB each, one or two at a
   * time: see @fw/auth's `passwordHashLoad`).
   */
  private readonly passwordChecks = new Map<string, PasswordCheck>();
  private readonly passwordChecking = new Map<string, Promise<User | null>>();
  private readonly passwordCheckKey = randomBytes(32);
  /**
   * Bumped by `forgetUser` and token revocations: a password or token check that started before it is
   * not remembered when it ends.
   */
  private accountsChanged = 0;
  /**
   * Token checks in flight, by token hash and client address: the requests that find a token's cached
   * check expired at once (every keep-alive connection of an install) share one storage read, and a
   * check refreshed ahead of expiry is made once.
   */
  private readonly resolving = new Map<string, Promise<Identity>>();

  private readonly policy: Policy;

  private readonly teamsOf: ((user: string) => readonly string[]) | undefined;

  constructor(storage: StorageDriver, options: UsersOptions) {
    this.policy = options.policy;
    this.teamsOf = options.teamsOf;
    this.tokenCacheMs = options.tokenCacheMs ?? 5_000;
    this.store = new UserStore(storage, options.tfaKey === undefined ? {} : { tfaKey: options.tfaKey });
    this.tokens = new TokenStore(storage, { users: this.store, cacheMs: this.tokenCacheMs });
  }

  getUser(name: string): Promise<User | null> {
    return this.store.get(name);
  }

  createUser(name: string, password: string, email?: string): Promise<User> {
    return this.store.create(name, password, email === undefined ? {} : { email });
  }

  /** The user when the password is right; `null` for a wrong password or unknown user (same time either way). */
  async authenticate(name: string, password: string): Promise<User | null> {
    const result = await this.store.authenticate(name, password);
    if (result.ok) return result.user;
    if (!result.wrongCredentials) {
      // The password was right but the account may not sign in (disabled, expired password): say why.
      throw new RegistryError(result.code, result.reason);
    }
    return null;
  }

  /**
   * The user behind Basic-auth credentials (the base64 `user:password` as sent), `null` when they are
   * wrong. `check` does the real check (password and back-off); a success is trusted for `tokenCacheMs`
   * like a token's, and concurrent requests with the same credentials share one check.
   */
  basicUser(credentials: string, check: () => Promise<User | null>): Promise<User | null> {
    const key = createHmac("sha256", this.passwordCheckKey).update(credentials).digest("base64");
    const hit = this.passwordChecks.get(key);
    if (hit && Date.now() - hit.at < this.tokenCacheMs) return Promise.resolve(hit.user);
    let pending = this.passwordChecking.get(key);
    if (!pending) {
      const started = this.accountsChanged;
      pending = check()
        .then((user) => {
          if (user && started === this.accountsChanged) {
            if (this.passwordChecks.size >= 10_000) this.passwordChecks.clear();
            this.passwordChecks.set(key, { user, at: Date.now() });
          } else this.passwordChecks.delete(key);
          return user;
        })
        .finally(() => {
          if (this.passwordChecking.get(key) === pending) this.passwordChecking.delete(key);
        });
      this.passwordChecking.set(key, pending);
    }
    return pending;
  }

  /** The identity of a password (basic auth) session. */
  sessionIdentity(user: User): Identity {
    return {
      name: user.name,
      ...(user.email !== undefined && { email: user.email }),
      readonly: false,
      principal: this.withOrgTeams(identityFor(this.policy, user)),
    };
  }

  private withOrgTeams(identity: UserIdentity): UserIdentity {
    const extra = this.teamsOf?.(identity.name) ?? [];
    if (extra.length === 0) return identity;
    return { ...identity, teams: [...new Set([...identity.teams, ...extra])] };
  }

  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<void> {
    await this.store.changePassword(name, oldPassword, newPassword);
    this.forgetUser(name);
  }

  /**
   * Drops what this process remembers of an account (its profile behind cached token checks), so a
   * change such as turning on 2FA applies to its next request here. Other processes see it within
   * `tokenCacheMs`.
   */
  forgetUser(name: string): void {
    // Checks in flight may predate the change: later requests start their own.
    this.tokensChanged();
    this.passwordChecking.clear();
    this.tokens.forgetUser(name);
    const lower = name.toLowerCase();
    this.verified.deleteUser(lower);
    for (const [key, entry] of this.passwordChecks) {
      if (entry.user.name.toLowerCase() === lower) this.passwordChecks.delete(key);
    }
  }

  createToken(user: string, options: CreateTokenOptions = {}): Promise<{ token: string; record: TokenRecord }> {
    return this.tokens.create(user, options);
  }

  listTokens(user: string): Promise<TokenRecord[]> {
    return this.tokens.list(user);
  }

  async revokeToken(user: string, keyOrPrefix: string): Promise<TokenRecord> {
    const record = await this.tokens.revoke(user, keyOrPrefix);
    this.tokensChanged();
    this.verified.delete(record.hash);
    return record;
  }

  /** Revokes the token itself (logout). Unknown tokens are not an error: the outcome is the same. */
  async revokeTokenValue(token: string): Promise<boolean> {
    const hash = sha256Hex(token);
    this.tokensChanged();
    this.verified.delete(hash);
    const revoked = (await this.tokens.revokeValue(token)) !== null;
    // A check that read the token while it was being revoked must not be remembered either.
    this.tokensChanged();
    this.verified.delete(hash);
    return revoked;
  }

  /** After a revocation: checks in flight may have read the token before it, so later requests start their own. */
  private tokensChanged(): void {
    this.accountsChanged++;
    this.resolving.clear();
  }

  /**
   * The identity behind a token when a recent verification is cached and still holds, without
   * waiting; `undefined` otherwise (the caller then takes `resolveToken`, which also produces the errors).
   */
  cachedIdentity(
    token: string,
    clientIp: string | undefined | (() => string | undefined),
    connection?: object,
    header?: string,
  ): Identity | undefined {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
    const known = this.connectionToken(token, connection);
    const hash = known ? known.hash : sha256Hex(token);
    const hit = this.verified.get(hash);
    const now = Date.now();
    if (!hit || now - hit.at >= this.tokenCacheMs) return undefined;
    if (hit.expiresAt <= now) return undefined;
    const ranges = hit.record.cidr_whitelist;
    const ip = ranges.length > 0 ? (typeof clientIp === "function" ? clientIp() : clientIp) : undefined;
    if (ranges.length > 0 && !ipAllowed(ip, ranges)) return undefined;
    // Checked again from storage in the background after half its time, so that a token in steady use
    // never expires under its requests (which would all wait for storage at once).
    if (now - hit.at >= this.tokenCacheMs / 2) this.refresh(hash, token, ip);
    else if (known) {
      // Only here is the header known to carry this very token, and the entry to hold for it.
      known.verified = hit;
      if (header !== undefined && !known.header?.has(header)) known.header = new Set([header]);
    }
    return hit.identity;
  }

  /**
   * `cachedIdentity` for a whole `Authorization` header (`undefined` unless it is a Bearer token). When
   * the connection's previous request carried the same header, its cache entry is used as it is while
   * it holds — not taken out, not due for a refresh, not expired, no address to check — with no parsing
   * of the header and no lookup by hash: that was half of what an authenticated cached read cost more
   * than an anonymous one (measured by two servers sharing a core, one under each load).
   */
  cachedBearer(
    authorization: string,
    clientIp: string | undefined | (() => string | undefined),
    connection?: object,
  ): Identity | undefined {
    if (connection) {
      const last = this.connectionTokens.get(connection);
      const hit = last?.verified;
      // A set's lookup hashes the whole header (V8's string hash, seeded at random per process) and
      // compares characters only when the hashes match: its time tells a wrong header nothing about how
      // much of it was right. `sameToken`'s loop cost more than the rest of this check.
      if (hit && !hit.gone && hit.anyAddress && last.header?.has(authorization)) {
        const now = Date.now();
        if (now - hit.at < this.tokenCacheMs / 2 && hit.expiresAt > now) return hit.identity;
      }
    }
    if (!authorization.startsWith("Bearer ")) return undefined;
    return this.cachedIdentity(authorization.slice(7).trim(), clientIp, connection, authorization);
  }

  private refresh(hash: string, token: string, clientIp: string | undefined): void {
    if (this.resolving.has(`${hash}\n${clientIp ?? ""}`)) return;
    this.resolveToken(token, clientIp, true).catch((error: unknown) => {
      // Refused now (revoked, expired, account disabled): the next request takes the full route, which
      // says why. A storage failure leaves the entry to expire in its time.
      if (error instanceof RegistryError) this.verified.delete(hash);
    });
  }

  /** The connection's record of this token (made now if it sent another one before), or `undefined` without a connection. */
  private connectionToken(token: string, connection: object | undefined): ConnectionToken | undefined {
    if (!connection) return undefined;
    const last = this.connectionTokens.get(connection);
    if (last && sameToken(last.token, token)) return last;
    const known: ConnectionToken = { header: undefined, token, hash: sha256Hex(token), verified: undefined };
    this.connectionTokens.set(connection, known);
    return known;
  }

  /** The identity behind a token, checked against storage (`fresh`: past the token store's own cache). */
  resolveToken(token: string, clientIp: string | undefined, fresh = false): Promise<Identity> {
    const key = `${sha256Hex(token)}\n${clientIp ?? ""}`;
    let pending = this.resolving.get(key);
    if (!pending) {
      const check = this.checkToken(token, clientIp, fresh).finally(() => {
        if (this.resolving.get(key) === check) this.resolving.delete(key);
      });
      pending = check;
      this.resolving.set(key, check);
    }
    return pending;
  }

  private async checkToken(token: string, clientIp: string | undefined, fresh: boolean): Promise<Identity> {
    const changes = this.accountsChanged;
    const decision = await this.tokens.verify(token, { ...(clientIp !== undefined && { clientIp }), fresh });
    if (!decision.ok) throw new RegistryError(decision.code, decision.reason);
    const { record } = decision;
    const email = decision.user.email;
    const identity: Identity = {
      name: record.user,
      ...(email !== undefined && { email }),
      readonly: isReadOnly(record),
      tokenKey: record.key,
      token: record,
      principal: this.withOrgTeams(identityFor(this.policy, decision.user, record)),
    };
    if (changes !== this.accountsChanged) return identity;
    // Aged from when the token and account were read, so a change made through another replica
    // applies here within `tokenCacheMs` however the check was made.
    const expiresAt = tokenExpiry(record)?.at ?? Number.POSITIVE_INFINITY;
    this.verified.set(record.hash, {
      identity,
      record,
      at: decision.readAt,
      expiresAt,
      anyAddress: record.cidr_whitelist.length === 0,
      gone: false,
    });
    return identity;
  }
}

/** Equality of two tokens in time that depends only on their length (which every fw token shares). */
function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return difference === 0;
}

/** npm 11's `--read-only` arrives as `packages_and_scopes_permission: "read-only"`, older npm as `readonly`. */
export function isReadOnly(record: TokenRecord): boolean {
  return record.readonly || record.packagesAndScopesPermission === "read-only";
}

/** Refuses a write with a token whose package/scope allow-list does not cover `pkg`. */
export function assertTokenCovers(identity: Identity, pkg: string): void {
  const record = identity.token;
  if (!record || tokenCoversPackage(record, pkg)) return;
  const allowed = [...(record.packages ?? []), ...(record.scopes ?? []).map((s) => `${s}/*`)].join(", ");
  throw new RegistryError(
    "E_FORBIDDEN",
    `this token (${record.prefix}…) is limited to ${allowed}; it cannot change "${pkg}": use a token that covers it`,
  );
}
