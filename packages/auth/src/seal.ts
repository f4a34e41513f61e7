import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { AuthError } from "./errors.js";

const PREFIX = "fwenc1:";

/**
 * Encrypts small secrets kept in documents (TOTP secrets) with AES-256-GCM under a registry key, bound
 * to a context string (the account) so a sealed value copied to another account does not open.
 * Values written before a key was configured stay readable as they are.
 */
export class SecretSealer {
  private readonly key: Buffer;

  /** `key`: 32 bytes, or their base64/base64url/hex text. */
  constructor(key: Uint8Array | string) {
    const bytes = typeof key === "string" ? decodeKey(key) : Buffer.from(key);
    if (bytes.byteLength !== 32) {
      throw new AuthError(
        "E_BAD_REQUEST",
        "the encryption key must be 32 bytes (64 hex digits or 44 base64 characters)",
      );
    }
    this.key = bytes;
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(context, "utf8"));
    const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final(), cipher.getAuthTag()]);
    return `${PREFIX}${iv.toString("base64url")}:${body.toString("base64url")}`;
  }

  /** The plaintext of a sealed value; a value that was never sealed is returned as it is. */
  open(value: string, context: string): string {
    return openSealed(value, context, this);
  }

  /** @internal */
  decrypt(iv: Buffer, body: Buffer, context: string): string {
    const decipher = createDecipheriv("aes-256-gcm", this.key, iv);
    decipher.setAAD(Buffer.from(context, "utf8"));
    decipher.setAuthTag(body.subarray(body.byteLength - 16));
    return Buffer.concat([decipher.update(body.subarray(0, body.byteLength - 16)), decipher.final()]).toString("utf8");
  }
}

export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** Opens `value` with `sealer`; plain values pass through. A sealed value without the right key is an error. */
export function openSealed(value: string, context: string, sealer: SecretSealer | undefined): string {
  if (!isSealed(value)) return value;
  const [iv, body] = value.slice(PREFIX.length).split(":");
  if (!sealer || !iv || !body) {
    throw new AuthError(
      "E_UNAVAILABLE",
      "a stored second-factor secret is encrypted, and no encryption key is configured",
    );
  }
  try {
    return sealer.decrypt(Buffer.from(iv, "base64url"), Buffer.from(body, "base64url"), context);
  } catch {
    throw new AuthError(
      "E_UNAVAILABLE",
      "a stored second-factor secret cannot be decrypted: the configured encryption key is not the one it was sealed with",
    );
  }
}

function decodeKey(text: string): Buffer {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, "hex");
  return Buffer.from(trimmed, trimmed.includes("-") || trimmed.includes("_") ? "base64url" : "base64");
}
