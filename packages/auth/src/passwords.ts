import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import pLimit from "p-limit";
import { AuthError } from "./errors.js";

/**
 * scrypt parameters for new hashes: N=2^15, r=8, p=1 (32 MiB, tens of ms) — OWASP's recommended
 * minimum for scrypt. Stored hashes carry their own parameters, so raising these later only affects
 * new hashes; `needsRehash` tells when to upgrade one at the next successful login.
 */
export const SCRYPT_PARAMS = { N: 2 ** 15, r: 8, p: 1, keylen: 32 } as const;
const MAXMEM = 64 * 1024 * 1024;
/** Stored parameters above these are refused rather than run, so a tampered profile cannot stall the server. */
const LIMITS = { N: 2 ** 20, r: 16, p: 4 };

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 1024;

interface Parsed {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/**
 * scrypt derivations that may run at once; the others wait their turn. Each holds 128·N·r bytes (32 MiB
 * with today's parameters) and a thread of libuv's pool, which file I/O and zlib share (4 threads by
 * default): unbounded, eight concurrent logins measured ~100 MB more peak RSS than one and left no
 * thread for storage reads meanwhile. Half the CPUs, at most two: on small machines logins queue
 * (tens of ms each) instead of the rest of the server.
 */
const kdf = pLimit(Math.max(1, Math.min(2, Math.floor(availableParallelism() / 2))));

/**
 * Derivations that may wait per running one before more are refused. At tens to hundreds of ms each, a
 * longer queue would outlast the clients waiting on it (their derivations would still run after they
 * gave up): refused ones get `E_UNAVAILABLE` with a retry time, which the registry answers as a 503.
 */
const WAITING_PER_SLOT = 32;
let maxWaiting: number | undefined;

export interface PasswordHashLimits {
  /** Derivations that may run at once (default: half the CPUs, 1 or 2). */
  concurrency?: number;
  /** Derivations that may wait; more are refused (default: 32 per `concurrency`). */
  maxWaiting?: number;
}

/** Changes this process's limits on password derivations (see `passwordHashLoad`). */
export function setPasswordHashLimits(limits: PasswordHashLimits): void {
  if (limits.maxWaiting !== undefined && !(Number.isInteger(limits.maxWaiting) && limits.maxWaiting >= 0)) {
    throw new TypeError("maxWaiting must be an integer of 0 or more");
  }
  if (limits.concurrency !== undefined) kdf.concurrency = limits.concurrency;
  if ("maxWaiting" in limits) maxWaiting = limits.maxWaiting;
}

/** Password derivations running and waiting now, and the limits: for metrics and tests. */
export function passwordHashLoad(): { running: number; waiting: number } & Required<PasswordHashLimits> {
  return {
    running: kdf.activeCount,
    waiting: kdf.pendingCount,
    concurrency: kdf.concurrency,
    maxWaiting: maxWaiting ?? kdf.concurrency * WAITING_PER_SLOT,
  };
}

function derive(password: string, salt: Buffer, keylen: number, params: { N: number; r: number; p: number }) {
  // Refused only when it would have to wait and the waiting places are taken.
  if (kdf.activeCount >= kdf.concurrency && kdf.pendingCount >= (maxWaiting ?? kdf.concurrency * WAITING_PER_SLOT)) {
    return Promise.reject(
      new AuthError("E_UNAVAILABLE", "too many password checks are waiting: retry in a few seconds", {
        retryAfterMs: 5_000,
      }),
    );
  }
  return kdf(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(password, salt, keylen, { ...params, maxmem: MAXMEM }, (error, key) =>
          error ? reject(error) : resolve(key),
        ),
      ),
  );
}

/** `scrypt$N$r$p$salt$hash` (base64 salt and hash): the format `apps/server` already stores. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const { N, r, p, keylen } = SCRYPT_PARAMS;
  const key = await derive(password, salt, keylen, { N, r, p });
  return `scrypt$${N}$${r}$${p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

function parse(stored: string): Parsed | null {
  const [scheme, n, r, p, salt, key, ...rest] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !key || rest.length > 0) return null;
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const valid =
    Number.isInteger(params.N) &&
    params.N > 1 &&
    (params.N & (params.N - 1)) === 0 &&
    params.N <= LIMITS.N &&
    Number.isInteger(params.r) &&
    params.r >= 1 &&
    params.r <= LIMITS.r &&
    Number.isInteger(params.p) &&
    params.p >= 1 &&
    params.p <= LIMITS.p;
  if (!valid) return null;
  const parsed = { ...params, salt: Buffer.from(salt, "base64"), key: Buffer.from(key, "base64") };
  return parsed.key.length >= 16 && parsed.key.length <= 64 ? parsed : null;
}

/**
 * How a stored hash was made. `scrypt` is what fw writes; the others are the htpasswd formats an
 * imported Verdaccio (or Apache) user may still carry — bcrypt, `{SHA}` (base64 SHA-1), Apache's
 * `$apr1$` and the `$1$` MD5-crypt, and traditional DES crypt(3) — until their first login replaces them.
 */
export type PasswordScheme = "scrypt" | "bcrypt" | "sha1" | "apr1" | "md5-crypt" | "des-crypt";

/** bcrypt costs above this are refused rather than run: each step doubles the work (15 ≈ 2 s in JavaScript). */
export const BCRYPT_MAX_COST = 15;

const BCRYPT = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const SHA1 = /^\{SHA\}[A-Za-z0-9+/]{27}=$/;
const MD5_CRYPT = /^\$(apr1|1)\$[./0-9A-Za-z]{1,8}\$[./0-9A-Za-z]{22}$/;
// Verdaccio salts DES hashes with base64, so the two salt characters may be "+" as well.
const DES_CRYPT = /^[./0-9A-Za-z+]{2}[./0-9A-Za-z]{11}$/;

/** The scheme of a stored hash fw can verify, or why it cannot (an unknown format, or unsafe parameters). */
export function identifyHash(stored: string): { scheme: PasswordScheme } | { scheme: null; reason: string } {
  if (stored.startsWith("scrypt$")) {
    return parse(stored)
      ? { scheme: "scrypt" }
      : { scheme: null, reason: "malformed scrypt hash or parameters out of range" };
  }
  const bcryptMatch = BCRYPT.exec(stored);
  if (bcryptMatch) {
    const cost = Number(bcryptMatch[1]);
    return cost >= 4 && cost <= BCRYPT_MAX_COST
      ? { scheme: "bcrypt" }
      : { scheme: null, reason: `bcrypt cost ${cost} is outside 4–${BCRYPT_MAX_COST}` };
  }
  if (SHA1.test(stored)) return { scheme: "sha1" };
  const md5Match = MD5_CRYPT.exec(stored);
  if (md5Match) return { scheme: md5Match[1] === "apr1" ? "apr1" : "md5-crypt" };
  if (DES_CRYPT.test(stored)) return { scheme: "des-crypt" };
  if (stored.startsWith("{PLAIN}"))
    return { scheme: null, reason: "a plain-text password is never stored; hash it first" };
  const prefix = /^(\$[^$]{1,10}\$|\{[A-Z0-9-]{1,10}\})/.exec(stored)?.[0];
  return { scheme: null, reason: prefix ? `unsupported hash type ${prefix}` : "unrecognised hash format" };
}

/**
 * CommonJS libraries, loaded when a hash needs them. Both export one function (key, salt) → hash;
 * apache-md5's declarations describe an ES default export it does not have, and unix-crypt-td-js has none.
 */
const require = createRequire(import.meta.url);
type Crypt = (password: string, salt: string) => string;
let aprMd5: Crypt | undefined;
let desCrypt: Crypt | undefined;

/** Equal-length strings compared in constant time; different lengths are simply unequal. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

async function verifyLegacy(password: string, stored: string, scheme: Exclude<PasswordScheme, "scrypt">) {
  switch (scheme) {
    case "bcrypt": {
      const { default: bcrypt } = await import("bcryptjs");
      return bcrypt.compare(password, stored);
    }
    case "sha1": {
      const actual = createHash("sha1").update(password, "utf8").digest();
      const expected = Buffer.from(stored.slice("{SHA}".length), "base64");
      return expected.length === actual.length && timingSafeEqual(actual, expected);
    }
    case "apr1":
    case "md5-crypt":
      aprMd5 ??= require("apache-md5") as Crypt;
      return sameText(aprMd5(password, stored), stored);
    case "des-crypt":
      desCrypt ??= require("unix-crypt-td-js") as Crypt;
      return sameText(desCrypt(password, stored.slice(0, 2)), stored);
  }
}

/** A fixed salt for the padding derivation below; its output is thrown away. */
const PADDING_SALT = Buffer.alloc(16);

/**
 * Whether `password` matches `stored` (any scheme `identifyHash` accepts). Malformed hashes never
 * match (and never throw); when too many derivations are already waiting (`passwordHashLoad`), it
 * rejects with an `AuthError` `E_UNAVAILABLE` carrying `retryAfterMs`, as `hashPassword` does. Legacy
 * hashes are much cheaper than scrypt, so checking one also runs an scrypt derivation: an account's
 * answer then takes no less time than an unknown user's, whose password is checked against a dummy
 * scrypt hash.
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const { scheme } = identifyHash(stored);
  if (scheme === null) return false;
  if (scheme !== "scrypt") {
    const { N, r, p, keylen } = SCRYPT_PARAMS;
    const [matches] = await Promise.all([
      verifyLegacy(password, stored, scheme).catch(() => false),
      derive(password, PADDING_SALT, keylen, { N, r, p }),
    ]);
    return matches;
  }
  const parsed = parse(stored) as Parsed;
  const actual = await derive(password, parsed.salt, parsed.key.length, parsed);
  return timingSafeEqual(actual, parsed.key);
}

/**
 * Whether a hash that verified should be replaced by a new scrypt hash of the same password: legacy
 * (imported) hashes always, scrypt ones made with weaker parameters than today's.
 */
export function needsRehash(stored: string): boolean {
  const parsed = parse(stored);
  if (!parsed) return true;
  return parsed.N < SCRYPT_PARAMS.N || parsed.r < SCRYPT_PARAMS.r || parsed.key.length < SCRYPT_PARAMS.keylen;
}

/** The reason a new password is not acceptable, or `undefined`. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== "string") return "password must be a string";
  if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    return `password must be ${PASSWORD_MIN_LENGTH} to ${PASSWORD_MAX_LENGTH} characters long`;
  }
  return undefined;
}
