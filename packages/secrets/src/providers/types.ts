import type { MasterKey } from "../master-key.js";

export type ProviderName = "keychain" | "env" | "file";
export const PROVIDER_NAMES: readonly ProviderName[] = ["keychain", "env", "file"];

/** What a provider holds: the current key and, while a rotation is under way, the keys before it. */
export interface StoredKeys {
  current: MasterKey;
  previous: MasterKey[];
}

/**
 * Somewhere a master key is kept outside the vault's storage. `load` answers `null` when the provider
 * simply has no key; it throws `E_KEYCHAIN` when the provider cannot be used here (no Secret Service, no
 * binding for this platform), and `E_KEY_FILE` or `E_BAD_REQUEST` when what it holds is unsafe or not a key.
 */
export interface MasterKeyProvider {
  readonly name: ProviderName;
  /** Where, for people: `the OS keychain (Secret Service, service "fw-secrets")`. Never the key. */
  describe(): string;
  load(): Promise<StoredKeys | null>;
  /** Why `store` cannot work here now, or `undefined` when it can. */
  unavailableReason(): Promise<string | undefined>;
  /** Keeps `current` as the key, and `previous` beside it until `dropPrevious`. Absent on read-only providers. */
  store?(current: MasterKey, previous?: MasterKey): Promise<void>;
  /** Forgets the previous key once every data key is re-wrapped. */
  dropPrevious?(): Promise<void>;
  /** Forgets every key this provider holds. */
  remove?(): Promise<void>;
}
