import { randomBytes, scryptSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { hashPassword, needsRehash, passwordProblem, verifyPassword } from "./passwords.js";

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
});
