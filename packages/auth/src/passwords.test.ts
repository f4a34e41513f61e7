import { randomBytes, scryptSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import {
  hashPassword,
  identifyHash,
  needsRehash,
  passwordHashLoad,
  passwordProblem,
  setPasswordHashLimits,
  verifyPassword,
} from "./passwords.js";

/** A hash in the exact format apps/server writes, made independently of this module. */
function legacyHash(password: string, N: number): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${N}$8$1$${salt.toString("base64")}$${key.toString("base64")}`;
}

describe("passwords", () => {
  it("hashes with a salt and verifies only the right password", async () => {
    const a = await hashPassword("correct horse");
    const b = await hashPassword("correct horse");
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a).not.toBe(b);
    expect(await verifyPassword("correct horse", a)).toBe(true);
    expect(await verifyPassword("correct horsf", a)).toBe(false);
    expect(needsRehash(a)).toBe(false);
  });

  it("runs concurrent derivations at most `concurrency` at a time, the others queued, and answers each", async () => {
    const stored = legacyHash("burst-pass", 2 ** 12);
    const { concurrency } = passwordHashLoad();
    expect(concurrency).toBeGreaterThanOrEqual(1);
    expect(concurrency).toBeLessThanOrEqual(2);
    try {
      for (const limit of [1, 3]) {
        setPasswordHashLimits({ concurrency: limit });
        let maxRunning = 0;
        let maxWaiting = 0;
        const watch = setInterval(() => {
          const load = passwordHashLoad();
          maxRunning = Math.max(maxRunning, load.running);
          maxWaiting = Math.max(maxWaiting, load.waiting);
        }, 0);
        const answers = await Promise.all(
          Array.from({ length: 8 }, (_, i) => verifyPassword(i % 2 ? "burst-pass" : "wrong-pass", stored)),
        ).finally(() => clearInterval(watch));
        expect(answers).toEqual([false, true, false, true, false, true, false, true]);
        expect(maxRunning).toBe(limit);
        expect(maxWaiting).toBeGreaterThan(0);
        expect(passwordHashLoad()).toEqual({ running: 0, waiting: 0, concurrency: limit, maxWaiting: limit * 32 });
      }
      expect(() => setPasswordHashLimits({ concurrency: 0 })).toThrow();
      expect(() => setPasswordHashLimits({ maxWaiting: -1 })).toThrow();
    } finally {
      setPasswordHashLimits({ concurrency });
    }
  });

  it("refuses derivations beyond the waiting limit with E_UNAVAILABLE and a retry time, and takes new ones after", async () => {
    const stored = legacyHash("queue-pass", 2 ** 10);
    const { concurrency } = passwordHashLoad();
    try {
      setPasswordHashLimits({ concurrency: 1, maxWaiting: 2 });
      const settled = await Promise.allSettled([
        ...Array.from({ length: 5 }, () => verifyPassword("queue-pass", stored)),
        hashPassword("queue-pass"),
      ]);
      // One runs, two wait, the other three are refused at once.
      expect(settled.map((result) => result.status)).toEqual([
        "fulfilled",
        "fulfilled",
        "fulfilled",
        "rejected",
        "rejected",
        "rejected",
      ]);
      for (const result of settled.slice(3)) {
        const reason = (result as PromiseRejectedResult).reason;
        expect(isAuthError(reason, "E_UNAVAILABLE")).toBe(true);
        expect(reason.message).toBe("too many password checks are waiting: retry in a few seconds");
        expect(reason.retryAfterMs).toBe(5000);
      }
      expect(await verifyPassword("queue-pass", stored)).toBe(true);
      // No waiting places: one at a time still runs, only a second one at once is refused.
      setPasswordHashLimits({ maxWaiting: 0 });
      const [alone, second] = await Promise.allSettled([
        verifyPassword("queue-pass", stored),
        verifyPassword("queue-pass", stored),
      ]);
      expect(alone).toEqual({ status: "fulfilled", value: true });
      expect(second?.status).toBe("rejected");
      setPasswordHashLimits({ maxWaiting: undefined });
      expect(passwordHashLoad().maxWaiting).toBe(32);
    } finally {
      setPasswordHashLimits({ concurrency, maxWaiting: undefined });
    }
  });

  it("verifies hashes written by apps/server and flags weaker ones for upgrade", async () => {
    const stored = legacyHash("s3cret-pass", 2 ** 15);
    expect(await verifyPassword("s3cret-pass", stored)).toBe(true);
    const weak = legacyHash("s3cret-pass", 2 ** 14);
    expect(await verifyPassword("s3cret-pass", weak)).toBe(true);
    expect(needsRehash(weak)).toBe(true);
  });

  it("never matches malformed or hostile hashes, and never throws on them", async () => {
    for (const stored of [
      "",
      "plain",
      "bcrypt$10$abc",
      "scrypt$1000$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5",
      `scrypt$${2 ** 24}$8$1$c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5`,
      "scrypt$32768$8$1$c2FsdA==$",
    ]) {
      expect(await verifyPassword("whatever", stored)).toBe(false);
      expect(needsRehash(stored)).toBe(true);
    }
  });

  it("explains unacceptable new passwords", () => {
    expect(passwordProblem("short")).toMatch(/8 to 1024 characters/);
    expect(passwordProblem(42)).toMatch(/string/);
    expect(passwordProblem("long enough")).toBeUndefined();
  });

  describe("legacy htpasswd hashes", () => {
    // Known answers made by other implementations: OpenWall's crypt_blowfish test vector; `openssl passwd
    // -apr1` and `-1`; perl's crypt (the C library's DES crypt); `openssl dgst -sha1 | base64`.
    const vectors = [
      { scheme: "bcrypt", password: "U*U", hash: "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" },
      { scheme: "bcrypt", password: "U*U", hash: "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" },
      { scheme: "bcrypt", password: "U*U", hash: "$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW" },
      { scheme: "apr1", password: "correct horse", hash: "$apr1$Wq3bRn5x$9Z9YOxi3iW9Wwr3YQdz7G0" },
      { scheme: "md5-crypt", password: "correct horse", hash: "$1$8nJd2KqZ$jWStH9.4gEleVqKn63J5e1" },
      { scheme: "des-crypt", password: "correct", hash: "Xy4gtfNOUBGtk" },
      { scheme: "sha1", password: "correct horse", hash: "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=" },
    ] as const;

    it.each(vectors)("verifies $scheme $hash and marks it for replacement", async ({ scheme, password, hash }) => {
      expect(identifyHash(hash)).toEqual({ scheme });
      expect(await verifyPassword(password, hash)).toBe(true);
      expect(await verifyPassword(`${password}!`, hash)).toBe(false);
      expect(await verifyPassword("", hash)).toBe(false);
      expect(needsRehash(hash)).toBe(true);
    });

    it("uses only the first 8 characters of a DES crypt password, as crypt(3) does", async () => {
      // perl -e 'print crypt("correct horse", "Xy")'
      expect(await verifyPassword("correct horse", "XylJt/8b2k7dE")).toBe(true);
      expect(await verifyPassword("correct battery", "XylJt/8b2k7dE")).toBe(true);
    });

    it("names what it cannot verify instead of guessing", () => {
      expect(identifyHash("{PLAIN}secret")).toMatchObject({
        scheme: null,
        reason: expect.stringMatching(/plain-text/),
      });
      expect(identifyHash("$6$salt$abc")).toEqual({ scheme: null, reason: "unsupported hash type $6$" });
      expect(identifyHash("$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")).toEqual({
        scheme: null,
        reason: "bcrypt cost 31 is outside 4–15",
      });
      expect(identifyHash("{SSHA}abc")).toEqual({ scheme: null, reason: "unsupported hash type {SSHA}" });
      expect(identifyHash("nonsense")).toEqual({ scheme: null, reason: "unrecognised hash format" });
    });

    it("never matches hostile or truncated legacy hashes", async () => {
      for (const stored of [
        "$2a$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOe",
        "{SHA}L55TUjtiq8FBorTWAZ0jy6g129A",
        "$apr1$Wq3bRn5x$",
        "{PLAIN}U*U",
      ]) {
        expect(await verifyPassword("U*U", stored)).toBe(false);
      }
    });
  });
});
