import { userInfo } from "node:os";
import { resolve } from "node:path";
import { parsePolicy } from "@fw/auth";
import {
  defaultProviders,
  findSecretReferences,
  type MasterKeyProvider,
  operatorIdentity,
  parseSecretsPolicy,
  SecretsVault,
} from "@fw/secrets";
import { loadConfig } from "@fw/server";
import { storageFromConfig } from "@fw/server/node";
import type { StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { describeStorage, displayPath } from "../../output.js";

/** Flags every `fw secrets` command takes. */
export interface SecretsFlags {
  config?: string;
  /** A folder holding the vault instead of the registry's storage (for secrets the storage config itself needs). */
  vault?: string;
  json: boolean;
}

export interface OpenVault {
  vault: SecretsVault;
  storage: StorageDriver;
  providers: MasterKeyProvider[];
  /** Where the vault is, for messages: "fs ./storage" or "s3 bucket/prefix at …". */
  where: string;
}

/** Whoever runs the command, for the audit trail: the OS user (the CLI acts as an admin of the vault). */
function operatorName(): string {
  try {
    return userInfo().username || "operator";
  } catch {
    return "operator";
  }
}

/**
 * The vault in the registry's storage (`--config`, else FW_CONFIG, else ./fw.config.json5), or in the
 * `--vault` folder, with the master key from the default providers and the config's `secrets` policy.
 * It works with the server stopped.
 */
export async function openVault(flags: SecretsFlags): Promise<OpenVault> {
  const { config } = await loadConfig({ file: flags.config, overrides: {} });
  let storage: StorageDriver;
  let where: string;
  const vaultFolder = flags.vault ?? config.secrets?.vault;
  if (vaultFolder !== undefined) {
    const root = resolve(vaultFolder);
    storage = fsDriver({ root });
    where = `fs ${displayPath(root)}`;
  } else {
    const references = findSecretReferences(config.storage, "storage");
    if (references.length > 0) {
      throw new Error(
        `${references.map((r) => r.path).join(", ")} in the config refer${references.length === 1 ? "s" : ""} to secrets, and the vault would live in that same storage: keep those secrets in a vault folder of their own with --vault <dir>`,
      );
    }
    storage = await storageFromConfig(config);
    where = describeStorage(config.storage);
  }
  const rules = config.secrets?.rules;
  const policy = parseSecretsPolicy(rules ? { rules } : {}, { access: parsePolicy(config.access ?? {}) });
  const providers = defaultProviders();
  const vault = new SecretsVault({
    storage,
    masterKeys: providers,
    policy,
    identity: operatorIdentity(operatorName()),
    // Every command answers from storage as it is now.
    cacheTtlMs: 0,
  });
  return { vault, storage, providers, where };
}

/** Runs `fn` with the vault open, and releases the storage's connections after. */
export async function withVault<T>(flags: SecretsFlags, fn: (open: OpenVault) => Promise<T>): Promise<T> {
  const open = await openVault(flags);
  try {
    return await fn(open);
  } finally {
    await open.storage.dispose?.();
  }
}
