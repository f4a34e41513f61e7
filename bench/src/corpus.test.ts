import { describe, expect, it } from "vitest";
import {
  compareVersions,
  packumentPath,
  publishDocument,
  publishOrder,
  readPackedPackage,
  tarballPath,
} from "./corpus.ts";
import { writeTgz } from "./tar.ts";

describe("versions", () => {
  it("orders by SemVer precedence, prereleases before their release", () => {
    const versions = ["1.0.0", "1.0.0-rc.1", "1.0.0-beta.11", "1.0.0-beta.2", "0.9.10", "0.9.9", "1.0.0-alpha"];
    expect([...versions].sort(compareVersions)).toEqual([
      "0.9.9",
      "0.9.10",
      "1.0.0-alpha",
      "1.0.0-beta.2",
      "1.0.0-beta.11",
      "1.0.0-rc.1",
      "1.0.0",
    ]);
  });

  it("publishes the highest stable version last so it ends up as latest", () => {
    expect(publishOrder(["2.0.0-rc.1", "1.2.0", "1.10.0", "1.9.0"])).toEqual([
      "1.2.0",
      "1.9.0",
      "2.0.0-rc.1",
      "1.10.0",
    ]);
    expect(publishOrder(["1.0.0-beta.1", "1.0.0-alpha.1"])).toEqual(["1.0.0-alpha.1", "1.0.0-beta.1"]);
  });
});

describe("paths", () => {
  it("uses the public registry's layout for scoped and unscoped names", () => {
    expect(tarballPath("@scope/pkg", "1.0.0")).toBe("/@scope/pkg/-/pkg-1.0.0.tgz");
    expect(tarballPath("pkg", "1.0.0")).toBe("/pkg/-/pkg-1.0.0.tgz");
    expect(packumentPath("@scope/pkg")).toBe("/@scope%2fpkg");
  });
});

describe("publish documents", () => {
  it("carries the tarball bytes, their digests and the README like npm publish", () => {
    const tgz = writeTgz({
      "package.json": JSON.stringify({ name: "a", version: "1.0.0", _private: 1 }),
      "README.md": "# a",
    });
    const { pkg, readme, readmeFilename } = readPackedPackage(tgz);
    expect(pkg).toEqual({ name: "a", version: "1.0.0", _private: 1 });
    expect([readme, readmeFilename]).toEqual(["# a", "README.md"]);
    const doc = publishDocument({ pkg, tgz, registry: "http://127.0.0.1:1/", readme, readmeFilename });
    const manifest = (doc.versions as Record<string, Record<string, unknown>>)["1.0.0"] as Record<string, unknown>;
    expect(manifest._private).toBeUndefined();
    expect(manifest.readme).toBe("# a");
    expect(manifest.dist).toMatchObject({ tarball: "http://127.0.0.1:1/a/-/a-1.0.0.tgz" });
    const attachment = (doc._attachments as Record<string, { data: string; length: number }>)["a-1.0.0.tgz"];
    expect(Buffer.from(attachment?.data ?? "", "base64").equals(tgz)).toBe(true);
    expect(attachment?.length).toBe(tgz.length);
  });
});
