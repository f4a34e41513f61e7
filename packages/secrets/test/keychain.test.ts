/**
 * The keychain provider against a real OS keychain: on Linux the GNOME Keyring daemon that
 * keyring-global-setup.ts starts on a private D-Bus session (never the developer's own keyring).
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { memoryDriver } from "@fw/storage-r2/memory";
import { tempDir } from "@fw/tooling/test";
import { afterAll, describe, expect, it } from "vitest";
import { MasterKey } from "../src/master-key.js";
import { envProvider } from "../src/providers/env.js";
import { keyFileProvider } from "../src/providers/file.js";
import { initMasterKey, loadMasterKeys } from "../src/providers/index.js";
import { keychainProvider } from "../src/providers/keychain.js";
import { SecretsVault } from "../src/vault.js";

// In CI a missing Secret Service fails the global setup; only a developer's machine without one skips.
const unavailable = process.env.CI ? undefined : process.env.FW_TEST_KEYCHAIN_UNAVAILABLE;
const secretService = process.env.FW_TEST_KEYCHAIN === "secret-service";

function secretTool(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("secret-tool", args, (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve(stdout))),
  );
}

describe.skipIf(unavailable !== undefined)("keychain provider (real OS keychain)", () => {
  const service = `fw-secrets-test-${randomUUID().slice(0, 8)}`;
  const cleanup: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const step of cleanup) await step();
  });

  it("keeps the master key, and the previous one during a rotation, in the Secret Service", async () => {
    const provider = keychainProvider({ service });
    cleanup.push(() => provider.remove?.() ?? Promise.resolve());
    expect(provider.describe()).toMatch(new RegExp(`^the OS keychain \\(.+, service "${service}"\\)$`));
    expect(await provider.unavailableReason()).toBeUndefined();
    expect(await provider.load()).toBeNull();

    const first = await MasterKey.generate();
    await provider.store?.(first);
    expect((await keychainProvider({ service }).load())?.current.id).toBe(first.id);
    if (secretService) {
      // The item is really in the keyring, where other Secret Service clients find it.
      expect((await secretTool("lookup", "service", service, "username", "master-key")).trim()).toBe(first.toText());
    }

    const second = await MasterKey.generate();
    await provider.store?.(second, first);
    const both = await keychainProvider({ service }).load();
    expect([both?.current.id, both?.previous.map((k) => k.id)]).toEqual([second.id, [first.id]]);
    await provider.dropPrevious?.();
    expect((await provider.load())?.previous).toEqual([]);
    await provider.remove?.();
    expect(await provider.load()).toBeNull();
  });

  it("is where `init` puts a new key, and a vault reads and rotates with it", async () => {
    await using dir = await tempDir();
    const keyFile = join(dir.path, "master.key");
    const providers = () => [
      keychainProvider({ service: `${service}-vault` }),
      envProvider({ env: {} }),
      keyFileProvider({ path: keyFile }),
    ];
    cleanup.push(() => keychainProvider({ service: `${service}-vault` }).remove?.() ?? Promise.resolve());
    const init = await initMasterKey(providers());
    expect([init.created, init.provider.name, init.skipped]).toEqual([true, "keychain", []]);
    expect(await keyFileProvider({ path: keyFile }).load()).toBeNull();

    const storage = memoryDriver();
    await new SecretsVault({ storage, masterKeys: providers() }).setSecret("uplinks/public/token", "keychain-kept");
    const reader = new SecretsVault({ storage, masterKeys: providers() });
    expect(await reader.getSecret("uplinks/public/token")).toBe("keychain-kept");

    const rotation = await new SecretsVault({ storage, masterKeys: providers() }).rotateMasterKey();
    expect(rotation).toMatchObject({ from: init.key.id, rewrapped: 1 });
    const loaded = await loadMasterKeys(providers());
    expect([loaded.provider.name, loaded.current.id, loaded.previous]).toEqual(["keychain", rotation.to, []]);
    expect(await new SecretsVault({ storage, masterKeys: providers() }).getSecret("uplinks/public/token")).toBe(
      "keychain-kept",
    );
  });
});
