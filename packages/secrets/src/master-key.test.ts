import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { fromBase64url, importAesKey, randomBytes, seal, toBase64url, unseal } from "./crypto.js";
import { MasterKey } from "./master-key.js";

describe("MasterKey", () => {
  it("round-trips through its text form and keeps its id", async () => {
    const key = await MasterKey.generate();
    const text = key.toText();
    expect(text).toMatch(/^fwmk1:[A-Za-z0-9_-]{43}$/);
    const again = await MasterKey.parse(`  ${text}\n`, "test");
    expect(again.id).toBe(key.id);
    expect(key.id).toMatch(/^mk_[A-Za-z0-9_-]{16}$/);
    expect((await MasterKey.generate()).id).not.toBe(key.id);
  });

  it("never shows the key when logged or serialised", async () => {
    const key = await MasterKey.generate();
    const secret = key.toText().slice(6);
    expect(inspect(key)).toBe(`MasterKey(${key.id})`);
    expect(inspect({ nested: key }, { depth: 5, showHidden: true })).not.toContain(secret);
    expect(JSON.stringify({ key })).toBe(`{"key":{"id":"${key.id}"}}`);
    expect(String(key)).toBe(`MasterKey(${key.id})`);
  });

  it("refuses text that is not a key without repeating it", async () => {
    const text = "fwmk1:not-really-a-key-but-could-be-a-password";
    await expect(MasterKey.parse(text, "FW_SECRETS_MASTER_KEY")).rejects.toThrow(
      'FW_SECRETS_MASTER_KEY does not hold an fw master key (expected "fwmk1:" and 43 base64url characters; `fw secrets init` makes one)',
    );
    await expect(MasterKey.parse("hunter2", "x")).rejects.toMatchObject({ code: "E_BAD_REQUEST" });
  });
});

describe("AES-256-GCM", () => {
  it("authenticates the associated data", async () => {
    const key = await importAesKey(randomBytes(32));
    const sealed = await seal(key, new TextEncoder().encode("hello"), "context a");
    expect(new TextDecoder().decode((await unseal(key, sealed, "context a")) as Uint8Array)).toBe("hello");
    expect(await unseal(key, sealed, "context b")).toBeNull();
    expect(await unseal(await importAesKey(randomBytes(32)), sealed, "context a")).toBeNull();
    expect(await unseal(key, { ...sealed, iv: "short" }, "context a")).toBeNull();
    expect(await unseal(key, { ...sealed, ciphertext: "!!" }, "context a")).toBeNull();
  });

  it("encodes base64url both ways and rejects other alphabets", () => {
    const bytes = randomBytes(100);
    expect(fromBase64url(toBase64url(bytes))).toEqual(bytes);
    expect(toBase64url(new Uint8Array([0xfb, 0xff]))).toBe("-_8");
    expect(fromBase64url("a+b/")).toBeNull();
  });
});
