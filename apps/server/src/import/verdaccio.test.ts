import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { verifyDigests } from "./verdaccio.js";

const bytes = new TextEncoder().encode("a tarball");
const hex = (algorithm: string) => createHash(algorithm).update(bytes).digest("hex");
const b64 = (algorithm: string) => createHash(algorithm).update(bytes).digest("base64");
const hashes = {
  sha1hex: hex("sha1"),
  base64: { sha1: b64("sha1"), sha256: b64("sha256"), sha384: b64("sha384"), sha512: b64("sha512") },
};
const ok = { ok: true, shasum: hex("sha1"), integrity: `sha512-${b64("sha512")}` };

describe("verifyDigests", () => {
  it("accepts a tarball that matches every digest recorded, in any algorithm npm has used", () => {
    expect(verifyDigests({ shasum: hex("sha1").toUpperCase() }, hashes)).toEqual(ok);
    // Packages from before npm 5 carry only a sha1 integrity, if any.
    expect(verifyDigests({ integrity: `sha1-${b64("sha1")}` }, hashes)).toEqual(ok);
    expect(
      verifyDigests({ shasum: hex("sha1"), integrity: `sha256-${b64("sha256")} sha512-${b64("sha512")}?opt` }, hashes),
    ).toEqual(ok);
    expect(verifyDigests({ shasum: hex("sha1"), integrity: "md5-whatever" }, hashes)).toEqual(ok);
  });

  it("refuses a tarball that differs from any recorded digest, or that nothing records", () => {
    expect(verifyDigests({ shasum: "0".repeat(40), integrity: `sha512-${b64("sha512")}` }, hashes)).toEqual({
      ok: false,
      reason: "the tarball does not match dist.shasum",
    });
    expect(verifyDigests({ shasum: hex("sha1"), integrity: `sha512-${b64("sha384")}` }, hashes)).toEqual({
      ok: false,
      reason: "the tarball does not match dist.integrity (sha512)",
    });
    expect(verifyDigests({ integrity: "md5-whatever" }, hashes)).toMatchObject({ ok: false });
    expect(verifyDigests({}, hashes)).toEqual({
      ok: false,
      reason: "neither dist.shasum nor dist.integrity is recorded, so the tarball cannot be checked",
    });
  });
});
