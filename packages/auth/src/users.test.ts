import { randomBytes, scryptSync } from "node:crypto";
import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import { readJson } from "./storage.js";
import { generateTotp } from "./totp.js";
import { publicProfile, type UserProfile, UserStore } from "./users.js";

const DAY = 86_400_000;
let now = Date.parse("2025-06-01T12:00:00Z");
const clock = () => now;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("UserStore", () => {
  let storage: StorageDriver;
  let users: UserStore;

  beforeEach(() => {
    now = Date.parse("2025-06-01T12:00:00Z");
    storage = memoryDriver();
    users = new UserStore(storage, { clock });
  });

  it("creates users once, stores only a hash, and authenticates them", async () => {
    await users.create("Alice", "correct horse", { email: "alice@example.com" });
    const stored = await readJson<UserProfile>(storage, "users/alice/profile.json");
    expect(stored).toMatchObject({
      name: "Alice",
      email: "alice@example.com",
      passwordChanged: "2025-06-01T12:00:00.000Z",
    });
    expect(JSON.stringify(stored)).not.toContain("correct horse");
    expect(isAuthError(await rejection(users.create("alice", "another one")), "E_CONFLICT")).toBe(true);
    expect(await users.authenticate("alice", "correct horse")).toMatchObject({ ok: true, user: { name: "Alice" } });
    const wrong = await users.authenticate("alice", "wrong horse");
    const unknown = await users.authenticate("nobody", "correct horse");
    expect(wrong).toEqual({
      ok: false,
      code: "E_UNAUTHORIZED",
      wrongCredentials: true,
      reason: "incorrect user name or password",
    });
    expect(unknown).toEqual(wrong);
  });

  it("refuses bad names, reserved names and short passwords", async () => {
    expect(isAuthError(await rejection(users.create("-x", "long enough")), "E_BAD_REQUEST")).toBe(true);
    expect(await rejection(users.create("admin", "long enough"))).toMatchObject({
      message: expect.stringMatching(/reserved/),
    });
    expect(await rejection(users.create("bob", "short"))).toMatchObject({
      message: expect.stringMatching(/8 to 1024/),
    });
  });

  it("disables and enables accounts, telling the owner only after a right password", async () => {
    await users.create("bob", "password-1");
    await users.disable("bob", "left the company");
    const refused = await users.authenticate("bob", "password-1");
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.reason).toMatch(/disabled since 2025-06-01.*administrator/);
    expect(await users.authenticate("bob", "nope-nope")).toMatchObject({ reason: "incorrect user name or password" });
    await users.enable("bob");
    expect((await users.authenticate("bob", "password-1")).ok).toBe(true);
  });

  it("sets the admin flag and roles, and shows profiles without secrets", async () => {
    await users.create("carol", "password-1");
    await users.setAdmin("carol", true);
    await users.setRoles("carol", ["publisher", "reader", "publisher"]);
    const shown = publicProfile((await users.get("carol")) as UserProfile);
    expect(shown).toMatchObject({ admin: true, roles: ["publisher", "reader"], disabled: false, tfa: null });
    expect(JSON.stringify(shown)).not.toMatch(/scrypt/);
    await users.setAdmin("carol", false);
    expect((await users.get("carol"))?.admin).toBeUndefined();
  });

  it("changes passwords only with the current one", async () => {
    await users.create("dave", "password-1");
    expect(
      isAuthError(await rejection(users.changePassword("dave", "wrong-one", "password-2")), "E_UNAUTHORIZED"),
    ).toBe(true);
    now += 1000;
    await users.changePassword("dave", "password-1", "password-2");
    expect((await users.authenticate("dave", "password-1")).ok).toBe(false);
    expect((await users.authenticate("dave", "password-2")).ok).toBe(true);
    expect((await users.get("dave"))?.passwordChanged).toBe("2025-06-01T12:00:01.000Z");
  });

  it("expires passwords past their maximum age, lists them as due, and lets the owner change them", async () => {
    await users.create("erin", "password-1", { passwordMaxAgeDays: 30 });
    await users.create("frank", "password-1");
    now += 20 * DAY;
    expect(await users.passwordsDue({ withinDays: 5 })).toEqual([]);
    expect(await users.passwordsDue({ withinDays: 14 })).toEqual([
      { kind: "password", user: "erin", due: "2025-07-01T12:00:00.000Z", overdue: false },
    ]);
    now += 11 * DAY;
    const expired = await users.authenticate("erin", "password-1");
    expect(expired).toMatchObject({ ok: false, passwordExpired: true });
    expect(!expired.ok && expired.reason).toMatch(/expired on 2025-07-01.*npm profile set password/);
    expect((await users.passwordsDue())[0]?.overdue).toBe(true);
    await users.changePassword("erin", "password-1", "password-2");
    expect((await users.authenticate("erin", "password-2")).ok).toBe(true);
  });

  it("upgrades hashes made with weaker parameters at login", async () => {
    const salt = randomBytes(16);
    const key = scryptSync("legacy-pass", salt, 32, { N: 2 ** 14, r: 8, p: 1 });
    const legacy = {
      name: "gina",
      passwordHash: `scrypt$16384$8$1$${salt.toString("base64")}$${key.toString("base64")}`,
      created: "2024-01-01T00:00:00.000Z",
      updated: "2024-01-01T00:00:00.000Z",
    };
    // A profile exactly as apps/server writes it today.
    await storage.put("users/gina/profile.json", JSON.stringify(legacy));
    expect((await users.authenticate("gina", "legacy-pass")).ok).toBe(true);
    expect((await users.get("gina"))?.passwordHash).toMatch(/^scrypt\$32768\$/);
    expect((await users.authenticate("gina", "legacy-pass")).ok).toBe(true);
  });

  describe("two-factor authentication", () => {
    async function enrol(mode: "auth-and-writes" | "auth-only" = "auth-and-writes") {
      await users.create("tess", "password-1");
      const { secret, uri } = await users.startTfa("tess", mode);
      expect(uri).toContain("otpauth://totp/fw:tess");
      expect((await users.get("tess"))?.tfa).toBeUndefined();
      const { recoveryCodes } = await users.confirmTfa("tess", generateTotp(secret, now));
      return { secret, recoveryCodes };
    }

    it("turns on only after a valid first code, and stores recovery codes hashed", async () => {
      await users.create("tess", "password-1");
      const { secret } = await users.startTfa("tess", "auth-only");
      expect(isAuthError(await rejection(users.confirmTfa("tess", "000000")), "E_OTP_REQUIRED")).toBe(true);
      const { recoveryCodes } = await users.confirmTfa("tess", generateTotp(secret, now));
      const stored = (await users.get("tess")) as UserProfile;
      expect(stored.tfa?.mode).toBe("auth-only");
      expect(stored.tfaPending).toBeUndefined();
      expect(recoveryCodes).toHaveLength(10);
      for (const code of recoveryCodes) expect(JSON.stringify(stored)).not.toContain(code);
      expect(publicProfile(stored).tfa).toBe("auth-only");
      expect(isAuthError(await rejection(users.startTfa("tess", "auth-only")), "E_CONFLICT")).toBe(true);
    });

    it("accepts each code once (the enrolment code included) and refuses wrong ones", async () => {
      const { secret } = await enrol();
      expect(await users.verifySecondFactor("tess", generateTotp(secret, now))).toMatchObject({ ok: false });
      now += 30_000;
      const code = generateTotp(secret, now);
      expect(await users.verifySecondFactor("tess", code)).toEqual({ ok: true, method: "totp" });
      const replay = await users.verifySecondFactor("tess", code);
      expect(replay).toMatchObject({ ok: false, reason: expect.stringMatching(/already used/) });
      expect(await users.verifySecondFactor("tess", "nonsense")).toMatchObject({ ok: false });
    });

    it("lets only one of many concurrent requests use the same code", async () => {
      const { secret } = await enrol();
      now += 60_000;
      const code = generateTotp(secret, now);
      const replicas = Array.from({ length: 20 }, () => new UserStore(storage, { clock }));
      const results = await Promise.all(replicas.map((replica) => replica.verifySecondFactor("tess", code)));
      expect(results.filter((r) => r.ok)).toHaveLength(1);
    });

    it("accepts each recovery code once, however it is typed", async () => {
      const { recoveryCodes } = await enrol();
      const [first, second] = recoveryCodes as [string, string];
      expect(await users.verifySecondFactor("tess", first.toUpperCase())).toEqual({ ok: true, method: "recovery" });
      expect((await users.verifySecondFactor("tess", first)).ok).toBe(false);
      expect(await users.verifySecondFactor("tess", second.replace(/-/g, " "))).toEqual({
        ok: true,
        method: "recovery",
      });
      expect((await users.get("tess"))?.tfa?.recoveryHashes).toHaveLength(8);
    });

    it("changes mode and turns off", async () => {
      await enrol();
      await users.setTfaMode("tess", "auth-only");
      expect((await users.get("tess"))?.tfa?.mode).toBe("auth-only");
      await users.disableTfa("tess");
      expect((await users.get("tess"))?.tfa).toBeUndefined();
      expect(await users.verifySecondFactor("tess", "123456")).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/off/),
      });
    });
  });
});

describe("UserStore.importUser", () => {
  // `openssl passwd -apr1 -salt Wq3bRn5x 'correct horse'`: a hash another implementation made.
  const APR1 = "$apr1$Wq3bRn5x$9Z9YOxi3iW9Wwr3YQdz7G0";

  it("keeps an imported htpasswd password working and replaces it with scrypt at the first login", async () => {
    const storage = memoryDriver();
    const users = new UserStore(storage, { clock });
    const user = await users.importUser("Carol", {
      passwordHash: APR1,
      email: "carol@example.com",
      created: "2024-02-03T04:05:06Z",
    });
    expect(user).toMatchObject({
      name: "Carol",
      email: "carol@example.com",
      created: "2024-02-03T04:05:06.000Z",
      passwordChanged: "2024-02-03T04:05:06.000Z",
      passwordHash: APR1,
    });

    expect(await users.authenticate("carol", "wrong password")).toMatchObject({ ok: false, wrongCredentials: true });
    expect((await readJson<UserProfile>(storage, "users/carol/profile.json"))?.passwordHash).toBe(APR1);

    expect(await users.authenticate("carol", "correct horse")).toMatchObject({ ok: true });
    const upgraded = await readJson<UserProfile>(storage, "users/carol/profile.json");
    expect(upgraded?.passwordHash).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(upgraded?.passwordChanged).toBe("2024-02-03T04:05:06.000Z");
    expect(await users.authenticate("carol", "correct horse")).toMatchObject({ ok: true });
  });

  it("never overwrites an account and refuses hashes and names it cannot keep", async () => {
    const users = new UserStore(memoryDriver(), { clock });
    await users.create("dave", "first password");
    const conflict = await rejection(users.importUser("Dave", { passwordHash: APR1 }));
    expect(isAuthError(conflict) && conflict.code).toBe("E_CONFLICT");
    expect(await users.authenticate("dave", "first password")).toMatchObject({ ok: true });

    for (const [name, passwordHash, message] of [
      ["erin", "$6$salt$abcdef", /unsupported hash type \$6\$/],
      ["erin", "{PLAIN}secret", /plain-text/],
      ["admin", APR1, /reserved/],
      ["o'neil", APR1, /invalid user name/],
    ] as const) {
      const error = await rejection(users.importUser(name, { passwordHash }));
      expect(isAuthError(error) && error.code).toBe("E_BAD_REQUEST");
      expect(String(error)).toMatch(message);
    }
    expect(await users.get("erin")).toBeNull();
  });
});
