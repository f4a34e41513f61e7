import type { AsyncEntry } from "@napi-rs/keyring";
import { SecretsError } from "../errors.js";
import { MasterKey } from "../master-key.js";
import type { MasterKeyProvider, StoredKeys } from "./types.js";

export interface KeychainProviderOptions {
  /** Keychain service the entries are filed under. Default `"fw-secrets"`. */
  service?: string;
  /** Account of the current key. Default `"master-key"`; the previous key during a rotation is `<account>.previous`. */
  account?: string;
}

type Binding = typeof import("@napi-rs/keyring");

let binding: Promise<Binding> | undefined;

/** The native binding, loaded on first use so that importing @fw/secrets never needs it. */
function loadBinding(): Promise<Binding> {
  binding ??= import("@napi-rs/keyring");
  return binding;
}

function platformStore(platform: NodeJS.Platform = process.platform): string {
  if (platform === "darwin") return "macOS Keychain";
  if (platform === "win32") return "Windows Credential Manager";
  return "Secret Service";
}

function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s+/g, " ").trim();
}

/**
 * The master key in the OS keychain through @napi-rs/keyring (keyring-rs): macOS Keychain, Windows
 * Credential Manager, or the Secret Service on Linux and BSD (GNOME Keyring, KWallet, KeePassXC). On Linux
 * the Secret Service is required rather than allowed to fall back to the kernel keyring, which forgets
 * its keys at reboot and would lose the vault's key with them.
 */
export function keychainProvider(options: KeychainProviderOptions = {}): MasterKeyProvider {
  const service = options.service ?? "fw-secrets";
  const account = options.account ?? "master-key";
  const previousAccount = `${account}.previous`;
  const where = `the OS keychain (${platformStore()}, service "${service}")`;

  const fail = (action: string, error: unknown) =>
    new SecretsError("E_KEYCHAIN", `${where}: cannot ${action}: ${reason(error)}`, { cause: error });

  async function entry(name: string): Promise<AsyncEntry> {
    let keyring: Binding;
    try {
      keyring = await loadBinding();
    } catch (error) {
      throw fail(`load the keychain binding for ${process.platform}-${process.arch}`, error);
    }
    try {
      return new keyring.AsyncEntry(service, name, { linux: { store: "secret-service" } });
    } catch (error) {
      throw fail("connect", error);
    }
  }

  async function read(name: string): Promise<string | null> {
    const item = await entry(name);
    try {
      return await item.getPassword();
    } catch (error) {
      throw fail(`read "${name}"`, error);
    }
  }

  async function write(name: string, text: string): Promise<void> {
    const item = await entry(name);
    try {
      await item.setPassword(text);
    } catch (error) {
      throw fail(`write "${name}"`, error);
    }
  }

  async function forget(name: string): Promise<void> {
    const item = await entry(name);
    try {
      await item.deleteCredential();
    } catch (error) {
      throw fail(`delete "${name}"`, error);
    }
  }

  return {
    name: "keychain",
    describe: () => where,

    async load(): Promise<StoredKeys | null> {
      const text = await read(account);
      if (text === null) return null;
      const current = await MasterKey.parse(text, `${where}, account "${account}"`);
      const previousText = await read(previousAccount);
      const previous =
        previousText === null ? [] : [await MasterKey.parse(previousText, `${where}, account "${previousAccount}"`)];
      return { current, previous };
    },

    async unavailableReason(): Promise<string | undefined> {
      // A locked or absent collection reads as empty, so only a write shows whether keys can be kept.
      const probe = `${account}.probe`;
      try {
        await write(probe, "probe");
        const back = await read(probe);
        await forget(probe);
        return back === "probe" ? undefined : `${where} did not keep a test entry`;
      } catch (error) {
        return error instanceof SecretsError ? error.message : reason(error);
      }
    },

    async store(current: MasterKey, previous?: MasterKey): Promise<void> {
      // The previous key first: if this stops half-way, the keychain still holds a key for every data key.
      if (previous) await write(previousAccount, previous.toText());
      await write(account, current.toText());
      const back = await read(account);
      if (back === null || (await MasterKey.parse(back, where)).id !== current.id) {
        throw new SecretsError("E_KEYCHAIN", `${where} did not keep the master key ${current.id}`);
      }
    },

    async dropPrevious(): Promise<void> {
      await forget(previousAccount);
    },

    async remove(): Promise<void> {
      await forget(previousAccount);
      await forget(account);
    },
  };
}
