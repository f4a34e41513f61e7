import { hash, randomBytes, timingSafeEqual } from "node:crypto";

/** SHA-256 hex. Only for high-entropy secrets (tokens, recovery codes): a fast hash is safe for those. */
export function sha256Hex(value: string): string {
  return hash("sha256", value, "hex");
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
