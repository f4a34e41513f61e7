import { fromBase64url, hmacSha256, importAesKey, KEY_BYTES, randomBytes, toBase64url } from "./crypto.js";
import { SecretsError } from "./errors.js";

/** How a master key is written down in a provider: `fwmk1:` then 32 bytes in base64url. */
export const MASTER_KEY_PREFIX = "fwmk1:";
const ID_CONTEXT = "fw-secrets master key id v1";

/**
 * A 256-bit master key. It only wraps data keys; values are never encrypted with it directly. Its `id`
 * (`mk_` and 16 characters of an HMAC of a fixed string under the key) names it in stored files and
 * errors without revealing it. The raw key lives in a private field: it does not show in `console.log`,
 * `util.inspect` or `JSON.stringify`; only `toText()` hands it out, for a provider to store.
 */
export class MasterKey {
  readonly id: string;
  readonly #bytes: Uint8Array<ArrayBuffer>;
  #cryptoKey: Promise<CryptoKey> | undefined;

  private constructor(id: string, bytes: Uint8Array<ArrayBuffer>) {
    this.id = id;
    this.#bytes = bytes;
  }

  /** A new random key. */
  static generate(): Promise<MasterKey> {
    return MasterKey.fromBytes(randomBytes(KEY_BYTES));
  }

  static async fromBytes(bytes: Uint8Array<ArrayBuffer>): Promise<MasterKey> {
    if (bytes.byteLength !== KEY_BYTES) throw new RangeError(`a master key has ${KEY_BYTES} bytes`);
    const copy = new Uint8Array(bytes);
    const id = `mk_${toBase64url(await hmacSha256(copy, ID_CONTEXT)).slice(0, 16)}`;
    return new MasterKey(id, copy);
  }

  /**
   * Reads `fwmk1:<base64url>` as written by `toText()`. `origin` (e.g. "FW_SECRETS_MASTER_KEY") names
   * where the text came from in the error; the text itself is never repeated.
   */
  static async parse(text: string, origin: string): Promise<MasterKey> {
    const trimmed = text.trim();
    const bytes = trimmed.startsWith(MASTER_KEY_PREFIX) ? fromBase64url(trimmed.slice(MASTER_KEY_PREFIX.length)) : null;
    if (!bytes || bytes.byteLength !== KEY_BYTES) {
      throw new SecretsError(
        "E_BAD_REQUEST",
        `${origin} does not hold an fw master key (expected "${MASTER_KEY_PREFIX}" and 43 base64url characters; \`fw secrets init\` makes one)`,
      );
    }
    return MasterKey.fromBytes(bytes);
  }

  /** The key as text, for a provider to keep. Whoever holds it can read every secret of the vault. */
  toText(): string {
    return `${MASTER_KEY_PREFIX}${toBase64url(this.#bytes)}`;
  }

  /** The key for Web Crypto, imported once and non-extractable. */
  cryptoKey(): Promise<CryptoKey> {
    this.#cryptoKey ??= importAesKey(this.#bytes);
    return this.#cryptoKey;
  }

  toJSON(): { id: string } {
    return { id: this.id };
  }

  toString(): string {
    return `MasterKey(${this.id})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/** The keys a vault may use: `current` wraps new data keys; `previous` ones still unwrap old ones during a rotation. */
export interface MasterKeyRing {
  current: MasterKey;
  previous: readonly MasterKey[];
  /** Where they came from, for messages: "the OS keychain (…)", "FW_SECRETS_MASTER_KEY", "key file …". */
  source: string;
}

/** The key of `ring` with this id, if loaded. */
export function keyById(ring: MasterKeyRing, id: string): MasterKey | undefined {
  return ring.current.id === id ? ring.current : ring.previous.find((key) => key.id === id);
}
