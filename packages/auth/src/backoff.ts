import { casUpdate, isStorageError, type StorageDriver } from "@fw/storage-r2";
import { parseIp } from "./cidr.js";
import { sha256Hex } from "./secrets.js";
import { readJson } from "./storage.js";

interface BackoffDoc {
  failures: number;
  /** Time of the last failure, ms since the epoch. */
  last: number;
  /** No attempt is accepted before this time. */
  lockedUntil: number;
}

export interface BackoffOptions {
  /** Failed logins per account before delays start. Default 5. */
  freeAttemptsPerUser?: number;
  /** Failed logins per address before delays start; higher, since offices and CI share addresses. Default 20. */
  freeAttemptsPerIp?: number;
  /** First delay once the free attempts are used up; it doubles with each further failure. Default 1 s. */
  baseDelayMs?: number;
  /** Longest delay: bounded so an attacker cannot lock an account out for long. Default 15 minutes. */
  maxDelayMs?: number;
  /** Failures are forgotten after this long without one. Default 1 hour. */
  resetAfterMs?: number;
  /** Most addresses and accounts remembered in process. Default 10000. */
  cacheSize?: number;
  clock?: () => number;
}

export type BackoffVerdict = { allowed: true } | { allowed: false; retryAfterMs: number; reason: string };

export interface LoginAttempt {
  user?: string;
  ip?: string;
}

/**
 * IPv6 clients usually own a whole /64, so counting per address would let one client rotate through
 * billions of them: IPv6 addresses count per /64.
 */
export function addressBucket(ip: string): string {
  const address = parseIp(ip);
  if (!address) return `other:${ip.slice(0, 64)}`;
  if (address.kind() === "ipv4") return address.toString();
  return `${address.toNormalizedString().split(":").slice(0, 4).join(":")}::/64`;
}

/**
 * Exponential, bounded back-off after failed logins, per account and per address. The counters live in
 * storage and change by compare-and-swap, so every replica sees every failure; each process also keeps
 * the lock times it has seen, so a client hammering a locked account costs no storage read.
 */
export class LoginBackoff {
  private readonly options: Required<Omit<BackoffOptions, "clock">>;
  private readonly clock: () => number;
  private readonly locks = new Map<string, number>();

  constructor(
    private readonly storage: StorageDriver,
    options: BackoffOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.options = {
      freeAttemptsPerUser: options.freeAttemptsPerUser ?? 5,
      freeAttemptsPerIp: options.freeAttemptsPerIp ?? 20,
      baseDelayMs: options.baseDelayMs ?? 1_000,
      maxDelayMs: options.maxDelayMs ?? 15 * 60_000,
      resetAfterMs: options.resetAfterMs ?? 60 * 60_000,
      cacheSize: options.cacheSize ?? 10_000,
    };
  }

  private keys(attempt: LoginAttempt): { key: string; free: number; what: string }[] {
    const keys: { key: string; free: number; what: string }[] = [];
    // Hashed: storage keys stay valid whatever the input, and the listing does not show who is attacked.
    if (attempt.user) {
      keys.push({
        key: `auth/backoff/user/${sha256Hex(attempt.user.toLowerCase())}.json`,
        free: this.options.freeAttemptsPerUser,
        what: "this account",
      });
    }
    if (attempt.ip) {
      keys.push({
        key: `auth/backoff/ip/${sha256Hex(addressBucket(attempt.ip))}.json`,
        free: this.options.freeAttemptsPerIp,
        what: "this address",
      });
    }
    return keys;
  }

  /** The delay after `failures` failures with `free` free attempts. */
  delayFor(failures: number, free: number): number {
    if (failures < free) return 0;
    const exponent = Math.min(failures - free, 30);
    return Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** exponent);
  }

  private remember(key: string, lockedUntil: number): void {
    this.locks.delete(key);
    if (lockedUntil <= this.clock()) return;
    this.locks.set(key, lockedUntil);
    while (this.locks.size > this.options.cacheSize) {
      const oldest = this.locks.keys().next();
      if (oldest.done) break;
      this.locks.delete(oldest.value);
    }
  }

  private verdict(lockedUntil: number, what: string): BackoffVerdict {
    const retryAfterMs = lockedUntil - this.clock();
    if (retryAfterMs <= 0) return { allowed: true };
    return {
      allowed: false,
      retryAfterMs,
      reason: `too many failed logins for ${what}: try again in ${Math.ceil(retryAfterMs / 1000)} s`,
    };
  }

  /** Whether a login may be tried now. Call it before checking the password. */
  async check(attempt: LoginAttempt): Promise<BackoffVerdict> {
    const now = this.clock();
    const keys = this.keys(attempt);
    for (const { key, what } of keys) {
      const local = this.locks.get(key);
      if (local !== undefined && local > now) return this.verdict(local, what);
    }
    for (const { key, what } of keys) {
      const doc = await readJson<BackoffDoc>(this.storage, key);
      if (!doc) continue;
      this.remember(key, doc.lockedUntil);
      const verdict = this.verdict(doc.lockedUntil, what);
      if (!verdict.allowed) return verdict;
    }
    return { allowed: true };
  }

  /** Counts a failed login against the account and the address; returns the wait now imposed. */
  async recordFailure(attempt: LoginAttempt): Promise<BackoffVerdict> {
    let worst: BackoffVerdict = { allowed: true };
    for (const { key, free, what } of this.keys(attempt)) {
      const now = this.clock();
      const result = await casUpdate<BackoffDoc>(this.storage, key, (doc) => {
        const failures = doc && now - doc.last < this.options.resetAfterMs ? doc.failures + 1 : 1;
        return { failures, last: now, lockedUntil: now + this.delayFor(failures, free) };
      });
      const lockedUntil = result.value?.lockedUntil ?? now;
      this.remember(key, lockedUntil);
      const verdict = this.verdict(lockedUntil, what);
      if (!verdict.allowed && (worst.allowed || verdict.retryAfterMs > worst.retryAfterMs)) worst = verdict;
    }
    return worst;
  }

  /**
   * Clears the account's counter after a successful login. The address's counter stays: one account the
   * attacker owns must not wipe the record of guesses against others.
   */
  async recordSuccess(attempt: { user: string }): Promise<void> {
    for (const { key } of this.keys({ user: attempt.user })) {
      this.locks.delete(key);
      const existing = await this.storage.head(key);
      if (!existing) continue;
      try {
        await this.storage.delete(key, { ifMatch: existing.etag });
      } catch (error) {
        // Another failure was recorded meanwhile: it stands.
        if (!isStorageError(error, "E_PRECONDITION")) throw error;
      }
    }
  }

  /** The stored failure count of an account or address (for tests and `fw registry` tooling). */
  async failures(attempt: LoginAttempt): Promise<number> {
    const [first] = this.keys(attempt);
    if (!first) return 0;
    return (await readJson<BackoffDoc>(this.storage, first.key))?.failures ?? 0;
  }
}

export interface RateLimitOptions {
  /** Burst size: requests allowed at once. */
  capacity: number;
  /** Tokens added back per second. */
  refillPerSecond: number;
  /** Most keys remembered; the least recently used go first. Default 10000. */
  maxKeys?: number;
  clock?: () => number;
}

export type RateLimitVerdict = { allowed: boolean; remaining: number; retryAfterMs: number };

/**
 * A token bucket per key (client address, user name…) for auth endpoints. In process on purpose: a limit
 * per replica is enough to blunt floods, and the storage-backed `LoginBackoff` covers guessing.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly clock: () => number;
  private readonly maxKeys: number;

  constructor(private readonly options: RateLimitOptions) {
    if (!(options.capacity > 0) || !(options.refillPerSecond > 0)) {
      throw new RangeError("rate limiter capacity and refillPerSecond must be positive");
    }
    this.clock = options.clock ?? Date.now;
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  take(key: string, cost = 1): RateLimitVerdict {
    const now = this.clock();
    const { capacity, refillPerSecond } = this.options;
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now };
    const tokens = Math.min(capacity, bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * refillPerSecond);
    const allowed = tokens >= cost;
    const left = allowed ? tokens - cost : tokens;
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: left, at: now });
    while (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next();
      if (oldest.done) break;
      this.buckets.delete(oldest.value);
    }
    return {
      allowed,
      remaining: Math.floor(left),
      retryAfterMs: allowed ? 0 : Math.ceil(((cost - left) / refillPerSecond) * 1000),
    };
  }
}
