/**
 * What the vault keeps in storage, and where. Every file is JSON; none holds a value, a data key or a
 * master key in the clear.
 *
 *   <prefix>/@vault.json                    VaultFile: which master key wraps the vault's data keys
 *   <prefix>/<name>/@meta.json              MetaFile: latest version, deleted?, schedule (compare-and-swap)
 *   <prefix>/<name>/@v/<10-digit n>.json    VersionFile: one per version, create-only
 */
import type { Sealed } from "./crypto.js";

export const VAULT_FORMAT = "fw-secrets-vault/1";
export const META_FORMAT = "fw-secret/1";
export const VERSION_FORMAT = "fw-secret-version/1";
/** Names the algorithm in files: AES-256-GCM, 96-bit IV, 128-bit tag appended to the ciphertext. */
export const ALGORITHM = "A256GCM";

export type VersionOp = "set" | "rotate" | "delete";

/** A data key encrypted under a master key. */
export interface WrappedKey extends Sealed {
  alg: typeof ALGORITHM;
  masterKeyId: string;
}

/** A value encrypted under its own data key. */
export interface EncryptedValue extends Sealed {
  alg: typeof ALGORITHM;
  /** Random id of the data key, bound into both ciphertexts' associated data. */
  keyId: string;
  wrappedKey: WrappedKey;
}

export interface VersionFile {
  format: typeof VERSION_FORMAT;
  name: string;
  version: number;
  op: VersionOp;
  created: string;
  actor?: string;
  /** Absent on a deletion marker (`op: "delete"`). */
  value?: EncryptedValue;
}

export interface MetaFile {
  format: typeof META_FORMAT;
  name: string;
  /** The highest version number written (a value or a deletion marker). */
  latest: number;
  /** Whether the latest version is a deletion marker. */
  deleted: boolean;
  created: string;
  updated: string;
  /** When the latest value (not a deletion) was written: the start of its rotation period. */
  rotated?: string;
  /** Per-secret rotation schedule (`90d`), over the policy's. */
  rotateEvery?: string;
}

export interface VaultFile {
  format: typeof VAULT_FORMAT;
  masterKeyId: string;
  created: string;
  updated: string;
}

/** Associated data of a value's ciphertext: which secret, which version, which data key. */
export function valueContext(name: string, version: number, keyId: string): string {
  return `fw-secrets/1 value ${JSON.stringify([name, version, keyId])}`;
}

/** Associated data of a wrapped data key: the same, and which master key wraps it. */
export function dataKeyContext(name: string, version: number, keyId: string, masterKeyId: string): string {
  return `fw-secrets/1 data-key ${JSON.stringify([name, version, keyId, masterKeyId])}`;
}

export class Layout {
  constructor(readonly prefix: string) {}

  get vault(): string {
    return `${this.prefix}/@vault.json`;
  }

  meta(name: string): string {
    return `${this.prefix}/${name}/@meta.json`;
  }

  versions(name: string): string {
    return `${this.prefix}/${name}/@v/`;
  }

  version(name: string, version: number): string {
    return `${this.versions(name)}${String(version).padStart(10, "0")}.json`;
  }

  /** The secret name of a `@meta.json` key, or `undefined` for other keys. */
  nameOfMeta(key: string): string | undefined {
    const start = `${this.prefix}/`;
    const end = "/@meta.json";
    return key.startsWith(start) && key.endsWith(end) ? key.slice(start.length, -end.length) : undefined;
  }

  isVersion(key: string): boolean {
    return key.startsWith(`${this.prefix}/`) && /\/@v\/\d{10}\.json$/.test(key);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isSealed(value: unknown): value is Record<string, unknown> & Sealed {
  return isObject(value) && typeof value.iv === "string" && typeof value.ciphertext === "string";
}

function isWrappedKey(value: unknown): value is WrappedKey {
  return isSealed(value) && value.alg === ALGORITHM && typeof value.masterKeyId === "string";
}

function isEncryptedValue(value: unknown): value is EncryptedValue {
  return (
    isSealed(value) && value.alg === ALGORITHM && typeof value.keyId === "string" && isWrappedKey(value.wrappedKey)
  );
}

/** Whether `value` has a version file's shape (its cryptography is checked when it is opened). */
export function isVersionFile(value: unknown): value is VersionFile {
  if (!isObject(value) || value.format !== VERSION_FORMAT) return false;
  if (typeof value.name !== "string" || !Number.isSafeInteger(value.version) || typeof value.created !== "string")
    return false;
  if (value.op === "delete") return value.value === undefined;
  return (value.op === "set" || value.op === "rotate") && isEncryptedValue(value.value);
}

export function isMetaFile(value: unknown): value is MetaFile {
  return (
    isObject(value) &&
    value.format === META_FORMAT &&
    typeof value.name === "string" &&
    Number.isSafeInteger(value.latest) &&
    typeof value.deleted === "boolean"
  );
}

export function isVaultFile(value: unknown): value is VaultFile {
  return isObject(value) && value.format === VAULT_FORMAT && typeof value.masterKeyId === "string";
}
