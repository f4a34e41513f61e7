import { createHash, randomBytes, randomUUID, scrypt, timingSafeEqual } from "node:crypto";
import { casUpdate, isStorageError, type StorageDriver } from "@fw/storage-r2";
import ipaddr from "ipaddr.js";
import { RegistryError } from "../http/errors.js";

export interface User {
  name: string;
  email?: string;
  passwordHash: string;
  created: string;
  updated: string;
}

/** A token as stored: never the token itself, only its SHA-256. */
export interface TokenRecord {
  key: string;
  user: string;
  hash: string;
  /** First characters of the token, shown in listings so people can tell tokens apart. */
  prefix: string;
  /** What the token is for, shown by `npm token list`. */
  name?: string;
  readonly: boolean;
  cidr_whitelist: string[];
  created: string;
  /** When the token stops working (npm 11's `npm token create --expires <days>`). */
  expires?: string;
}

export interface Identity {
  name: string;
  readonly: boolean;
  /** The token's key when authenticated with a token; absent for passwords. */
  tokenKey?: string;
}

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
/** Recognisable prefix so secret scanners can find leaked fw tokens. */
export const TOKEN_PREFIX = "fw_";
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024, keylen: 32 };

function scryptAsync(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      SCRYPT.keylen,
      { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: SCRYPT.maxmem },
      (error, key) => (error ? reject(error) : resolve(key)),
    ),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

/** A hash of a random password, verified against when the user does not exist, so timing reveals nothing. */
const DUMMY_HASH = hashPassword(randomBytes(16).toString("hex"));

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, key] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !key) return false;
  const expected = Buffer.from(key, "base64");
  const actual = await new Promise<Buffer>((resolve, reject) =>
    scrypt(
      password,
      Buffer.from(salt, "base64"),
      expected.length,
      { N: Number(n), r: Number(r), p: Number(p), maxmem: SCRYPT.maxmem },
      (error, derived) => (error ? reject(error) : resolve(derived)),
    ),
  );
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

export function assertUsername(name: unknown): string {
  if (typeof name !== "string" || !USERNAME.test(name)) {
    throw new RegistryError(
      "E_BAD_REQUEST",
      "invalid user name: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
  }
  return name;
}

function assertPassword(password: unknown): string {
  if (typeof password !== "string" || password.length < 8 || password.length > 1024) {
    throw new RegistryError("E_BAD_REQUEST", "password must be 8 to 1024 characters long");
  }
  return password;
}

export function checkCidrs(list: unknown): string[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new RegistryError("E_BAD_REQUEST", "cidr_whitelist must be a list of CIDR ranges");
  return list.map((entry) => {
    if (typeof entry !== "string" || !ipaddr.isValidCIDR(entry)) {
      throw new RegistryError("E_BAD_REQUEST", `invalid CIDR range "${String(entry).slice(0, 60)}"`);
    }
    return entry;
  });
}

export function ipAllowed(ip: string | undefined, cidrs: string[]): boolean {
  if (cidrs.length === 0) return true;
  if (!ip || !ipaddr.isValid(ip)) return false;
  let address = ipaddr.parse(ip);
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    address = (address as ipaddr.IPv6).toIPv4Address();
  }
  return cidrs.some((cidr) => {
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return range.kind() === address.kind() && address.match([range, bits] as never);
  });
}

interface CachedToken {
  record: TokenRecord | null;
  at: number;
}

export interface UsersOptions {
  /** How long a token lookup is trusted before storage is asked again, in ms. Revocations on this process apply at once. */
  tokenCacheMs?: number;
}

/** Users, passwords and tokens, stored as documents in the registry's storage. */
export class UsersService {
  private readonly tokenCache = new Map<string, CachedToken>();
  private readonly tokenCacheMs: number;

  constructor(
    private readonly storage: StorageDriver,
    options: UsersOptions = {},
  ) {
    this.tokenCacheMs = options.tokenCacheMs ?? 5_000;
  }

  private userKey(name: string) {
    return `users/${name.toLowerCase()}/profile.json`;
  }

  private tokensKey(name: string) {
    return `users/${name.toLowerCase()}/tokens.json`;
  }

  async getUser(name: string): Promise<User | null> {
    if (!USERNAME.test(name)) return null;
    const object = await this.storage.get(this.userKey(name));
    return object ? (JSON.parse(new TextDecoder().decode(object.body)) as User) : null;
  }

  async createUser(name: string, password: string, email?: string): Promise<User> {
    assertUsername(name);
    assertPassword(password);
    const now = new Date().toISOString();
    const user: User = { name, passwordHash: await hashPassword(password), created: now, updated: now };
    if (typeof email === "string" && email.length <= 254) user.email = email;
    try {
      await this.storage.put(this.userKey(name), JSON.stringify(user), {
        ifNoneMatch: "*",
        contentType: "application/json",
      });
    } catch (error) {
      if (isStorageError(error, "E_PRECONDITION"))
        throw new RegistryError("E_CONFLICT", `user "${name}" already exists`);
      throw error;
    }
    return user;
  }

  /** The user when the password is right; `null` otherwise, in the same time whether or not the user exists. */
  async authenticate(name: string, password: string): Promise<User | null> {
    const user = USERNAME.test(name) ? await this.getUser(name) : null;
    const ok = await verifyPassword(password, user?.passwordHash ?? (await DUMMY_HASH));
    return user && ok ? user : null;
  }

  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<void> {
    assertPassword(newPassword);
    if (!(await this.authenticate(name, oldPassword))) {
      throw new RegistryError("E_UNAUTHORIZED", "the current password is not correct");
    }
    const passwordHash = await hashPassword(newPassword);
    await casUpdate<User>(this.storage, this.userKey(name), (user) => {
      if (!user) throw new RegistryError("E_NOT_FOUND", `user "${name}" not found`);
      return { ...user, passwordHash, updated: new Date().toISOString() };
    });
  }

  async createToken(
    user: string,
    options: { name?: string; readonly?: boolean; cidr_whitelist?: unknown; expiresInDays?: number } = {},
  ) {
    const cidrs = checkCidrs(options.cidr_whitelist);
    const token = `${TOKEN_PREFIX}${randomBytes(30).toString("base64url")}`;
    const record: TokenRecord = {
      key: randomUUID(),
      user,
      hash: hashToken(token),
      prefix: token.slice(0, 9),
      ...(options.name && { name: options.name }),
      readonly: options.readonly === true,
      cidr_whitelist: cidrs,
      created: new Date().toISOString(),
      ...(options.expiresInDays !== undefined && {
        expires: new Date(Date.now() + options.expiresInDays * 86_400_000).toISOString(),
      }),
    };
    await this.storage.put(`tokens/${record.hash}.json`, JSON.stringify(record), {
      ifNoneMatch: "*",
      contentType: "application/json",
    });
    await casUpdate<{ tokens: TokenRecord[] }>(this.storage, this.tokensKey(user), (doc) => ({
      tokens: [...(doc?.tokens ?? []), record],
    }));
    return { token, record };
  }

  async listTokens(user: string): Promise<TokenRecord[]> {
    const object = await this.storage.get(this.tokensKey(user));
    if (!object) return [];
    return (JSON.parse(new TextDecoder().decode(object.body)) as { tokens: TokenRecord[] }).tokens;
  }

  /** Revokes one of the user's tokens by key, or by an unambiguous prefix of the key as `npm token revoke` allows. */
  async revokeToken(user: string, keyOrPrefix: string): Promise<TokenRecord> {
    const tokens = await this.listTokens(user);
    const matches = tokens.filter(
      (t) => t.key === keyOrPrefix || (keyOrPrefix.length >= 6 && t.key.startsWith(keyOrPrefix)),
    );
    if (matches.length === 0) throw new RegistryError("E_NOT_FOUND", "no such token");
    if (matches.length > 1)
      throw new RegistryError("E_BAD_REQUEST", "token id prefix is ambiguous; give more characters");
    const record = matches[0] as TokenRecord;
    await this.removeRecord(record);
    return record;
  }

  /** Revokes the token itself (logout). Unknown tokens are not an error: the outcome is the same. */
  async revokeTokenValue(token: string): Promise<boolean> {
    const record = await this.lookup(hashToken(token), true);
    if (!record) return false;
    await this.removeRecord(record);
    return true;
  }

  private async removeRecord(record: TokenRecord): Promise<void> {
    await this.storage.delete(`tokens/${record.hash}.json`);
    this.tokenCache.set(record.hash, { record: null, at: Date.now() });
    await casUpdate<{ tokens: TokenRecord[] }>(this.storage, this.tokensKey(record.user), (doc) =>
      doc ? { tokens: doc.tokens.filter((t) => t.key !== record.key) } : undefined,
    );
  }

  private async lookup(hash: string, fresh = false): Promise<TokenRecord | null> {
    const cached = this.tokenCache.get(hash);
    if (!fresh && cached && Date.now() - cached.at < this.tokenCacheMs) return cached.record;
    const object = await this.storage.get(`tokens/${hash}.json`);
    const record = object ? (JSON.parse(new TextDecoder().decode(object.body)) as TokenRecord) : null;
    if (this.tokenCache.size > 10_000) this.tokenCache.clear();
    this.tokenCache.set(hash, { record, at: Date.now() });
    return record;
  }

  /**
   * The identity behind a bearer token. A SHA-256 and a map lookup on the hot path (storage only on a
   * cache miss): no KDF per request. Tokens are high-entropy, so a fast hash is safe here.
   */
  /**
   * The identity behind a token when the answer is already cached and positive, without waiting;
   * `undefined` otherwise (the caller then takes `resolveToken`, which also produces the errors).
   */
  cachedIdentity(token: string, clientIp: string | undefined): Identity | undefined {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
    const cached = this.tokenCache.get(hashToken(token));
    const record = cached?.record;
    if (!cached || !record || Date.now() - cached.at >= this.tokenCacheMs) return undefined;
    if (record.expires && Date.parse(record.expires) <= Date.now()) return undefined;
    if (!ipAllowed(clientIp, record.cidr_whitelist)) return undefined;
    return { name: record.user, readonly: record.readonly, tokenKey: record.key };
  }

  async resolveToken(token: string, clientIp: string | undefined): Promise<Identity> {
    if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) {
      throw new RegistryError("E_UNAUTHORIZED", "invalid token: log in again with `npm login`");
    }
    const record = await this.lookup(hashToken(token));
    if (!record)
      throw new RegistryError("E_UNAUTHORIZED", "this token is unknown or was revoked: log in again with `npm login`");
    if (record.expires && Date.parse(record.expires) <= Date.now()) {
      throw new RegistryError("E_UNAUTHORIZED", "this token has expired: log in again with `npm login`");
    }
    if (!ipAllowed(clientIp, record.cidr_whitelist)) {
      throw new RegistryError("E_FORBIDDEN", `this token may only be used from ${record.cidr_whitelist.join(", ")}`);
    }
    return { name: record.user, readonly: record.readonly, tokenKey: record.key };
  }
}
