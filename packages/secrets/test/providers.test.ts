import { chmod, chown, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "@fw/tooling/test";
import { describe, expect, it } from "vitest";
import { MasterKey } from "../src/master-key.js";
import { envProvider } from "../src/providers/env.js";
import { defaultKeyFilePath, keyFileProvider } from "../src/providers/file.js";
import { defaultProviders, initMasterKey, loadMasterKeys, parseProviderOrder } from "../src/providers/index.js";
import { keychainProvider } from "../src/providers/keychain.js";
import { expectSecretsError, memoryProvider } from "./helpers.js";

const posix = process.platform !== "win32";
/** A keychain that cannot be reached: its bus does not exist. */
const unreachableBus = "unix:path=/nonexistent/fw-test-bus";

async function withBus<T>(address: string, fn: () => Promise<T>): Promise<T> {
  const saved = process.env.DBUS_SESSION_BUS_ADDRESS;
  process.env.DBUS_SESSION_BUS_ADDRESS = address;
  try {
    return await fn();
  } finally {
    if (saved === undefined) delete process.env.DBUS_SESSION_BUS_ADDRESS;
    else process.env.DBUS_SESSION_BUS_ADDRESS = saved;
  }
}

describe("key file provider", () => {
  it("creates the file 0600 in a 0700 folder and reads back the current and previous keys", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "config", "fw", "secrets-master.key");
    const provider = keyFileProvider({ path });
    expect(await provider.load()).toBeNull();
    expect(await provider.unavailableReason()).toBeUndefined();

    const first = await MasterKey.generate();
    await provider.store?.(first);
    if (posix) {
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(join(dir.path, "config", "fw"))).mode & 0o777).toBe(0o700);
    }
    expect(await readFile(path, "utf8")).toBe(
      `# fw secrets master key. Whoever can read this file can read every secret in the vault: keep it mode 0600.\n${first.toText()}\n`,
    );
    expect((await provider.load())?.current.id).toBe(first.id);

    const second = await MasterKey.generate();
    await provider.store?.(second, first);
    const both = await provider.load();
    expect([both?.current.id, both?.previous.map((k) => k.id)]).toEqual([second.id, [first.id]]);
    await provider.dropPrevious?.();
    expect((await provider.load())?.previous).toEqual([]);
    // Every write went through a temporary file renamed into place.
    expect(await readdir(join(dir.path, "config", "fw"))).toEqual(["secrets-master.key"]);
    await provider.remove?.();
    expect(await provider.load()).toBeNull();
  });

  it.runIf(posix)("refuses a key file that others can read, or that another user owns", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "master.key");
    const provider = keyFileProvider({ path });
    await provider.store?.(await MasterKey.generate());
    await chmod(path, 0o644);
    const open = await expectSecretsError(provider.load(), "E_KEY_FILE");
    expect(open.message).toBe(
      `key file ${path} is readable or writable by others (mode 0644): run \`chmod 600 ${path}\`, and rotate the master key (fw secrets rotate-master) if others may have read it`,
    );
    // An unsafe key file stops the search rather than being passed over.
    await expectSecretsError(loadMasterKeys([provider, envProvider({ env: {} })]), "E_KEY_FILE");
    await chmod(path, 0o600);
    expect(await provider.load()).not.toBeNull();
    if (process.getuid?.() === 0) {
      await chown(path, 65534, 65534);
      expect((await expectSecretsError(provider.load(), "E_KEY_FILE")).message).toBe(
        `key file ${path} belongs to user id 65534, not to this user (0)`,
      );
    }
  });

  it("names the line it cannot read, never its content", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "master.key");
    await writeFile(path, "# comment\nhunter2 is my password\n", { mode: 0o600 });
    const error = await expectSecretsError(keyFileProvider({ path }).load(), "E_KEY_FILE");
    expect(error.message).toBe(`key file ${path}, line 2: expected a key or "previous <key>"`);
    await writeFile(path, "hunter2\n", { mode: 0o600 });
    const bad = await expectSecretsError(keyFileProvider({ path }).load(), "E_BAD_REQUEST");
    expect(bad.message).not.toContain("hunter2");
  });

  it("lives in fw's config folder unless FW_SECRETS_KEY_FILE says otherwise", () => {
    expect(defaultKeyFilePath({ XDG_CONFIG_HOME: "/cfg" }, "linux")).toBe(join("/cfg", "fw", "secrets-master.key"));
    expect(defaultKeyFilePath({ FW_SECRETS_KEY_FILE: "/run/key" }, "linux")).toBe("/run/key");
    expect(defaultKeyFilePath({ APPDATA: "C:\\Users\\a\\AppData\\Roaming" }, "win32")).toBe(
      join("C:\\Users\\a\\AppData\\Roaming", "fw", "secrets-master.key"),
    );
  });
});

describe("environment provider", () => {
  it("reads the key and the previous keys of a rotation, and cannot be written", async () => {
    const current = await MasterKey.generate();
    const previous = await MasterKey.generate();
    const provider = envProvider({
      env: { FW_SECRETS_MASTER_KEY: current.toText(), FW_SECRETS_PREVIOUS_MASTER_KEY: ` ${previous.toText()} ,` },
    });
    const keys = await provider.load();
    expect([keys?.current.id, keys?.previous.map((k) => k.id)]).toEqual([current.id, [previous.id]]);
    expect(provider.store).toBeUndefined();
    expect(await provider.unavailableReason()).toMatch(/^fw cannot set FW_SECRETS_MASTER_KEY/);
    expect(await envProvider({ env: { FW_SECRETS_MASTER_KEY: "" } }).load()).toBeNull();
    const bad = await expectSecretsError(
      envProvider({ env: { FW_SECRETS_MASTER_KEY: "correct horse battery staple" } }).load(),
      "E_BAD_REQUEST",
    );
    expect(bad.message).not.toContain("horse");
  });
});

describe("provider chain", () => {
  it("takes the first provider with a key, in the order keychain, environment, key file", async () => {
    await using dir = await tempDir();
    const fromEnv = await MasterKey.generate();
    const fromFile = await MasterKey.generate();
    const keyFile = join(dir.path, "master.key");
    await keyFileProvider({ path: keyFile }).store?.(fromFile);
    const env = { FW_SECRETS_MASTER_KEY: fromEnv.toText(), FW_SECRETS_KEY_FILE: keyFile };
    const providers = defaultProviders({ env });
    expect(providers.map((p) => p.name)).toEqual(["keychain", "env", "file"]);
    // The keychain cannot be reached here: it is passed over.
    const loaded = await withBus(unreachableBus, () => loadMasterKeys(providers));
    expect([loaded.current.id, loaded.provider.name, loaded.source]).toEqual([
      fromEnv.id,
      "env",
      "FW_SECRETS_MASTER_KEY",
    ]);
    const fileFirst = defaultProviders({ env: { ...env, FW_SECRETS_KEY_PROVIDERS: "file, env" } });
    expect((await loadMasterKeys(fileFirst)).current.id).toBe(fromFile.id);
    expect(() => parseProviderOrder("env,vault")).toThrow(
      'FW_SECRETS_KEY_PROVIDERS: unknown master-key provider "vault" (use keychain, env, file)',
    );
  });

  it("says what it tried when no provider has a key", async () => {
    await using dir = await tempDir();
    const keyFile = join(dir.path, "none.key");
    const providers = defaultProviders({ env: { FW_SECRETS_KEY_FILE: keyFile }, keychain: { service: "fw-none" } });
    const error = await withBus(unreachableBus, () => expectSecretsError(loadMasterKeys(providers), "E_NO_MASTER_KEY"));
    expect(error.message).toMatch(
      /^no master key: the OS keychain \((Secret Service|macOS Keychain|Windows Credential Manager), service "fw-none"\): cannot connect: .+; FW_SECRETS_MASTER_KEY has none; key file .+none\.key has none\. Run `fw secrets init` to create one, or set FW_SECRETS_MASTER_KEY$/,
    );
  });

  it("creates a key in the best provider that can keep it, and never replaces one", async () => {
    await using dir = await tempDir();
    const keyFile = join(dir.path, "sub", "master.key");
    const providers = [
      keychainProvider({ service: "fw-unreachable" }),
      envProvider({ env: {} }),
      keyFileProvider({ path: keyFile }),
    ];
    const created = await withBus(unreachableBus, () => initMasterKey(providers));
    expect(created.created).toBe(true);
    expect(created.provider.name).toBe("file");
    expect(created.skipped).toHaveLength(2);
    expect(created.skipped[0]).toMatch(/^the OS keychain .*: cannot connect/);
    expect(created.skipped[1]).toMatch(/^FW_SECRETS_MASTER_KEY: fw cannot set/);
    const again = await withBus(unreachableBus, () => initMasterKey(providers));
    expect([again.created, again.key.id]).toEqual([false, created.key.id]);
    await expectSecretsError(
      withBus(unreachableBus, () => initMasterKey(providers, { only: "keychain" })),
      "E_CONFLICT",
    );
    const memory = memoryProvider();
    expect((await initMasterKey([envProvider({ env: {} }), memory], { only: "file" })).key.id).toBe(
      memory.keys?.current.id,
    );
    await expectSecretsError(initMasterKey([envProvider({ env: {} })]), "E_NO_MASTER_KEY");
  });
});
