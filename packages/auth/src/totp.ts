import { createHmac, randomBytes } from "node:crypto";
import { Secret, TOTP } from "otpauth";
import { constantTimeEqual } from "./secrets.js";

/** How `npm profile enable-2fa` names the two modes: OTP at login and for writes, or at login only. */
export type TfaMode = "auth-and-writes" | "auth-only";
export const TFA_MODES: readonly TfaMode[] = ["auth-and-writes", "auth-only"];

/** RFC 6238 defaults every authenticator app understands: SHA-1, 6 digits, 30-second steps. */
const PERIOD_SECONDS = 30;
const DIGITS = 6;
/** One step either side (±30 s) absorbs clock drift between phone and server without widening guessing much. */
export const TOTP_WINDOW = 1;

/** A new random 160-bit TOTP secret (RFC 4226's recommended length), base32 as apps expect. */
export function generateTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

function totp(secret: string, account = "", issuer = "") {
  return new TOTP({
    issuer,
    label: account,
    secret: Secret.fromBase32(secret),
    algorithm: "SHA1",
    digits: DIGITS,
    period: PERIOD_SECONDS,
  });
}

/** The `otpauth://totp/...` URI an authenticator app scans (npm prints it as a QR code). */
export function totpUri(secret: string, account: string, issuer: string): string {
  return totp(secret, account, issuer).toString();
}

/** The TOTP time step `now` falls in. */
export function totpStep(now: number): number {
  return Math.floor(now / 1000 / PERIOD_SECONDS);
}

/** The code for a given time: for tests and for tools that act as an authenticator. */
export function generateTotp(secret: string, now: number): string {
  return totp(secret).generate({ timestamp: now });
}

/**
 * The time step a code belongs to when it is valid within ±`window` steps of `now` and later than
 * `afterStep` (the last step accepted for this user), else `null`. Refusing steps at or before the last
 * accepted one is the replay protection: each code works once, and older codes stop working too.
 */
export function matchTotp(
  secret: string,
  code: string,
  options: { now: number; afterStep?: number; window?: number },
): number | null {
  const cleaned = code.replace(/\s+/g, "");
  if (!/^\d{6}$/.test(cleaned)) return null;
  const window = options.window ?? TOTP_WINDOW;
  const current = totpStep(options.now);
  const generator = totp(secret);
  let found: number | null = null;
  // Check every candidate step (no early exit) so timing does not tell which step matched.
  for (let delta = -window; delta <= window; delta++) {
    const step = current + delta;
    const expected = generator.generate({ timestamp: step * PERIOD_SECONDS * 1000 });
    if (constantTimeEqual(expected, cleaned) && found === null) found = step;
  }
  if (found === null || (options.afterStep !== undefined && found <= options.afterStep)) return null;
  return found;
}

/**
 * Single-use recovery codes of 64 hex digits (256 bits), the shape npm's own recovery codes have: npm's
 * OTP prompt accepts only digits or exactly 64 hex digits (npm/cli lib/utils/read-user-info.js
 * readOTP), so any other shape could not be typed into `npm` when it asks. A fast keyed hash is enough
 * to store codes this long.
 */
export function generateRecoveryCodes(count = 10): string[] {
  return Array.from({ length: count }, () => randomBytes(32).toString("hex"));
}

/** Whether `code` (as normalised) has the shape of a recovery code, before any hash is compared. */
export function isRecoveryCodeShape(code: string): boolean {
  return /^[0-9a-f]{64}$/.test(code);
}

/** Case, spaces and dashes do not matter when a person types a recovery code back. */
export function normaliseRecoveryCode(code: string): string {
  return code.toLowerCase().replace(/[\s-]+/g, "");
}

/** HMAC-SHA-256 with a per-user salt, so equal codes of two users do not share a hash. */
export function hashRecoveryCode(salt: string, code: string): string {
  return createHmac("sha256", salt).update(normaliseRecoveryCode(code)).digest("hex");
}
