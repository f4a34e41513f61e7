import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MasterKey, operatorIdentity, SecretsVault } from "@fw/secrets";
import { fsDriver } from "@fw/storage-r2/fs";
import { memoryDriver } from "@fw/storage-r2/memory";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolveConfigSecrets, startRegistry } from "../src/adapters/node.js";
import { createRegistry } from "../src/app.js";
import { parseConfig } from "../src/config/index.js";
import { testConfig } from "./helpers/registry.js";

describe("trustProxy", () => {
  it("takes the client address from X-Forwarded-For only when the socket is a trusted proxy", () => {
    const registry = createRegistry(
      { ...testConfig("/unused"), trustProxy: ["10.0.0.0/8", "127.0.0.1"] },
      { storage: memoryDriver() },
    );
    expect(registry.clientIp("10.1.2.3", "203.0.113.7")).toBe("203.0.113.7");
    // A client cannot put itself first: the nearest untrusted hop from the right is the client.
    expect(registry.clientIp("10.1.2.3", "198.51.100.1, 203.0.113.7, 10.9.9.9")).toBe("203.0.113.7");
    expect(registry.clientIp("192.0.2.44", "203.0.113.7")).toBe("192.0.2.44");
    expect(registry.clientIp("127.0.0.1", undefined)).toBe("127.0.0.1");

    const untrusting = createRegistry(testConfig("/unused"), { storage: memoryDriver() });
    expect(untrusting.clientIp("10.1.2.3", "203.0.113.7")).toBe("10.1.2.3");
  });

  it("is validated: a value that is not an address or range names its path", () => {
    expect(() => parseConfig({ trustProxy: ["10.0.0.0/8", "proxy.example"] })).toThrow(/trustProxy\.1/);
  });
});

describe("secret references in the config", () => {
  let dir: string;
  const saved = { ...process.env };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "fw-config-secrets-"));
    process.env.FW_SECRETS_KEY_PROVIDERS = "env";
    process.env.FW_SECRETS_MASTER_KEY = (await MasterKey.generate()).toText();
  });

  afterEach(async () => {
    process.env = { ...saved };
    await rm(dir, { recursive: true, force: true });
  });

  async function vaultWith(secrets: Record<string, string>) {
    const { defaultProviders } = await import("@fw/secrets");
    const vault = new SecretsVault({
      storage: fsDriver({ root: join(dir, "vault") }),
      masterKeys: defaultProviders(),
      identity: operatorIdentity("test"),
    });
    await vault.init();
    for (const [name, value] of Object.entries(secrets)) await vault.setSecret(name, value);
  }

  const s3 = (secretAccessKey: string) => ({
    driver: "s3" as const,
    bucket: "registry",
    endpoint: "http://127.0.0.1:9",
    accessKeyId: "fw",
    secretAccessKey,
  });

  it("are read from the vault at start-up; the parsed config keeps the reference", async () => {
    await vaultWith({ "storage/s3-secret-key": "s3cr3t-value" });
    const config = parseConfig({
      storage: s3("secret:storage/s3-secret-key"),
      secrets: { vault: join(dir, "vault") },
    });
    const resolved = await resolveConfigSecrets(config);
    expect(resolved.storage.driver === "s3" && resolved.storage.secretAccessKey).toBe("s3cr3t-value");
    expect(config.storage.driver === "s3" && config.storage.secretAccessKey).toBe("secret:storage/s3-secret-key");
  });

  it("a missing secret stops the start with the config path and the secret's name", async () => {
    await vaultWith({});
    const config = parseConfig({
      listen: { host: "127.0.0.1", port: 0 },
      storage: s3("secret:storage/s3-secret-key"),
      secrets: { vault: join(dir, "vault") },
      log: { level: "silent" },
    });
    await expect(startRegistry(config, { handleSignals: false })).rejects.toThrow(
      /storage\.secretAccessKey \(secret:storage\/s3-secret-key\)/,
    );
  });

  it("storage settings cannot come from a vault kept in that storage", async () => {
    const config = parseConfig({ storage: s3("secret:storage/s3-secret-key") });
    await expect(resolveConfigSecrets(config)).rejects.toThrow(/secrets\.vault/);
  });
});

describe("access rules in the audit trail", () => {
  it("a start with changed package rules is recorded once; an unchanged start is not", async () => {
    const { AuditLog } = await import("@fw/auth");
    const storage = memoryDriver();
    const start = async (packages: Record<string, { access: string[]; publish: string[] }>) => {
      const registry = createRegistry({ ...testConfig("/unused"), access: { packages } }, { storage });
      await registry.ready;
      await registry.close();
    };
    const open = { "**": { access: ["$all"], publish: ["$authenticated"] } };
    await start(open);
    await start(open);
    await start({ ...open, "@acme/*": { access: ["$authenticated"], publish: ["$authenticated"] } });
    const events = await new AuditLog(storage).query({ action: "policy.change" });
    expect(events.map((e) => [e.details?.rules, e.details?.first])).toEqual([
      [1, true],
      [2, false],
    ]);
  });
});
