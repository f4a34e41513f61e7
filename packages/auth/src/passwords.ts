import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

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

function derive(password: string, salt: Buffer, keylen: number, params: { N: number; r: number; p: number }) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(password, salt, keylen, { ...params, maxmem: MAXMEM }, (error, key) =>
      error ? reject(error) : resolve(key),
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

/** Whether `password` matches `stored`. Malformed hashes never match (and never throw). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parse(stored);
  if (!parsed) return false;
  const actual = await derive(password, parsed.salt, parsed.key.length, parsed);
  return timingSafeEqual(actual, parsed.key);
}

/** Whether a hash that verified was made with weaker parameters than today's, so it should be replaced. */
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
