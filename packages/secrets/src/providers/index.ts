import { isSecretsError, SecretsError } from "../errors.js";
import { MasterKey, type MasterKeyRing } from "../master-key.js";
import { envProvider } from "./env.js";
import { defaultKeyFilePath, keyFileProvider } from "./file.js";
import { type KeychainProviderOptions, keychainProvider } from "./keychain.js";
import { type MasterKeyProvider, PROVIDER_NAMES, type ProviderName } from "./types.js";

export const PROVIDERS_VARIABLE = "FW_SECRETS_KEY_PROVIDERS";
export const KEYCHAIN_SERVICE_VARIABLE = "FW_SECRETS_KEYCHAIN_SERVICE";

export interface DefaultProvidersOptions {
  /** Where the variables are read. Default `process.env`. */
  env?: Record<string, string | undefined>;
  /**
   * Which providers, in order. Default: `FW_SECRETS_KEY_PROVIDERS` (comma-separated, e.g. `env,file` on
   * a server that has no keychain), else `keychain, env, file`.
   */
  order?: readonly ProviderName[];
  /** Default service: `FW_SECRETS_KEYCHAIN_SERVICE`, else `fw-secrets`. */
  keychain?: KeychainProviderOptions;
  /** Default: `defaultKeyFilePath(env)`. */
  keyFile?: string;
}

/** Parses a provider list such as `"env,file"`; throws naming the unknown entry. */
export function parseProviderOrder(text: string, origin = PROVIDERS_VARIABLE): ProviderName[] {
  const names = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((name) => name.toLowerCase());
  for (const name of names) {
    if (!PROVIDER_NAMES.includes(name as ProviderName)) {
      throw new SecretsError(
        "E_BAD_REQUEST",
        `${origin}: unknown master-key provider "${name}" (use keychain, env, file)`,
      );
    }
  }
  if (names.length === 0) throw new SecretsError("E_BAD_REQUEST", `${origin} names no master-key provider`);
  return [...new Set(names as ProviderName[])];
}

/** The master-key providers in the order they are tried: the OS keychain, the environment, the key file. */
export function defaultProviders(options: DefaultProvidersOptions = {}): MasterKeyProvider[] {
  const env = options.env ?? process.env;
  const fromEnv = env[PROVIDERS_VARIABLE];
  const order = options.order ?? (fromEnv ? parseProviderOrder(fromEnv) : PROVIDER_NAMES);
  const service = options.keychain?.service ?? env[KEYCHAIN_SERVICE_VARIABLE];
  return order.map((name) => {
    if (name === "keychain")
      return keychainProvider({ ...options.keychain, ...(service !== undefined && { service }) });
    if (name === "env") return envProvider({ env });
    return keyFileProvider({ path: options.keyFile ?? defaultKeyFilePath(env) });
  });
}

export interface LoadedMasterKeys extends MasterKeyRing {
  provider: MasterKeyProvider;
}

/**
 * The keys of the first provider that has one. A keychain that cannot be reached is passed over (a
 * server has none); a key file with unsafe permissions or a variable that is not a key stops the search,
 * since using the next provider would hide the problem. Throws `E_NO_MASTER_KEY` naming what was tried.
 */
export async function loadMasterKeys(providers: readonly MasterKeyProvider[]): Promise<LoadedMasterKeys> {
  const tried: string[] = [];
  for (const provider of providers) {
    try {
      const keys = await provider.load();
      if (keys) return { ...keys, source: provider.describe(), provider };
      tried.push(`${provider.describe()} has none`);
    } catch (error) {
      if (!isSecretsError(error, "E_KEYCHAIN")) throw error;
      tried.push(error.message);
    }
  }
  throw new SecretsError(
    "E_NO_MASTER_KEY",
    `no master key: ${tried.join("; ") || "no provider is configured"}. Run \`fw secrets init\` to create one, or set FW_SECRETS_MASTER_KEY`,
  );
}

export interface InitResult {
  /** `false` when a provider already had a key (which is kept). */
  created: boolean;
  key: MasterKey;
  provider: MasterKeyProvider;
  /** Providers passed over, with why (for `fw secrets init` to say). */
  skipped: string[];
}

/**
 * Makes sure a master key exists: returns the one a provider already holds, or creates one in the best
 * provider that can keep it (the keychain, else the key file; `only` picks one). Never replaces a key.
 */
export async function initMasterKey(
  providers: readonly MasterKeyProvider[],
  options: { only?: ProviderName } = {},
): Promise<InitResult> {
  const existing = await loadMasterKeys(providers).catch((error: unknown) => {
    if (isSecretsError(error, "E_NO_MASTER_KEY")) return null;
    throw error;
  });
  if (existing) {
    if (options.only && existing.provider.name !== options.only) {
      throw new SecretsError(
        "E_CONFLICT",
        `a master key (${existing.current.id}) already exists in ${existing.source}; fw keeps one key per vault (move it by hand, then remove it there)`,
      );
    }
    return { created: false, key: existing.current, provider: existing.provider, skipped: [] };
  }
  const skipped: string[] = [];
  const candidates = options.only ? providers.filter((p) => p.name === options.only) : providers;
  if (candidates.length === 0) {
    throw new SecretsError("E_BAD_REQUEST", `the master-key provider "${options.only}" is not among those in use`);
  }
  for (const provider of candidates) {
    const why = await provider.unavailableReason();
    if (!provider.store || why !== undefined) {
      skipped.push(`${provider.describe()}: ${why ?? "read-only"}`);
      continue;
    }
    const key = await MasterKey.generate();
    await provider.store(key);
    return { created: true, key, provider, skipped };
  }
  throw new SecretsError(
    "E_NO_MASTER_KEY",
    `no provider can keep a master key: ${skipped.join("; ")}. Set FW_SECRETS_MASTER_KEY instead (\`fw secrets init --provider env\` prints a new key)`,
  );
}

export type { MasterKeyProvider, ProviderName, StoredKeys } from "./types.js";
