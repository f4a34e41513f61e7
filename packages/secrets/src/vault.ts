import { type AuditAction, type AuditDetail, AuditLog, type Identity, type UserIdentity } from "@fw/auth";
import { casUpdate, isStorageError, type StorageDriver } from "@fw/storage-r2";
import { importAesKey, KEY_BYTES, randomBytes, seal, toBase64url, unseal } from "./crypto.js";
import { SecretsError } from "./errors.js";
import {
  ALGORITHM,
  dataKeyContext,
  type EncryptedValue,
  isMetaFile,
  isVaultFile,
  isVersionFile,
  Layout,
  META_FORMAT,
  type MetaFile,
  VAULT_FORMAT,
  type VaultFile,
  VERSION_FORMAT,
  type VersionFile,
  type VersionOp,
  valueContext,
} from "./format.js";
import { renderVersionGraph } from "./graph.js";
import { keyById, MasterKey, type MasterKeyRing } from "./master-key.js";
import { parseDuration, validateSecretName } from "./names.js";
import { ADMINS_ONLY, authorizeSecret, rotationFor, type SecretAction, type SecretsPolicy } from "./policy.js";
import { defaultProviders, loadMasterKeys, type MasterKeyProvider } from "./providers/index.js";

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const textDecoder = new TextDecoder();

/** Largest value accepted, in UTF-8 bytes: secrets are credentials and keys, not files. */
export const MAX_VALUE_BYTES = 64 * 1024;
const DAY_MS = 86_400_000;

export interface SecretsVaultOptions {
  /** Where the vault lives (usually the registry's own storage); everything goes under `prefix`. */
  storage: StorageDriver;
  /**
   * The master keys: a ring already loaded, or providers to load it from on first use of a value.
   * Default: `defaultProviders()` (the OS keychain, then FW_SECRETS_MASTER_KEY, then the key file).
   * Listing, versions and `due` never need it.
   */
  masterKeys?: MasterKeyRing | readonly MasterKeyProvider[];
  /** Who may read and write what. Default: only admins. */
  policy?: SecretsPolicy;
  /** The caller when an operation names none (`as`). Default: an admin called "operator", for local tools. */
  identity?: Identity;
  /** Where reads and writes are recorded. Default: an `AuditLog` on `storage`; `false` records nothing. */
  audit?: AuditLog | false;
  /**
   * How long `getSecret` keeps a decrypted value in memory, in ms. Default 60 000; 0 turns the cache off.
   * Longer saves storage reads and decryptions; shorter notices other processes' rotations sooner.
   */
  cacheTtlMs?: number;
  /** Storage key prefix. Default `"secrets"`. */
  prefix?: string;
  clock?: () => number;
}

export interface CallOptions {
  /** Act for this caller: the policy decides and the audit trail names them. Default: the vault's identity. */
  as?: Identity;
}

/** One version of a secret, as `getSecretVersions` lists it. Never the value. */
export interface SecretVersion {
  name: string;
  version: number;
  op: VersionOp;
  created: string;
  actor?: string;
  /** The master key its data key is wrapped with; absent on deletion markers. */
  masterKeyId?: string;
  /** Whether `getSecret` without a version returns this one. */
  current: boolean;
}

export interface SecretSummary {
  name: string;
  /** Highest version written. */
  latest: number;
  deleted: boolean;
  created: string;
  updated: string;
  rotated?: string;
  rotateEvery?: string;
}

export interface DueSecret {
  name: string;
  version: number;
  rotated: string;
  rotateEvery: string;
  /** Where the schedule comes from: the secret's own, or a policy rule. */
  schedule: "secret" | "policy";
  due: string;
  overdue: boolean;
}

export interface DeleteResult {
  name: string;
  /** The deletion marker's version; absent after a purge. */
  version?: number;
  purged: boolean;
  /** Objects removed by a purge. */
  removed?: number;
}

export interface MasterKeyRotation {
  from: string;
  to: string;
  /** Data keys re-wrapped under the new master key. */
  rewrapped: number;
  /** Where the new key is kept. */
  source: string;
  /** What the operator still has to do (e.g. unset FW_SECRETS_PREVIOUS_MASTER_KEY). */
  note?: string;
}

/** An admin identity for local tools (the CLI): whoever holds the master key can read everything anyway. */
export function operatorIdentity(name = "operator"): UserIdentity {
  return { kind: "user", name, admin: true, roles: ["admin"], teams: [], tfaMode: null, via: "session" };
}

/** A random value for generated secrets: `bytes` random bytes in base64url (default 32: 43 characters). */
export function generateSecretValue(bytes = 32): string {
  if (!Number.isSafeInteger(bytes) || bytes < 16 || bytes > 1024) {
    throw new SecretsError("E_BAD_REQUEST", "a generated value has 16 to 1024 random bytes");
  }
  return toBase64url(randomBytes(bytes));
}

type SecretAuditAction = Extract<AuditAction, `secret.${string}`>;

const AUDIT_ACTIONS: Record<VersionOp, SecretAuditAction> = {
  set: "secret.set",
  rotate: "secret.rotate",
  delete: "secret.delete",
};

interface Observed {
  version: number;
  op: VersionOp;
  created: string;
}

interface CacheEntry {
  value: string;
  version: number;
  expires: number;
}

/**
 * A versioned, envelope-encrypted secrets vault on any `StorageDriver`. Each version's value is
 * encrypted with its own random data key (AES-256-GCM, the secret's name, the version and the data key's
 * id bound as associated data); the data key is wrapped by the master key, which never leaves its
 * provider's process memory. Versions are create-only objects, so concurrent writers each land their own
 * version; a small index per secret is kept with compare-and-swap.
 */
export class SecretsVault {
  private readonly storage: StorageDriver;
  private readonly layout: Layout;
  private readonly policy: SecretsPolicy;
  private readonly identity: Identity;
  private readonly audit: AuditLog | false;
  private readonly cacheTtlMs: number;
  private readonly clock: () => number;
  private readonly source: MasterKeyRing | readonly MasterKeyProvider[];
  private ring: Promise<MasterKeyRing & { provider?: MasterKeyProvider }> | undefined;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(options: SecretsVaultOptions) {
    this.storage = options.storage;
    this.layout = new Layout(options.prefix ?? "secrets");
    this.policy = options.policy ?? ADMINS_ONLY;
    this.identity = options.identity ?? operatorIdentity();
    this.cacheTtlMs = options.cacheTtlMs ?? 60_000;
    this.clock = options.clock ?? Date.now;
    this.source = options.masterKeys ?? defaultProviders();
    this.audit = options.audit === undefined ? new AuditLog(options.storage) : options.audit;
  }

  /**
   * Records the vault's master key in storage (`@vault.json`) unless it is there already, and checks
   * that the loaded key is the vault's. Writes do this by themselves; `fw secrets init` calls it to say so early.
   */
  async init(): Promise<{ masterKeyId: string; source: string; created: boolean }> {
    const ring = await this.keys();
    const created = await this.checkVaultKey(ring);
    return { masterKeyId: ring.current.id, source: ring.source, created };
  }

  /** Creates a secret: its version 1, or, after a deletion, the next version. A live secret is `E_CONFLICT`: rotate it. */
  async setSecret(
    name: string,
    value: string,
    options: CallOptions & { rotateEvery?: string } = {},
  ): Promise<SecretVersion> {
    return this.append(name, "set", value, options);
  }

  /** Appends a new version with a new value; the old ones stay readable by number. */
  async rotateSecret(
    name: string,
    value: string,
    options: CallOptions & { rotateEvery?: string } = {},
  ): Promise<SecretVersion> {
    return this.append(name, "rotate", value, options);
  }

  /**
   * The latest value (or `version`'s). From the in-memory cache while fresh, else from storage. Every
   * call is recorded in the audit trail, cache hits included.
   */
  async getSecret(name: string, options: CallOptions & { version?: number } = {}): Promise<string> {
    return (await this.readSecret(name, options)).value;
  }

  /** Like `getSecret`, with the version number the value belongs to. */
  async readSecret(
    name: string,
    options: CallOptions & { version?: number } = {},
  ): Promise<{ name: string; version: number; value: string }> {
    validateSecretName(name);
    const who = options.as ?? this.identity;
    await this.authorize(who, "read", name, "secret.read");
    const requested = options.version;
    if (requested !== undefined && (!Number.isSafeInteger(requested) || requested < 1)) {
      throw new SecretsError("E_BAD_REQUEST", `version ${requested} of ${name}: versions are whole numbers from 1`);
    }
    const cacheKey = `${name}\0${requested ?? "latest"}`;
    const cached = this.cache.get(cacheKey);
    if (cached && cached.expires > this.clock()) {
      await this.record("secret.read", who, name, cached.version, { cached: true });
      return { name, version: cached.version, value: cached.value };
    }
    let version = requested;
    if (version === undefined) {
      const meta = await this.readMeta(name);
      if (!meta) throw new SecretsError("E_NOT_FOUND", `no secret named ${name}`, { secret: name });
      if (meta.deleted) {
        throw new SecretsError(
          "E_NOT_FOUND",
          `secret ${name} was deleted (v${meta.latest}); its history is kept: fw secrets versions ${name}`,
          { secret: name, version: meta.latest },
        );
      }
      version = meta.latest;
    }
    const file = await this.readVersion(name, version);
    if (!file) {
      throw new SecretsError("E_NOT_FOUND", `secret ${name} has no version ${version}`, { secret: name, version });
    }
    const value = await this.open(name, version, file);
    if (this.cacheTtlMs > 0) this.cache.set(cacheKey, { value, version, expires: this.clock() + this.cacheTtlMs });
    await this.record("secret.read", who, name, version);
    return { name, version, value };
  }

  /** Every version of a secret, oldest first, from the version files themselves. Never the values. */
  async getSecretVersions(name: string, options: CallOptions = {}): Promise<SecretVersion[]> {
    validateSecretName(name);
    await this.authorize(options.as ?? this.identity, "read", name, false);
    const files: VersionFile[] = [];
    for await (const key of this.keysUnder(this.layout.versions(name))) {
      const object = await this.storage.get(key);
      if (!object) continue;
      const file = parseJson(object.body);
      const number = Number(key.slice(key.lastIndexOf("/") + 1, -".json".length));
      if (!isVersionFile(file)) {
        throw new SecretsError("E_INTEGRITY", `the file of ${name} v${number} is not a secret version file`, {
          secret: name,
          version: number,
        });
      }
      files.push({ ...file, version: number });
    }
    if (files.length === 0) throw new SecretsError("E_NOT_FOUND", `no secret named ${name}`, { secret: name });
    const last = files.at(-1) as VersionFile;
    return files.map((file) => ({
      name,
      version: file.version,
      op: file.op,
      created: file.created,
      ...(file.actor !== undefined && { actor: file.actor }),
      ...(file.value && { masterKeyId: file.value.wrappedKey.masterKeyId }),
      current: file === last && file.op !== "delete",
    }));
  }

  /** Secrets the caller may read, by name; deleted ones only with `includeDeleted`. */
  async listSecrets(
    options: CallOptions & { prefix?: string; includeDeleted?: boolean } = {},
  ): Promise<SecretSummary[]> {
    const who = options.as ?? this.identity;
    const summaries: SecretSummary[] = [];
    const start = options.prefix ? `${this.layout.prefix}/${options.prefix}` : `${this.layout.prefix}/`;
    for await (const key of this.keysUnder(start)) {
      const name = this.layout.nameOfMeta(key);
      if (name === undefined || !authorizeSecret(this.policy, who, "read", name).allowed) continue;
      const meta = await this.readMeta(name);
      if (!meta || (meta.deleted && !options.includeDeleted)) continue;
      summaries.push({
        name,
        latest: meta.latest,
        deleted: meta.deleted,
        created: meta.created,
        updated: meta.updated,
        ...(meta.rotated !== undefined && { rotated: meta.rotated }),
        ...(meta.rotateEvery !== undefined && { rotateEvery: meta.rotateEvery }),
      });
    }
    return summaries;
  }

  /**
   * Deletes a secret by appending a deletion marker: reads fail, the history stays (and `setSecret`
   * brings the name back as a new version). With `purge`, every version and the index are destroyed.
   */
  async deleteSecret(name: string, options: CallOptions & { purge?: boolean } = {}): Promise<DeleteResult> {
    validateSecretName(name);
    const who = options.as ?? this.identity;
    if (!options.purge) {
      const marker = await this.append(name, "delete", null, options);
      return { name, version: marker.version, purged: false };
    }
    await this.authorize(who, "write", name, "secret.purge");
    let removed = 0;
    for await (const key of this.keysUnder(this.layout.versions(name))) {
      if (await this.storage.delete(key)) removed++;
    }
    if (await this.storage.delete(this.layout.meta(name))) removed++;
    if (removed === 0) throw new SecretsError("E_NOT_FOUND", `no secret named ${name}`, { secret: name });
    this.forget(name);
    await this.record("secret.purge", who, name, undefined, { removed });
    return { name, purged: true, removed };
  }

  /** The history of a secret as ASCII art, newest first: `*` the current version, `o` older ones, `x` deletions. */
  async generateVersionGraph(name: string, options: CallOptions = {}): Promise<string> {
    const versions = await this.getSecretVersions(name, options);
    const meta = await this.readMeta(name);
    const schedule = this.scheduleOf(name, meta);
    const rotated = meta?.rotated ?? meta?.created;
    return renderVersionGraph(name, versions, {
      ...(schedule && { rotateEvery: schedule.rotateEvery }),
      ...(schedule && rotated && { due: new Date(Date.parse(rotated) + schedule.ms).toISOString() }),
    });
  }

  /**
   * Live secrets whose rotation is due within `withinDays` (default 14) or overdue: the secret's own
   * `rotateEvery`, else the policy's, counted from when its current value was written.
   */
  async dueSecrets(options: CallOptions & { withinDays?: number; now?: number } = {}): Promise<DueSecret[]> {
    const now = options.now ?? this.clock();
    const horizon = now + (options.withinDays ?? 14) * DAY_MS;
    const due: DueSecret[] = [];
    for (const summary of await this.listSecrets(options)) {
      const schedule = this.scheduleOf(summary.name, summary);
      if (!schedule) continue;
      const rotated = summary.rotated ?? summary.created;
      const at = Date.parse(rotated) + schedule.ms;
      if (at > horizon) continue;
      due.push({
        name: summary.name,
        version: summary.latest,
        rotated,
        rotateEvery: schedule.rotateEvery,
        schedule: schedule.from,
        due: new Date(at).toISOString(),
        overdue: at <= now,
      });
    }
    return due.sort((a, b) => a.due.localeCompare(b.due));
  }

  /**
   * Replaces the master key without re-encrypting any value: a new key is stored in the provider (the
   * old one beside it as "previous"), the vault is marked as using it, every data key is unwrapped with
   * the old key and wrapped with the new one, and the old key is dropped. If this stops half-way, running
   * it again finishes the job: the provider still holds both keys. With a read-only provider (the
   * environment) set the new key and the previous one yourself, then run it to re-wrap.
   */
  async rotateMasterKey(options: CallOptions = {}): Promise<MasterKeyRotation> {
    const who = options.as ?? this.identity;
    if (who.kind !== "user" || !who.admin) {
      throw new SecretsError("E_FORBIDDEN", "only admins may rotate the master key");
    }
    const ring = await this.keys();
    let from = ring.previous[0]?.id ?? ring.current.id;
    let target = ring.current;
    if (ring.previous.length === 0) {
      const provider = ring.provider;
      if (!provider?.store) {
        throw new SecretsError(
          "E_BAD_REQUEST",
          `the master key comes from ${ring.source}, which fw cannot change: set FW_SECRETS_PREVIOUS_MASTER_KEY to the current key and FW_SECRETS_MASTER_KEY to a new one (\`fw secrets init --provider env\` prints one), then run this again`,
        );
      }
      target = await MasterKey.generate();
      await provider.store(target, ring.current);
      from = ring.current.id;
      this.ring = Promise.resolve({ ...ring, current: target, previous: [ring.current] });
    }
    const keys = await this.keys();
    await this.setVaultKey(target.id);
    let rewrapped = 0;
    // Passes until one finds nothing: a writer still holding the old key may add a version meanwhile.
    for (let pass = 0; pass < 5; pass++) {
      const count = await this.rewrapAll(keys, target);
      rewrapped += count;
      if (count === 0) break;
    }
    let note: string | undefined;
    if (keys.provider?.dropPrevious) await keys.provider.dropPrevious();
    else if (keys.previous.length > 0)
      note = "every data key now uses the new master key: unset FW_SECRETS_PREVIOUS_MASTER_KEY";
    this.ring = Promise.resolve({ ...keys, previous: [] });
    await this.record("secret.master-key", who, undefined, undefined, { from, to: target.id, rewrapped });
    return { from, to: target.id, rewrapped, source: keys.source, ...(note && { note }) };
  }

  /** Drops every cached value. */
  clearCache(): void {
    this.cache.clear();
  }

  private async append(
    name: string,
    op: VersionOp,
    value: string | null,
    options: CallOptions & { rotateEvery?: string },
  ): Promise<SecretVersion> {
    validateSecretName(name);
    const who = options.as ?? this.identity;
    if (options.rotateEvery !== undefined) parseDuration(options.rotateEvery);
    let plaintext: Uint8Array<ArrayBuffer> | undefined;
    if (value !== null) {
      if (typeof value !== "string" || value.length === 0) {
        throw new SecretsError("E_BAD_REQUEST", `the value of ${name} is empty: a secret needs a value`, {
          secret: name,
        });
      }
      plaintext = encoder.encode(value);
      if (plaintext.byteLength > MAX_VALUE_BYTES) {
        throw new SecretsError(
          "E_BAD_REQUEST",
          `the value of ${name} has ${plaintext.byteLength} bytes; at most ${MAX_VALUE_BYTES} are kept`,
          { secret: name },
        );
      }
    }
    await this.authorize(who, "write", name, AUDIT_ACTIONS[op]);
    const ring = plaintext ? await this.keys() : undefined;
    if (ring) await this.checkVaultKey(ring);

    const meta = await this.readMeta(name);
    const observed: Observed[] = [];
    check(op, name, meta ? { deleted: meta.deleted, version: meta.latest } : null);
    let version = (meta?.latest ?? 0) + 1;
    const actor = who.kind === "user" ? who.name : undefined;
    try {
      for (let attempt = 0; ; attempt++) {
        const created = new Date(this.clock()).toISOString();
        const file: VersionFile = {
          format: VERSION_FORMAT,
          name,
          version,
          op,
          created,
          ...(actor !== undefined && { actor }),
          ...(plaintext && ring && { value: await encrypt(name, version, plaintext, ring.current) }),
        };
        try {
          await this.storage.put(this.layout.version(name, version), JSON.stringify(file), {
            ifNoneMatch: "*",
            contentType: "application/json",
          });
          observed.push({ version, op, created });
          break;
        } catch (error) {
          if (!isStorageError(error, "E_PRECONDITION")) throw error;
        }
        // Another writer holds this version: what it wrote decides whether this write still makes sense.
        const other = await this.readVersion(name, version);
        if (other) {
          observed.push({ version, op: other.op, created: other.created });
          check(op, name, { deleted: other.op === "delete", version }, true);
        }
        if (attempt >= 100) {
          throw new SecretsError("E_CONFLICT", `gave up writing ${name} after 100 racing versions`, { secret: name });
        }
        version++;
      }
    } finally {
      plaintext?.fill(0);
      if (observed.length > 0) await this.updateMeta(name, observed, options.rotateEvery);
      this.forget(name);
    }
    await this.record(AUDIT_ACTIONS[op], who, name, version);
    return {
      name,
      version,
      op,
      created: (observed.at(-1) as Observed).created,
      ...(actor !== undefined && { actor }),
      ...(ring && { masterKeyId: ring.current.id }),
      current: op !== "delete",
    };
  }

  private async updateMeta(name: string, observed: readonly Observed[], rotateEvery: string | undefined) {
    await casUpdate<MetaFile>(this.storage, this.layout.meta(name), (current) => {
      const base: MetaFile =
        current && isMetaFile(current)
          ? { ...current }
          : {
              format: META_FORMAT,
              name,
              latest: 0,
              deleted: false,
              created: (observed[0] as Observed).created,
              updated: (observed[0] as Observed).created,
            };
      for (const seen of [...observed].sort((a, b) => a.version - b.version)) {
        if (seen.version <= base.latest) continue;
        base.latest = seen.version;
        base.deleted = seen.op === "delete";
        base.updated = seen.created;
        if (seen.op !== "delete") base.rotated = seen.created;
      }
      if (rotateEvery !== undefined) base.rotateEvery = rotateEvery;
      return base;
    });
  }

  private async open(name: string, version: number, file: VersionFile): Promise<string> {
    const where = `${name} v${version}`;
    const ids = { secret: name, version };
    if (file.name !== name || file.version !== version) {
      throw new SecretsError(
        "E_INTEGRITY",
        `the file of ${where} says it holds ${file.name} v${file.version}: it was swapped or copied; restore it from a backup`,
        ids,
      );
    }
    if (file.op === "delete" || !file.value) {
      throw new SecretsError("E_NOT_FOUND", `${where} is a deletion marker, not a value`, ids);
    }
    const sealed = file.value;
    const ring = await this.keys();
    const masterKey = keyById(ring, sealed.wrappedKey.masterKeyId);
    if (!masterKey) {
      throw new SecretsError(
        "E_WRONG_MASTER_KEY",
        `${where} is encrypted under master key ${sealed.wrappedKey.masterKeyId}, but ${ring.source} holds ${ring.current.id}: load the vault's master key`,
        ids,
      );
    }
    const rawKey = await unseal(
      await masterKey.cryptoKey(),
      sealed.wrappedKey,
      dataKeyContext(name, version, sealed.keyId, masterKey.id),
    );
    if (!rawKey || rawKey.byteLength !== KEY_BYTES) {
      throw new SecretsError(
        "E_INTEGRITY",
        `the data key of ${where} fails its integrity check: the file was altered, damaged, or moved from another secret or version`,
        ids,
      );
    }
    const dataKey = await importAesKey(rawKey);
    rawKey.fill(0);
    const plaintext = await unseal(dataKey, sealed, valueContext(name, version, sealed.keyId));
    if (!plaintext) {
      throw new SecretsError(
        "E_INTEGRITY",
        `the value of ${where} fails its integrity check: the file was altered, damaged, or moved from another secret or version`,
        ids,
      );
    }
    try {
      return strictDecoder.decode(plaintext);
    } catch {
      throw new SecretsError("E_INTEGRITY", `the value of ${where} is not UTF-8 text`, ids);
    } finally {
      plaintext.fill(0);
    }
  }

  private async rewrapAll(ring: MasterKeyRing, target: MasterKey): Promise<number> {
    let count = 0;
    for await (const key of this.keysUnder(`${this.layout.prefix}/`)) {
      if (!this.layout.isVersion(key)) continue;
      const result = await casUpdate<VersionFile>(this.storage, key, async (file) => {
        if (!file || !isVersionFile(file) || !file.value) return undefined;
        const wrapped = file.value.wrappedKey;
        if (wrapped.masterKeyId === target.id) return undefined;
        const old = keyById(ring, wrapped.masterKeyId);
        const where = `${file.name} v${file.version}`;
        if (!old) {
          throw new SecretsError(
            "E_WRONG_MASTER_KEY",
            `${where} is encrypted under master key ${wrapped.masterKeyId}, which is not loaded: load it as the previous key and run the rotation again`,
            { secret: file.name, version: file.version },
          );
        }
        const rawKey = await unseal(
          await old.cryptoKey(),
          wrapped,
          dataKeyContext(file.name, file.version, file.value.keyId, old.id),
        );
        if (!rawKey) {
          throw new SecretsError("E_INTEGRITY", `the data key of ${where} fails its integrity check`, {
            secret: file.name,
            version: file.version,
          });
        }
        const rewrapped = await seal(
          await target.cryptoKey(),
          rawKey,
          dataKeyContext(file.name, file.version, file.value.keyId, target.id),
        );
        rawKey.fill(0);
        return {
          ...file,
          value: { ...file.value, wrappedKey: { alg: ALGORITHM, masterKeyId: target.id, ...rewrapped } },
        };
      });
      if (result.written) count++;
    }
    return count;
  }

  private keys(): Promise<MasterKeyRing & { provider?: MasterKeyProvider }> {
    if (!this.ring) {
      const source = this.source;
      const loading: Promise<MasterKeyRing & { provider?: MasterKeyProvider }> = isProviderList(source)
        ? loadMasterKeys(source)
        : Promise.resolve(source);
      this.ring = loading;
      // A failed load (keychain locked, no key yet) is retried on the next call rather than remembered.
      loading.catch(() => {
        if (this.ring === loading) this.ring = undefined;
      });
    }
    return this.ring;
  }

  /** Creates `@vault.json` if missing (returns `true`), else checks the ring holds the vault's key. */
  private async checkVaultKey(ring: MasterKeyRing): Promise<boolean> {
    const now = new Date(this.clock()).toISOString();
    const result = await casUpdate<VaultFile>(this.storage, this.layout.vault, (current) => {
      if (current) return undefined;
      return { format: VAULT_FORMAT, masterKeyId: ring.current.id, created: now, updated: now };
    });
    const vault = result.value;
    if (!isVaultFile(vault)) throw new SecretsError("E_INTEGRITY", `${this.layout.vault} is not a vault file`);
    if (!keyById(ring, vault.masterKeyId)) {
      throw new SecretsError(
        "E_WRONG_MASTER_KEY",
        `this vault's data keys are wrapped with master key ${vault.masterKeyId}, but ${ring.source} holds ${ring.current.id}: load the vault's master key (keychain, FW_SECRETS_MASTER_KEY or the key file) instead of creating another`,
      );
    }
    return result.written;
  }

  private async setVaultKey(id: string): Promise<void> {
    const now = new Date(this.clock()).toISOString();
    await casUpdate<VaultFile>(this.storage, this.layout.vault, (current) => {
      if (current && isVaultFile(current) && current.masterKeyId === id) return undefined;
      return { format: VAULT_FORMAT, masterKeyId: id, created: current?.created ?? now, updated: now };
    });
  }

  private scheduleOf(
    name: string,
    meta: Pick<MetaFile, "rotateEvery"> | null,
  ): { rotateEvery: string; ms: number; from: "secret" | "policy" } | undefined {
    if (meta?.rotateEvery)
      return { rotateEvery: meta.rotateEvery, ms: parseDuration(meta.rotateEvery), from: "secret" };
    const rule = rotationFor(this.policy, name);
    return rule && { ...rule, from: "policy" };
  }

  /** Throws `E_FORBIDDEN` unless the policy allows; a refusal is recorded as a failed `audited` event. */
  private async authorize(
    who: Identity,
    action: SecretAction,
    name: string,
    audited: SecretAuditAction | false,
  ): Promise<void> {
    const decision = authorizeSecret(this.policy, who, action, name);
    if (decision.allowed) return;
    if (audited) await this.record(audited, who, name, undefined, { outcome: "failure", reason: decision.reason });
    throw new SecretsError("E_FORBIDDEN", decision.reason, { secret: name });
  }

  private async record(
    action: SecretAuditAction,
    who: Identity,
    name: string | undefined,
    version: number | undefined,
    details: Record<string, AuditDetail> = {},
  ): Promise<void> {
    if (!this.audit) return;
    const { outcome, ...rest } = details;
    await this.audit.append({
      action,
      ...(who.kind === "user" && { actor: who.name }),
      ...(who.kind === "user" && who.token && { tokenKey: who.token.key }),
      ...(version !== undefined && { version: String(version) }),
      outcome: outcome === "failure" ? "failure" : "success",
      details: { ...(name !== undefined && { name }), ...rest },
    });
  }

  private forget(name: string): void {
    for (const key of this.cache.keys()) if (key.startsWith(`${name}\0`)) this.cache.delete(key);
  }

  private async readMeta(name: string): Promise<MetaFile | null> {
    const object = await this.storage.get(this.layout.meta(name));
    if (!object) return null;
    const meta = parseJson(object.body);
    if (!isMetaFile(meta) || meta.name !== name) {
      throw new SecretsError("E_INTEGRITY", `the index of ${name} (${this.layout.meta(name)}) is damaged`, {
        secret: name,
      });
    }
    return meta;
  }

  private async readVersion(name: string, version: number): Promise<VersionFile | null> {
    const object = await this.storage.get(this.layout.version(name, version));
    if (!object) return null;
    const file = parseJson(object.body);
    if (!isVersionFile(file)) {
      throw new SecretsError("E_INTEGRITY", `the file of ${name} v${version} is not a secret version file`, {
        secret: name,
        version,
      });
    }
    return file;
  }

  private async *keysUnder(prefix: string): AsyncGenerator<string> {
    let cursor: string | undefined;
    do {
      const page = await this.storage.list({ prefix, ...(cursor !== undefined && { cursor }) });
      for (const object of page.objects) yield object.key;
      cursor = page.cursor;
    } while (cursor !== undefined);
  }
}

/** Throws unless `op` makes sense on a secret in `state` (`null`: never written). */
function check(op: VersionOp, name: string, state: { deleted: boolean; version: number } | null, racing = false) {
  const meanwhile = racing ? " meanwhile" : "";
  if (op === "set" && state && !state.deleted) {
    throw new SecretsError(
      "E_CONFLICT",
      `secret ${name} ${racing ? "was created meanwhile" : "exists"} (v${state.version}): rotate it to add a version`,
      { secret: name },
    );
  }
  if (op !== "set" && (!state || state.deleted)) {
    throw new SecretsError(
      "E_NOT_FOUND",
      state
        ? `secret ${name} was deleted${meanwhile} (v${state.version}); set it to bring it back`
        : `no secret named ${name}`,
      { secret: name },
    );
  }
}

async function encrypt(
  name: string,
  version: number,
  plaintext: Uint8Array<ArrayBuffer>,
  masterKey: MasterKey,
): Promise<EncryptedValue> {
  const keyId = `dk_${toBase64url(randomBytes(12))}`;
  const rawKey = randomBytes(KEY_BYTES);
  try {
    const dataKey = await importAesKey(rawKey);
    const value = await seal(dataKey, plaintext, valueContext(name, version, keyId));
    const wrapped = await seal(await masterKey.cryptoKey(), rawKey, dataKeyContext(name, version, keyId, masterKey.id));
    return { alg: ALGORITHM, keyId, ...value, wrappedKey: { alg: ALGORITHM, masterKeyId: masterKey.id, ...wrapped } };
  } finally {
    rawKey.fill(0);
  }
}

function isProviderList(source: MasterKeyRing | readonly MasterKeyProvider[]): source is readonly MasterKeyProvider[] {
  return Array.isArray(source);
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(textDecoder.decode(bytes));
  } catch {
    return undefined;
  }
}
