/**
 * AES-256-GCM through Web Crypto, so the vault's core runs wherever `crypto.subtle` does (Node, Bun,
 * workerd). Every encryption takes a fresh 96-bit random IV and associated data that names what the
 * ciphertext is, so a ciphertext moved to another place fails to decrypt.
 */

/** An AES-GCM ciphertext: the IV and the ciphertext with its 128-bit tag appended, both base64url. */
export interface Sealed {
  iv: string;
  ciphertext: string;
}

const encoder = new TextEncoder();
const IV_BYTES = 12;
export const KEY_BYTES = 32;

export function randomBytes(length: number): Uint8Array<ArrayBuffer> {
  return crypto.getRandomValues(new Uint8Array(length));
}

export function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes base64url (padding optional); `null` for anything else, so callers can say what was wrong. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A non-extractable AES-256-GCM key: once imported, the raw bytes cannot be read back out of it. */
export function importAesKey(bytes: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  if (bytes.byteLength !== KEY_BYTES) throw new RangeError(`an AES-256 key has ${KEY_BYTES} bytes`);
  return crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

export async function seal(key: CryptoKey, plaintext: Uint8Array<ArrayBuffer>, aad: string): Promise<Sealed> {
  const iv = randomBytes(IV_BYTES);
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: encoder.encode(aad), tagLength: 128 },
    key,
    plaintext,
  );
  return { iv: toBase64url(iv), ciphertext: toBase64url(new Uint8Array(ciphertext)) };
}

/**
 * Decrypts and authenticates; `null` when the IV or ciphertext is malformed or fails authentication
 * (wrong key, altered bytes, other associated data). The caller turns that into an error that says which.
 */
export async function unseal(key: CryptoKey, sealed: Sealed, aad: string): Promise<Uint8Array<ArrayBuffer> | null> {
  const iv = typeof sealed.iv === "string" ? fromBase64url(sealed.iv) : null;
  const ciphertext = typeof sealed.ciphertext === "string" ? fromBase64url(sealed.ciphertext) : null;
  if (!iv || iv.byteLength !== IV_BYTES || !ciphertext || ciphertext.byteLength < 16) return null;
  try {
    const plaintext = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: encoder.encode(aad), tagLength: 128 },
      key,
      ciphertext,
    );
    return new Uint8Array(plaintext);
  } catch {
    return null;
  }
}

/** HMAC-SHA-256 of `message` under `keyBytes`. */
export async function hmacSha256(keyBytes: Uint8Array<ArrayBuffer>, message: string): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(message)));
}
