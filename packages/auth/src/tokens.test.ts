import { createHash } from "node:crypto";
import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import { listKeys } from "./storage.js";
import { describeToken, type TokenDecision, TokenStore, tokenCoversPackage, tokenExpiry } from "./tokens.js";
import { UserStore } from "./users.js";

const DAY = 86_400_000;
let now = Date.parse("2025-06-01T12:00:00Z");
const clock = () => now;

function refusal(decision: TokenDecision): { code: string; reason: string } {
  if (decision.ok) throw new Error("expected a refusal");
  return { code: decision.code, reason: decision.reason };
}

describe("TokenStore", () => {
  let storage: StorageDriver;
  let users: UserStore;
  let tokens: TokenStore;
  let template: Map<string, Uint8Array>;

  // One scrypt hash for the whole file: copy the stored profile into each test's fresh storage.
  beforeAll(async () => {
    const seed = memoryDriver();
    await new UserStore(seed, { clock }).create("alice", "password-1");
    template = new Map();
    for await (const key of listKeys(seed, "")) template.set(key, (await seed.get(key))?.body as Uint8Array);
  });

  beforeEach(async () => {
    now = Date.parse("2025-06-01T12:00:00Z");
    storage = memoryDriver();
    for (const [key, body] of template) await storage.put(key, body);
    users = new UserStore(storage, { clock });
    tokens = new TokenStore(storage, { users, clock, cacheMs: 5_000 });
  });

  it("shows the token once and stores only its SHA-256", async () => {
    const { token, record } = await tokens.create("alice", { name: "laptop", description: "my laptop" });
    expect(token).toMatch(/^fw_[A-Za-z0-9_-]{40}$/);
    expect(record).toMatchObject({ user: "alice", prefix: token.slice(0, 9), readonly: false, cidr_whitelist: [] });
    expect(record.hash).toBe(createHash("sha256").update(token).digest("hex"));
    for await (const key of listKeys(storage, "")) {
      const text = new TextDecoder().decode((await storage.get(key))?.body);
      expect(text).not.toContain(token);
    }
    expect(await tokens.list("alice")).toEqual([record]);
    expect(describeToken(record)).not.toHaveProperty("hash");
    const decision = await tokens.verify(token, { clientIp: "10.1.2.3" });
    expect(decision).toMatchObject({ ok: true, record: { key: record.key }, user: { name: "alice" } });
  });

  it("validates options with messages a person can act on", async () => {
    const bad = [
      [{ cidr: ["10.0.0.0/33"] }, /invalid CIDR range "10.0.0.0\/33"/],
      [{ environment: "Prod!" }, /environment must be/],
      [{ scopes: ["acme"] }, /expected e.g. @acme/],
      [{ expiresInDays: -1 }, /expires must be/],
      [{ packagesAndScopesPermission: "admin" as "read-only" }, /read-only" or "read-write/],
    ] as const;
    for (const [options, message] of bad) {
      let error: unknown;
      await tokens.create("alice", options).catch((caught: unknown) => {
        error = caught;
      });
      expect(isAuthError(error, "E_BAD_REQUEST")).toBe(true);
      expect((error as Error).message).toMatch(message);
    }
    expect(isAuthError(await tokens.create("nobody").catch((e: unknown) => e), "E_NOT_FOUND")).toBe(true);
  });

  it("refuses malformed and unknown tokens", async () => {
    expect(refusal(await tokens.verify("npm_abc"))).toEqual({
      code: "E_UNAUTHORIZED",
      reason: "this is not an fw registry token: log in again with `npm login`",
    });
    expect(refusal(await tokens.verify(`fw_${"a".repeat(40)}`)).reason).toMatch(/^this token is unknown/);
  });

  it("refuses expired tokens after their date and allows them before", async () => {
    const { token } = await tokens.create("alice", { expiresInDays: 7 });
    now += 7 * DAY - 1;
    expect((await tokens.verify(token)).ok).toBe(true);
    now += 1;
    expect(refusal(await tokens.verify(token))).toEqual({
      code: "E_UNAUTHORIZED",
      reason: `this token (${token.slice(0, 9)}…) expired on 2025-06-08T12:00:00.000Z: create a new one with \`npm token create\``,
    });
  });

  it("rotation: lists tokens due soon and stops them at their maximum age", async () => {
    const { token, record } = await tokens.create("alice", { name: "ci", maxAgeDays: 30 });
    await tokens.create("alice", { name: "forever" });
    await tokens.create("alice", { name: "later", expiresInDays: 60 });
    expect(tokenExpiry(record)).toEqual({ at: now + 30 * DAY, why: "maxAge" });
    now += 20 * DAY;
    expect(await tokens.due({ withinDays: 14 })).toEqual([
      {
        kind: "token",
        user: "alice",
        key: record.key,
        prefix: record.prefix,
        name: "ci",
        due: "2025-07-01T12:00:00.000Z",
        overdue: false,
      },
    ]);
    now += 10 * DAY;
    expect(refusal(await tokens.verify(token)).reason).toMatch(/reached its maximum age of 30 days.*rotated/);
    expect((await tokens.due({ withinDays: 0 }))[0]).toMatchObject({ name: "ci", overdue: true });
  });

  it("refuses tokens from outside their CIDR allow-list and allows them inside", async () => {
    const { token } = await tokens.create("alice", { cidr: ["192.168.0.0/16", "2001:db8::/32"] });
    expect((await tokens.verify(token, { clientIp: "192.168.4.5" })).ok).toBe(true);
    expect((await tokens.verify(token, { clientIp: "::ffff:192.168.4.5" })).ok).toBe(true);
    expect((await tokens.verify(token, { clientIp: "2001:db8::1" })).ok).toBe(true);
    expect(refusal(await tokens.verify(token, { clientIp: "10.0.0.1" }))).toEqual({
      code: "E_FORBIDDEN",
      reason: "this token may only be used from 192.168.0.0/16, 2001:db8::/32, not from 10.0.0.1",
    });
    expect(refusal(await tokens.verify(token, {})).reason).toMatch(/not from an unknown address/);
  });

  it("refuses revoked tokens, saying so, through this process at once", async () => {
    const { token, record } = await tokens.create("alice");
    expect((await tokens.verify(token)).ok).toBe(true);
    await tokens.revoke("alice", record.key.slice(0, 8));
    expect(refusal(await tokens.verify(token)).reason).toMatch(
      new RegExp(`^this token \\(${record.prefix}…\\) was revoked on 2025-06-01T12:00:00.000Z`),
    );
    expect(await tokens.list("alice")).toEqual([]);
    expect(isAuthError(await tokens.revoke("alice", record.key).catch((e: unknown) => e), "E_NOT_FOUND")).toBe(true);
  });

  it("sees another replica's revocation once the cache time has passed", async () => {
    const { token } = await tokens.create("alice");
    const replica = new TokenStore(storage, { users, clock, cacheMs: 5_000 });
    expect((await tokens.verify(token)).ok).toBe(true);
    expect(await replica.revokeValue(token)).not.toBeNull();
    expect((await tokens.verify(token)).ok).toBe(true);
    now += 5_000;
    expect((await tokens.verify(token)).ok).toBe(false);
    expect(await replica.revokeValue(token)).toBeNull();
  });

  it("refuses tokens of disabled accounts and works again once enabled", async () => {
    const { token } = await tokens.create("alice");
    await users.disable("alice");
    tokens.forgetUser("alice");
    expect(refusal(await tokens.verify(token))).toEqual({
      code: "E_UNAUTHORIZED",
      reason: 'the account "alice" is disabled: ask a registry administrator',
    });
    expect(isAuthError(await tokens.create("alice").catch((e: unknown) => e), "E_FORBIDDEN")).toBe(true);
    await users.enable("alice");
    tokens.forgetUser("alice");
    expect((await tokens.verify(token)).ok).toBe(true);
  });

  it("revokes every token of a user", async () => {
    const first = await tokens.create("alice");
    const second = await tokens.create("alice");
    expect(await tokens.revokeAll("alice")).toHaveLength(2);
    expect((await tokens.verify(first.token)).ok).toBe(false);
    expect((await tokens.verify(second.token)).ok).toBe(false);
  });

  it("keeps the granular fields and still reads records written by apps/server", async () => {
    const { record } = await tokens.create("alice", {
      readonly: false,
      environment: "ci",
      packages: ["@acme/web"],
      scopes: ["@tools"],
      packagesAndScopesPermission: "read-write",
      orgs: ["acme"],
      orgsPermission: "read-only",
      bypass2fa: true,
    });
    expect(record).toMatchObject({ environment: "ci", packages: ["@acme/web"], scopes: ["@tools"], bypass2fa: true });
    const legacyToken = `fw_${"L".repeat(40)}`;
    const legacy = {
      key: "00000000-0000-4000-8000-000000000001",
      user: "alice",
      hash: createHash("sha256").update(legacyToken).digest("hex"),
      prefix: legacyToken.slice(0, 9),
      name: "old",
      readonly: true,
      cidr_whitelist: [],
      created: "2025-01-01T00:00:00.000Z",
    };
    await storage.put(`tokens/${legacy.hash}.json`, JSON.stringify(legacy));
    expect(await tokens.verify(legacyToken)).toMatchObject({ ok: true, record: { readonly: true } });
  });
});

describe("tokenCoversPackage", () => {
  it("covers everything without lists, else only the named packages and scopes", () => {
    expect(tokenCoversPackage({}, "anything")).toBe(true);
    const limited = { packages: ["lodash"], scopes: ["@acme"] };
    expect(tokenCoversPackage(limited, "lodash")).toBe(true);
    expect(tokenCoversPackage(limited, "@acme/web")).toBe(true);
    expect(tokenCoversPackage(limited, "@acmex/web")).toBe(false);
    expect(tokenCoversPackage(limited, "left-pad")).toBe(false);
  });
});
