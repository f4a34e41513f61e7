import { hash, randomBytes, timingSafeEqual } from "node:crypto";

/** Bun's native SHA-256, when running on Bun: its `node:crypto` hash took ~4 % of a cached authenticated read. */
const bunSha256 = (globalThis as { Bun?: { SHA256?: { hash(input: string, encoding: "hex"): string } } }).Bun?.SHA256;

/**
 * SHA-256 hex. Only for high-entropy secrets (tokens, recovery codes): a fast hash is safe for those.
 * Every authenticated request hashes its token once, to look it up.
 */
export function sha256Hex(value: string): string {
  // crypto.hash is the one-shot form, a third of createHash()'s cost.
  return bunSha256 ? bunSha256.hash(value, "hex") : hash("sha256", value, "hex");
}

/**
 * Compares two strings without leaking where they differ. Both are hashed first so that their lengths
 * do not leak either (timingSafeEqual needs equal lengths).
 */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = hash("sha256", a, "buffer");
  const y = hash("sha256", b, "buffer");
  return timingSafeEqual(x, y);
}

/** Random base64url text from `bytes` random bytes. */
export function randomText(bytes: number): string {
  return randomBytes(bytes).toString("base64url");
}
