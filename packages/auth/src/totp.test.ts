import { describe, expect, it } from "vitest";
import {
  generateRecoveryCodes,
  generateTotp,
  generateTotpSecret,
  hashRecoveryCode,
  isRecoveryCodeShape,
  matchTotp,
  normaliseRecoveryCode,
  totpStep,
  totpUri,
} from "./totp.js";

const NOW = Date.parse("2025-06-01T12:00:10Z");

describe("TOTP", () => {
  const secret = generateTotpSecret();

  it("makes 160-bit base32 secrets and an otpauth URI apps understand", () => {
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = totpUri(secret, "alice", "fw");
    expect(uri).toMatch(/^otpauth:\/\/totp\/fw:alice\?/);
    expect(uri).toContain(`secret=${secret}`);
    expect(uri).toContain("period=30");
  });

  it("accepts the current code and its neighbours, and nothing further", () => {
    const step = totpStep(NOW);
    expect(matchTotp(secret, generateTotp(secret, NOW), { now: NOW })).toBe(step);
    expect(matchTotp(secret, generateTotp(secret, NOW - 30_000), { now: NOW })).toBe(step - 1);
    expect(matchTotp(secret, generateTotp(secret, NOW + 30_000), { now: NOW })).toBe(step + 1);
    expect(matchTotp(secret, generateTotp(secret, NOW - 90_000), { now: NOW })).toBeNull();
    expect(matchTotp(secret, generateTotp(secret, NOW + 90_000), { now: NOW })).toBeNull();
  });

  it("refuses a code of a step already used, and earlier ones (replay)", () => {
    const code = generateTotp(secret, NOW);
    const step = totpStep(NOW);
    expect(matchTotp(secret, code, { now: NOW, afterStep: step - 1 })).toBe(step);
    expect(matchTotp(secret, code, { now: NOW, afterStep: step })).toBeNull();
    expect(matchTotp(secret, generateTotp(secret, NOW - 30_000), { now: NOW, afterStep: step })).toBeNull();
  });

  it("ignores spaces and refuses anything that is not six digits", () => {
    const code = generateTotp(secret, NOW);
    expect(matchTotp(secret, `${code.slice(0, 3)} ${code.slice(3)}`, { now: NOW })).toBe(totpStep(NOW));
    expect(matchTotp(secret, "12345", { now: NOW })).toBeNull();
    expect(matchTotp(secret, "abcdef", { now: NOW })).toBeNull();
  });
});

describe("recovery codes", () => {
  it("are distinct, have the 64-hex-digit shape npm's OTP prompt accepts, and hash the same however they are typed", () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const code of codes) {
      expect(code).toMatch(/^[0-9a-f]{64}$/);
      expect(isRecoveryCodeShape(code)).toBe(true);
    }
    expect(isRecoveryCodeShape("123456")).toBe(false);
    const [first] = codes as [string];
    expect(normaliseRecoveryCode(` ${first.toUpperCase()} `)).toBe(first.replace(/-/g, ""));
    expect(hashRecoveryCode("salt", first.toUpperCase().replace(/-/g, " "))).toBe(hashRecoveryCode("salt", first));
    expect(hashRecoveryCode("other", first)).not.toBe(hashRecoveryCode("salt", first));
  });
});
