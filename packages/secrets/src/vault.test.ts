import { AuditLog } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { beforeEach, describe, expect, it } from "vitest";
import {
  dump,
  everythingShown,
  expectNoPlaintext,
  expectSecretsError,
  memoryProvider,
  ringOf,
  user,
} from "../test/helpers.js";
import type { SecretsError } from "./errors.js";
import type { VersionFile } from "./format.js";
import { MasterKey, type MasterKeyRing } from "./master-key.js";
import { parseSecretsPolicy } from "./policy.js";
import { SecretsVault, type SecretsVaultOptions } from "./vault.js";

const decoder = new TextDecoder();
let now = Date.parse("2025-06-01T12:00:00Z");
const clock = () => now;
const DAY = 86_400_000;

const VALUE_1 = "npm_v4lue-0ne-AAAAAAAAAAAAAAAAAAAA";
const VALUE_2 = "npm_v4lue-tw0-BBBBBBBBBBBBBBBBBBBB";
const VALUE_3 = "npm_v4lue-thr33-CCCCCCCCCCCCCCCCCC";

/** Counts storage reads, to tell cache hits from storage reads. */
function counting(driver: StorageDriver): StorageDriver & { gets: number } {
  const wrapped = Object.create(driver) as StorageDriver & { gets: number };
  wrapped.gets = 0;
  wrapped.get = (key, options) => {
    wrapped.gets++;
    return driver.get(key, options);
  };
  return wrapped;
}

async function readFile(storage: StorageDriver, key: string): Promise<VersionFile> {
  const object = await storage.get(key);
  if (!object) throw new Error(`${key} is missing`);
  return JSON.parse(decoder.decode(object.body)) as VersionFile;
}

async function writeFile(storage: StorageDriver, key: string, file: unknown): Promise<void> {
  await storage.put(key, JSON.stringify(file));
}

function flipBit(base64url: string, index = 5): string {
  const bytes = Buffer.from(base64url, "base64url");
  bytes[index] = (bytes[index] as number) ^ 0x01;
  return bytes.toString("base64url");
}

describe("SecretsVault", () => {
  let storage: StorageDriver;
  let ring: MasterKeyRing;
  let errors: SecretsError[];
  const vault = (options: Partial<SecretsVaultOptions> = {}) =>
    new SecretsVault({ storage, masterKeys: ring, clock, cacheTtlMs: 0, ...options });
  const expectError = async (promise: Promise<unknown>, code: Parameters<typeof expectSecretsError>[1]) => {
    const error = await expectSecretsError(promise, code);
    errors.push(error);
    return error;
  };

  beforeEach(async () => {
    now = Date.parse("2025-06-01T12:00:00Z");
    storage = memoryDriver();
    ring = await ringOf();
    errors = [];
    return () => {
      // Whatever failed, no error told a value.
      for (const error of errors) expectNoPlaintext(everythingShown(error), [VALUE_1, VALUE_2, VALUE_3]);
    };
  });

  describe("versions", () => {
    it("sets v1, rotates to new versions and keeps the old ones readable by number", async () => {
      const v = vault();
      expect(await v.setSecret("uplinks/public/token", VALUE_1)).toMatchObject({
        name: "uplinks/public/token",
        version: 1,
        op: "set",
        actor: "operator",
        masterKeyId: ring.current.id,
        current: true,
      });
      now += DAY;
      expect((await v.rotateSecret("uplinks/public/token", VALUE_2)).version).toBe(2);
      now += DAY;
      expect((await v.rotateSecret("uplinks/public/token", VALUE_3)).version).toBe(3);

      expect(await v.getSecret("uplinks/public/token")).toBe(VALUE_3);
      expect(await v.getSecret("uplinks/public/token", { version: 1 })).toBe(VALUE_1);
      expect(await v.getSecret("uplinks/public/token", { version: 2 })).toBe(VALUE_2);
      const versions = await v.getSecretVersions("uplinks/public/token");
      expect(versions.map((x) => [x.version, x.op, x.current, x.created])).toEqual([
        [1, "set", false, "2025-06-01T12:00:00.000Z"],
        [2, "rotate", false, "2025-06-02T12:00:00.000Z"],
        [3, "rotate", true, "2025-06-03T12:00:00.000Z"],
      ]);
      await expectError(v.getSecret("uplinks/public/token", { version: 4 }), "E_NOT_FOUND");
      await expectError(v.getSecret("uplinks/public/token", { version: 0 }), "E_BAD_REQUEST");
    });

    it("refuses to set a live secret, to rotate a missing one, and empty or bad input", async () => {
      const v = vault();
      await v.setSecret("a", VALUE_1);
      const exists = await expectError(v.setSecret("a", VALUE_2), "E_CONFLICT");
      expect(exists.message).toBe("secret a exists (v1): rotate it to add a version");
      expect((await expectError(v.rotateSecret("b", VALUE_2), "E_NOT_FOUND")).message).toBe("no secret named b");
      await expectError(v.getSecret("b"), "E_NOT_FOUND");
      await expectError(v.setSecret("c", ""), "E_BAD_REQUEST");
      await expectError(v.setSecret("../etc/passwd", VALUE_1), "E_BAD_REQUEST");
      await expectError(v.setSecret("a@1", VALUE_1), "E_BAD_REQUEST");
      await expectError(v.setSecret("big", "x".repeat(64 * 1024 + 1)), "E_BAD_REQUEST");
      await expectError(v.setSecret("d", VALUE_1, { rotateEvery: "soon" }), "E_BAD_REQUEST");
      expect(await v.getSecret("a")).toBe(VALUE_1);
    });

    it("deletes with a marker that keeps the history, and brings the name back with set", async () => {
      const v = vault();
      await v.setSecret("db/password", VALUE_1);
      await v.rotateSecret("db/password", VALUE_2);
      expect(await v.deleteSecret("db/password")).toEqual({ name: "db/password", version: 3, purged: false });
      const gone = await expectError(v.getSecret("db/password"), "E_NOT_FOUND");
      expect(gone.message).toBe(
        "secret db/password was deleted (v3); its history is kept: fw secrets versions db/password",
      );
      await expectError(v.rotateSecret("db/password", VALUE_3), "E_NOT_FOUND");
      await expectError(v.deleteSecret("db/password"), "E_NOT_FOUND");
      expect(await v.getSecret("db/password", { version: 2 })).toBe(VALUE_2);
      await expectError(v.getSecret("db/password", { version: 3 }), "E_NOT_FOUND");
      expect(await v.listSecrets()).toEqual([]);
      expect((await v.listSecrets({ includeDeleted: true })).map((s) => [s.name, s.deleted])).toEqual([
        ["db/password", true],
      ]);

      expect((await v.setSecret("db/password", VALUE_3)).version).toBe(4);
      expect(await v.getSecret("db/password")).toBe(VALUE_3);
      expect((await v.getSecretVersions("db/password")).map((x) => `${x.version}:${x.op}`)).toEqual([
        "1:set",
        "2:rotate",
        "3:delete",
        "4:set",
      ]);
    });

    it("purges every version and the index", async () => {
      const v = vault();
      await v.setSecret("ci/token", VALUE_1);
      await v.rotateSecret("ci/token", VALUE_2);
      await v.setSecret("ci/token-2", VALUE_3);
      expect(await v.deleteSecret("ci/token", { purge: true })).toEqual({ name: "ci/token", purged: true, removed: 3 });
      expect([...(await dump(storage, "secrets/ci/token/")).keys()]).toEqual([]);
      await expectError(v.getSecretVersions("ci/token"), "E_NOT_FOUND");
      await expectError(v.deleteSecret("ci/token", { purge: true }), "E_NOT_FOUND");
      expect(await v.getSecret("ci/token-2")).toBe(VALUE_3);
    });

    it("lists secrets by name and prefix", async () => {
      const v = vault();
      await v.setSecret("uplinks/public/token", VALUE_1);
      await v.setSecret("uplinks/private/token", VALUE_2, { rotateEvery: "30d" });
      await v.setSecret("storage/r2-secret-key", VALUE_3);
      expect((await v.listSecrets()).map((s) => s.name)).toEqual([
        "storage/r2-secret-key",
        "uplinks/private/token",
        "uplinks/public/token",
      ]);
      expect(await v.listSecrets({ prefix: "uplinks/" })).toEqual([
        {
          name: "uplinks/private/token",
          latest: 1,
          deleted: false,
          created: "2025-06-01T12:00:00.000Z",
          updated: "2025-06-01T12:00:00.000Z",
          rotated: "2025-06-01T12:00:00.000Z",
          rotateEvery: "30d",
        },
        expect.objectContaining({ name: "uplinks/public/token" }),
      ]);
    });

    it("lands every one of many concurrent rotations as its own version", async () => {
      await vault().setSecret("hot", "initial value");
      const writers = 24;
      // Separate vault instances: nothing shared but the storage, as with several processes.
      const results = await Promise.all(
        Array.from({ length: writers }, (_, i) => vault().rotateSecret("hot", `value from writer ${i}`)),
      );
      const numbers = results.map((r) => r.version).sort((a, b) => a - b);
      expect(numbers).toEqual(Array.from({ length: writers }, (_, i) => i + 2));
      const reader = vault();
      for (const result of results) {
        const writer = results.indexOf(result);
        expect(await reader.getSecret("hot", { version: result.version })).toBe(`value from writer ${writer}`);
      }
      expect((await reader.getSecretVersions("hot")).length).toBe(writers + 1);
      expect((await reader.listSecrets())[0]).toMatchObject({ latest: writers + 1, deleted: false });
    });

    it("lets only one of two racing creations win", async () => {
      const outcomes = await Promise.allSettled([vault().setSecret("new", VALUE_1), vault().setSecret("new", VALUE_2)]);
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.find((o) => o.status === "rejected");
      expect(refused?.status === "rejected" && refused.reason).toMatchObject({ code: "E_CONFLICT" });
      expect((await vault().getSecretVersions("new")).length).toBe(1);
    });

    it("repairs an index left behind by a writer that stopped between its two writes", async () => {
      const v = vault();
      await v.setSecret("a", VALUE_1);
      const index = await storage.get("secrets/a/@meta.json");
      await v.rotateSecret("a", VALUE_2);
      // As if the process died after writing v2 but before updating the index.
      await storage.put("secrets/a/@meta.json", index?.body ?? "");
      expect((await v.rotateSecret("a", VALUE_3)).version).toBe(3);
      expect(await v.getSecret("a")).toBe(VALUE_3);
      expect(await v.getSecret("a", { version: 2 })).toBe(VALUE_2);
    });
  });

  describe("encryption at rest", () => {
    it("stores no value, data key or master key in the clear", async () => {
      const v = vault({ audit: new AuditLog(storage, { clock }) });
      await v.setSecret("a", VALUE_1);
      await v.rotateSecret("a", VALUE_2);
      await v.setSecret("b", VALUE_3);
      await v.getSecret("a");
      const everything = await dump(storage);
      expect([...everything.keys()].some((key) => key.startsWith("audit/"))).toBe(true);
      expectNoPlaintext(everything, [VALUE_1, VALUE_2, VALUE_3]);
      const masterKeyText = ring.current.toText().slice("fwmk1:".length);
      for (const [key, text] of everything) expect(text, key).not.toContain(masterKeyText);

      const file = await readFile(storage, "secrets/a/@v/0000000001.json");
      expect(file).toMatchObject({
        format: "fw-secret-version/1",
        name: "a",
        version: 1,
        op: "set",
        value: { alg: "A256GCM", wrappedKey: { alg: "A256GCM", masterKeyId: ring.current.id } },
      });
      // A fresh data key per version.
      const second = await readFile(storage, "secrets/a/@v/0000000002.json");
      expect(second.value?.keyId).not.toBe(file.value?.keyId);
      expect(second.value?.wrappedKey.ciphertext).not.toBe(file.value?.wrappedKey.ciphertext);
    });

    it("reports a flipped bit in the value or the wrapped key as tampering, with no plaintext", async () => {
      const v = vault();
      await v.setSecret("a", VALUE_1);
      const key = "secrets/a/@v/0000000001.json";
      const original = await readFile(storage, key);
      const value = original.value as NonNullable<VersionFile["value"]>;

      await writeFile(storage, key, { ...original, value: { ...value, ciphertext: flipBit(value.ciphertext) } });
      const flipped = await expectError(v.getSecret("a"), "E_INTEGRITY");
      expect(flipped.message).toBe(
        "the value of a v1 fails its integrity check: the file was altered, damaged, or moved from another secret or version",
      );

      await writeFile(storage, key, { ...original, value: { ...value, iv: flipBit(value.iv, 0) } });
      await expectError(v.getSecret("a"), "E_INTEGRITY");

      const wrappedKey = { ...value.wrappedKey, ciphertext: flipBit(value.wrappedKey.ciphertext) };
      await writeFile(storage, key, { ...original, value: { ...value, wrappedKey } });
      expect((await expectError(v.getSecret("a"), "E_INTEGRITY")).message).toMatch(/^the data key of a v1 fails/);

      await writeFile(storage, key, { ...original, value: { ...value, keyId: "dk_AAAAAAAAAAAAAAAA" } });
      await expectError(v.getSecret("a"), "E_INTEGRITY");

      await storage.put(key, "{not json");
      expect((await expectError(v.getSecret("a"), "E_INTEGRITY")).message).toBe(
        "the file of a v1 is not a secret version file",
      );

      await writeFile(storage, key, original);
      expect(await v.getSecret("a")).toBe(VALUE_1);
    });

    it("refuses a version file swapped in from another version or secret, even with its labels edited", async () => {
      const v = vault();
      await v.setSecret("a", VALUE_1);
      await v.rotateSecret("a", VALUE_2);
      await v.setSecret("b", VALUE_3);
      const v1 = await readFile(storage, "secrets/a/@v/0000000001.json");
      const b1 = await readFile(storage, "secrets/b/@v/0000000001.json");

      await writeFile(storage, "secrets/a/@v/0000000002.json", v1);
      const swapped = await expectError(v.getSecret("a"), "E_INTEGRITY");
      expect(swapped.message).toBe(
        "the file of a v2 says it holds a v1: it was swapped or copied; restore it from a backup",
      );
      await writeFile(storage, "secrets/a/@v/0000000002.json", { ...v1, version: 2 });
      await expectError(v.getSecret("a"), "E_INTEGRITY");
      await writeFile(storage, "secrets/a/@v/0000000002.json", { ...b1, name: "a", version: 2 });
      await expectError(v.getSecret("a"), "E_INTEGRITY");
      await writeFile(storage, "secrets/a/@v/0000000001.json", { ...b1, name: "a" });
      await expectError(v.getSecret("a", { version: 1 }), "E_INTEGRITY");
    });

    it("names the master key a version needs when another one is loaded, and will not write with it", async () => {
      await vault().setSecret("a", VALUE_1);
      const other = await ringOf();
      const wrong = vault({ masterKeys: other });
      const read = await expectError(wrong.getSecret("a"), "E_WRONG_MASTER_KEY");
      expect(read.message).toBe(
        `a v1 is encrypted under master key ${ring.current.id}, but the test's key ring holds ${other.current.id}: load the vault's master key`,
      );
      const write = await expectError(wrong.setSecret("b", VALUE_2), "E_WRONG_MASTER_KEY");
      expect(write.message).toContain(`this vault's data keys are wrapped with master key ${ring.current.id}`);
      expect([...(await dump(storage, "secrets/b/")).keys()]).toEqual([]);

      // A forged master key id leads to the integrity check, not to a decryption.
      const file = await readFile(storage, "secrets/a/@v/0000000001.json");
      const value = file.value as NonNullable<VersionFile["value"]>;
      await writeFile(storage, "secrets/a/@v/0000000001.json", {
        ...file,
        value: { ...value, wrappedKey: { ...value.wrappedKey, masterKeyId: other.current.id } },
      });
      await expectError(wrong.getSecret("a"), "E_INTEGRITY");
    });
  });

  describe("cache", () => {
    it("serves reads from memory until the TTL passes, and drops entries on its own writes", async () => {
      const counted = counting(storage);
      const cached = new SecretsVault({ storage: counted, masterKeys: ring, clock, cacheTtlMs: 60_000, audit: false });
      await cached.setSecret("a", VALUE_1);
      expect(await cached.getSecret("a")).toBe(VALUE_1);
      const reads = counted.gets;
      expect(await cached.getSecret("a")).toBe(VALUE_1);
      expect(counted.gets).toBe(reads);

      // Another process rotates: seen once the entry expires.
      await vault().rotateSecret("a", VALUE_2);
      now += 59_000;
      expect(await cached.getSecret("a")).toBe(VALUE_1);
      now += 2_000;
      expect(await cached.getSecret("a")).toBe(VALUE_2);
      expect(counted.gets).toBeGreaterThan(reads);

      await cached.rotateSecret("a", VALUE_3);
      expect(await cached.getSecret("a")).toBe(VALUE_3);
      await cached.deleteSecret("a");
      await expectError(cached.getSecret("a"), "E_NOT_FOUND");
    });
  });

  describe("audit", () => {
    it("records who read and wrote which version, never the value", async () => {
      const audit = new AuditLog(storage, { clock });
      const v = vault({ audit, cacheTtlMs: 60_000 });
      await v.setSecret("uplinks/public/token", VALUE_1);
      await v.rotateSecret("uplinks/public/token", VALUE_2);
      await v.getSecret("uplinks/public/token");
      await v.getSecret("uplinks/public/token");
      await v.getSecret("uplinks/public/token", { version: 1 });
      await v.deleteSecret("uplinks/public/token");
      await v.deleteSecret("uplinks/public/token", { purge: true });
      const events = await audit.query({ action: "secret" });
      expect(
        events.map((e) => [e.action, e.actor, e.version, e.outcome, e.details?.name, e.details?.cached ?? false]),
      ).toEqual([
        ["secret.set", "operator", "1", "success", "uplinks/public/token", false],
        ["secret.rotate", "operator", "2", "success", "uplinks/public/token", false],
        ["secret.read", "operator", "2", "success", "uplinks/public/token", false],
        ["secret.read", "operator", "2", "success", "uplinks/public/token", true],
        ["secret.read", "operator", "1", "success", "uplinks/public/token", false],
        ["secret.delete", "operator", "3", "success", "uplinks/public/token", false],
        ["secret.purge", "operator", undefined, "success", "uplinks/public/token", false],
      ]);
      expectNoPlaintext(JSON.stringify(events), [VALUE_1, VALUE_2]);
    });
  });

  describe("policy", () => {
    const policy = parseSecretsPolicy({
      rules: {
        "uplinks/**": { read: ["role:publisher", "role:deploy+env:prod"], write: ["user:alice"] },
        "uplinks/public/*": { read: ["$authenticated"] },
        "ci/*": { read: ["env:ci"], write: ["team:acme:ops"] },
      },
    });

    it("lets callers read and write only what the rules allow, and records refusals", async () => {
      const audit = new AuditLog(storage, { clock });
      const v = vault({ policy, audit });
      const alice = user("alice");
      const bob = user("bob");
      const deployer = user("dan", { roles: ["deploy"], environment: "prod" });
      const deployerInCi = user("dan", { roles: ["deploy"], environment: "ci" });
      await v.setSecret("uplinks/private/token", VALUE_1, { as: alice });
      await v.setSecret("uplinks/public/token", VALUE_2, { as: alice });

      expect(await v.getSecret("uplinks/private/token", { as: deployer })).toBe(VALUE_1);
      expect(await v.getSecret("uplinks/private/token", { as: user("pat", { roles: ["publisher"] }) })).toBe(VALUE_1);
      const denied = await expectError(v.getSecret("uplinks/private/token", { as: deployerInCi }), "E_FORBIDDEN");
      expect(denied.message).toBe(
        'dan (token fw_abc…) may not read secret uplinks/private/token: rule "uplinks/**" allows role:publisher, role:deploy+env:prod',
      );
      expect(await v.getSecret("uplinks/public/token", { as: bob })).toBe(VALUE_2);
      await expectError(v.getSecret("uplinks/public/token", { as: { kind: "anonymous" } }), "E_FORBIDDEN");
      await expectError(v.rotateSecret("uplinks/public/token", VALUE_3, { as: bob }), "E_FORBIDDEN");
      await expectError(v.deleteSecret("uplinks/public/token", { as: bob, purge: true }), "E_FORBIDDEN");
      expect((await v.rotateSecret("uplinks/public/token", VALUE_3, { as: alice })).actor).toBe("alice");

      await v.setSecret("ci/npm-token", VALUE_1, { as: user("olga", { teams: ["acme:ops"] }) });
      expect(await v.getSecret("ci/npm-token", { as: user("runner", { environment: "ci" }) })).toBe(VALUE_1);
      const nobody = await expectError(v.getSecret("other", { as: bob }), "E_FORBIDDEN");
      expect(nobody.message).toBe("bob may not read secret other: no rule gives read access, so only admins may");

      expect((await v.listSecrets({ as: bob })).map((s) => s.name)).toEqual(["uplinks/public/token"]);
      await expectError(v.getSecretVersions("ci/npm-token", { as: bob }), "E_FORBIDDEN");
      await expectError(v.rotateMasterKey({ as: alice }), "E_FORBIDDEN");

      const refusals = (await audit.query({ action: "secret" })).filter((e) => e.outcome === "failure");
      expect(refusals.map((e) => [e.action, e.actor, e.details?.name])).toEqual([
        ["secret.read", "dan", "uplinks/private/token"],
        ["secret.read", undefined, "uplinks/public/token"],
        ["secret.rotate", "bob", "uplinks/public/token"],
        ["secret.purge", "bob", "uplinks/public/token"],
        ["secret.read", "bob", "other"],
      ]);
      expect(refusals[0]?.tokenKey).toBe("key-of-dan");
    });
  });

  describe("rotation schedules", () => {
    it("lists secrets due for rotation from their own schedule or the policy's", async () => {
      const policy = parseSecretsPolicy({ rules: { "uplinks/**": { rotateEvery: "90d" } } });
      const v = vault({ policy });
      await v.setSecret("uplinks/public/token", VALUE_1);
      await v.setSecret("db/password", VALUE_2, { rotateEvery: "30d" });
      await v.setSecret("static", VALUE_3);
      expect(await v.dueSecrets()).toEqual([]);

      now += 20 * DAY;
      expect(await v.dueSecrets()).toEqual([
        {
          name: "db/password",
          version: 1,
          rotated: "2025-06-01T12:00:00.000Z",
          rotateEvery: "30d",
          schedule: "secret",
          due: "2025-07-01T12:00:00.000Z",
          overdue: false,
        },
      ]);
      now += 80 * DAY;
      expect((await v.dueSecrets()).map((d) => [d.name, d.overdue, d.schedule])).toEqual([
        ["db/password", true, "secret"],
        ["uplinks/public/token", true, "policy"],
      ]);
      await v.rotateSecret("db/password", VALUE_3);
      expect((await v.dueSecrets({ withinDays: 0 })).map((d) => d.name)).toEqual(["uplinks/public/token"]);
      await v.deleteSecret("uplinks/public/token");
      expect(await v.dueSecrets({ withinDays: 0 })).toEqual([]);
    });
  });

  describe("master key rotation", () => {
    it("re-wraps every data key under a new master key without re-encrypting a value", async () => {
      const provider = memoryProvider({ current: ring.current, previous: [] });
      const v = vault({ masterKeys: [provider], audit: new AuditLog(storage, { clock }) });
      await v.setSecret("a", VALUE_1);
      await v.rotateSecret("a", VALUE_2);
      await v.setSecret("b/c", VALUE_3);
      await v.deleteSecret("b/c");
      const before = await dump(storage, "secrets/");

      const result = await v.rotateMasterKey();
      const newKey = provider.keys?.current as MasterKey;
      expect(result).toEqual({
        from: ring.current.id,
        to: newKey.id,
        rewrapped: 3,
        source: "the test's memory provider",
      });
      expect(newKey.id).not.toBe(ring.current.id);
      expect(provider.keys?.previous).toEqual([]);

      const after = await dump(storage, "secrets/");
      for (const key of [
        "secrets/a/@v/0000000001.json",
        "secrets/a/@v/0000000002.json",
        "secrets/b/c/@v/0000000001.json",
      ]) {
        const old = JSON.parse(before.get(key) as string) as VersionFile;
        const next = JSON.parse(after.get(key) as string) as VersionFile;
        expect(next.value?.ciphertext).toBe(old.value?.ciphertext);
        expect(next.value?.iv).toBe(old.value?.iv);
        expect(next.value?.wrappedKey.masterKeyId).toBe(newKey.id);
        expect(next.value?.wrappedKey.ciphertext).not.toBe(old.value?.wrappedKey.ciphertext);
      }
      expect(JSON.parse(after.get("secrets/@vault.json") as string)).toMatchObject({ masterKeyId: newKey.id });

      const withNewKey = vault({ masterKeys: await ringOf(newKey) });
      expect(await withNewKey.getSecret("a")).toBe(VALUE_2);
      expect(await withNewKey.getSecret("a", { version: 1 })).toBe(VALUE_1);
      expect(await withNewKey.getSecret("b/c", { version: 1 })).toBe(VALUE_3);
      await expectError(vault().getSecret("a"), "E_WRONG_MASTER_KEY");
      await expectError(vault().setSecret("z", VALUE_1), "E_WRONG_MASTER_KEY");
      expect(await v.getSecret("a", { version: 1 })).toBe(VALUE_1);
      expect((await v.setSecret("z", VALUE_1)).masterKeyId).toBe(newKey.id);
    });

    it("finishes a rotation that stopped half-way, from the previous key its provider still holds", async () => {
      const old = ring.current;
      await vault().setSecret("a", VALUE_1);
      await vault().setSecret("b", VALUE_2);
      const next = await MasterKey.generate();
      // The provider got the new key, one version was re-wrapped, then the process died.
      const provider = memoryProvider({ current: next, previous: [old] });
      const partial = vault({ masterKeys: await ringOf(next, [old]) });
      expect(await partial.getSecret("a")).toBe(VALUE_1);

      const v = vault({ masterKeys: [provider] });
      const result = await v.rotateMasterKey();
      expect(result).toMatchObject({ from: old.id, to: next.id, rewrapped: 2 });
      expect(provider.writes).toBe(0);
      expect(provider.keys?.previous).toEqual([]);
      expect(await vault({ masterKeys: await ringOf(next) }).getSecret("b")).toBe(VALUE_2);
    });

    it("explains what to do when the key comes from a provider fw cannot write", async () => {
      await vault().setSecret("a", VALUE_1);
      const readOnly = { ...memoryProvider({ current: ring.current, previous: [] }), store: undefined };
      const error = await expectError(vault({ masterKeys: [readOnly] }).rotateMasterKey(), "E_BAD_REQUEST");
      expect(error.message).toContain("set FW_SECRETS_PREVIOUS_MASTER_KEY to the current key");

      const next = await MasterKey.generate();
      const env = { ...memoryProvider({ current: next, previous: [ring.current] }), dropPrevious: undefined };
      const result = await vault({ masterKeys: [env] }).rotateMasterKey();
      expect(result).toMatchObject({
        rewrapped: 1,
        note: "every data key now uses the new master key: unset FW_SECRETS_PREVIOUS_MASTER_KEY",
      });
    });
  });

  describe("generateVersionGraph", () => {
    it("draws the history newest first in ASCII", async () => {
      const v = vault({ identity: user("alice", { admin: true }) });
      await v.setSecret("uplinks/public/token", VALUE_1, { rotateEvery: "90d" });
      now += 10 * DAY;
      await v.rotateSecret("uplinks/public/token", VALUE_2, { as: user("ci", { admin: true }) });
      now += 10 * DAY;
      await v.rotateSecret("uplinks/public/token", VALUE_3);
      const id = ring.current.id;
      expect(await v.generateVersionGraph("uplinks/public/token")).toBe(
        [
          "uplinks/public/token: 3 versions, current v3, rotate every 90d (due 2025-09-19)",
          `* v3  current  2025-06-21 12:00Z  rotate by alice  ${id}`,
          "|",
          `o v2           2025-06-11 12:00Z  rotate by ci     ${id}`,
          "|",
          `o v1           2025-06-01 12:00Z  set by alice     ${id}`,
        ].join("\n"),
      );
      await v.deleteSecret("uplinks/public/token");
      expect((await v.generateVersionGraph("uplinks/public/token")).split("\n").slice(0, 2)).toEqual([
        "uplinks/public/token: 4 versions, deleted, rotate every 90d",
        "x v4  deleted  2025-06-21 12:00Z  delete by alice",
      ]);
    });
  });
});
