import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { expectSecretsError, ringOf } from "../test/helpers.js";
import { findSecretReferences, resolveSecretReferences } from "./resolve.js";
import { SecretsVault } from "./vault.js";

async function vaultWith(secrets: Record<string, string[]>, storage = memoryDriver()) {
  const vault = new SecretsVault({ storage, masterKeys: await ringOf(), audit: false });
  for (const [name, [first, ...rest]] of Object.entries(secrets)) {
    await vault.setSecret(name, first as string);
    for (const value of rest) await vault.rotateSecret(name, value);
  }
  return vault;
}

const config = {
  listen: { port: 4873 },
  storage: { driver: "s3", bucket: "npm", secretAccessKey: "secret:storage/r2-secret-key" },
  uplinks: { public: { url: "https://upstream.example", token: "secret:uplinks/public/token" } },
  upstreams: [{ token: "secret:uplinks/public/token@1" }, "plain", 3, null],
  note: "secrets: are fine in prose",
};

describe("findSecretReferences", () => {
  it("finds every reference with its dotted path and pinned version", () => {
    expect(findSecretReferences(config)).toEqual([
      { path: "storage.secretAccessKey", name: "storage/r2-secret-key" },
      { path: "uplinks.public.token", name: "uplinks/public/token" },
      { path: "upstreams.0.token", name: "uplinks/public/token", version: 1 },
    ]);
    expect(findSecretReferences("secret:a", "config")).toEqual([{ path: "config", name: "a" }]);
  });

  it("refuses a malformed reference, naming where it is", () => {
    expect(() => findSecretReferences({ a: { b: "secret:not a name" } })).toThrow(
      'a.b: "secret:not a name" is not a secret reference; write secret:<name> or secret:<name>@<version>, e.g. secret:uplinks/public/token',
    );
    expect(() => findSecretReferences({ a: "secret:x@0" })).toThrow(/^a: "secret:x@0" is not a secret reference/);
  });
});

describe("resolveSecretReferences", () => {
  it("replaces references with values in a copy, leaving the input alone", async () => {
    const vault = await vaultWith({
      "storage/r2-secret-key": ["r2-key-value"],
      "uplinks/public/token": ["token-v1", "token-v2"],
    });
    const before = structuredClone(config);
    expect(await resolveSecretReferences(config, vault)).toEqual({
      ...config,
      storage: { ...config.storage, secretAccessKey: "r2-key-value" },
      uplinks: { public: { ...config.uplinks.public, token: "token-v2" } },
      upstreams: [{ token: "token-v1" }, "plain", 3, null],
    });
    expect(config).toEqual(before);
    const plain = { a: 1 };
    expect(await resolveSecretReferences(plain, vault)).toBe(plain);
  });

  it("names every missing or deleted secret and its config path in one error", async () => {
    const vault = await vaultWith({ "uplinks/public/token": ["token-v1"] });
    await vault.deleteSecret("uplinks/public/token");
    const error = await expectSecretsError(resolveSecretReferences(config, vault), "E_MISSING_REFERENCE");
    expect(error.message).toBe(
      "the config refers to secrets that cannot be read: " +
        "storage.secretAccessKey (secret:storage/r2-secret-key): no secret named storage/r2-secret-key; " +
        "uplinks.public.token (secret:uplinks/public/token): secret uplinks/public/token was deleted (v2); its history is kept: fw secrets versions uplinks/public/token. " +
        "Create them with `fw secrets set <name>`",
    );
  });

  it("keeps the code of other failures and adds the path", async () => {
    const storage = memoryDriver();
    await vaultWith({ "storage/r2-secret-key": ["x"], "uplinks/public/token": ["y"] }, storage);
    const otherKey = new SecretsVault({ storage, masterKeys: await ringOf(), audit: false });
    const error = await expectSecretsError(resolveSecretReferences(config, otherKey), "E_WRONG_MASTER_KEY");
    expect(error.message).toMatch(
      /^storage.secretAccessKey \(secret:storage\/r2-secret-key\): storage\/r2-secret-key v1 is encrypted under master key mk_/,
    );
    expect(error).toMatchObject({ secret: "storage/r2-secret-key", version: 1 });
  });
});
