import { randomBytes } from "node:crypto";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import { SecretSealer } from "./seal.js";
import { generateTotp } from "./totp.js";
import { UserStore } from "./users.js";

const now = Date.parse("2026-06-01T12:00:00Z");

describe("TOTP secrets sealed with a key", () => {
  it("never stores the secret in the clear, and codes still verify", async () => {
    const storage = memoryDriver();
    const key = randomBytes(32).toString("hex");
    const users = new UserStore(storage, { clock: () => now, tfaKey: key });
    await users.create("tess", "password-1");
    const { secret } = await users.startTfa("tess", "auth-and-writes");
    await users.confirmTfa("tess", generateTotp(secret, now));
    const raw = new TextDecoder().decode((await storage.get("users/tess/profile.json"))?.body);
    expect(raw).not.toContain(secret);
    expect(raw).toContain("fwenc1:");
    expect((await users.verifySecondFactor("tess", generateTotp(secret, now + 30_000))).ok).toBe(true);

    // Without the key, or with another one, the second factor cannot be checked (and nothing leaks).
    for (const other of [
      new UserStore(storage, { clock: () => now }),
      new UserStore(storage, { clock: () => now, tfaKey: randomBytes(32) }),
    ]) {
      const error = await other.verifySecondFactor("tess", generateTotp(secret, now + 60_000)).catch((e: unknown) => e);
      expect(isAuthError(error, "E_UNAVAILABLE")).toBe(true);
      expect(String(error)).not.toContain(secret);
    }
  });

  it("binds a sealed value to its account, and reads secrets stored before the key was set", () => {
    const sealer = new SecretSealer(randomBytes(32));
    const sealed = sealer.seal("JBSWY3DPEHPK3PXP", "totp:tess");
    expect(sealer.open(sealed, "totp:tess")).toBe("JBSWY3DPEHPK3PXP");
    expect(() => sealer.open(sealed, "totp:mallory")).toThrow(/cannot be decrypted/);
    expect(sealer.open("JBSWY3DPEHPK3PXP", "totp:tess")).toBe("JBSWY3DPEHPK3PXP");
    expect(() => new SecretSealer("too-short")).toThrow(/32 bytes/);
  });
});
