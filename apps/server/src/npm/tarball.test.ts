import { randomBytes } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeTarball } from "../../test/helpers/packages.js";
import { readTarballManifest } from "./tarball.js";

const manifest = { name: "deep-pkg", version: "1.2.3", description: "found" };

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("readTarballManifest", () => {
  it("reads a small tarball's manifest without a decompression stream, wherever it is packed", async () => {
    vi.stubGlobal(
      "DecompressionStream",
      class {
        constructor() {
          throw new Error("the streaming read was used");
        }
      },
    );
    const first = makeTarball({ "package.json": JSON.stringify(manifest), "index.js": "module.exports = 1;\n" });
    await expect(readTarballManifest(first)).resolves.toEqual(manifest);
    // npm 11 packs package.json last.
    const last = makeTarball({ "index.js": "module.exports = 1;\n", "package.json": JSON.stringify(manifest) });
    await expect(readTarballManifest(last)).resolves.toEqual(manifest);
  });

  it("reads a large tarball's manifest packed after 300 KB of other files", async () => {
    // Random bytes do not compress: package.json starts ~300 KB into the gzip stream.
    const tgz = makeTarball({ "blob.bin": randomBytes(300 * 1024), "package.json": JSON.stringify(manifest) });
    expect(tgz.byteLength).toBeGreaterThan(300 * 1024);
    await expect(readTarballManifest(tgz)).resolves.toEqual(manifest);
  });

  it("finds a manifest behind a file that inflates to 64 MB", async () => {
    const tgz = makeTarball({
      "zeros.bin": new Uint8Array(64 * 1024 * 1024),
      "package.json": JSON.stringify(manifest),
    });
    await expect(readTarballManifest(tgz)).resolves.toEqual(manifest);
  });

  it("accepts another single top-level folder than package/", async () => {
    const tar = Buffer.from(gunzip(makeTarball({ "package.json": JSON.stringify(manifest) })));
    // Rename package/package.json to node/package.json in the header, fixing its checksum.
    tar.write("node/package.json\0\0\0", 0, "latin1");
    tar.write("        ", 148, "latin1");
    const sum = tar.subarray(0, 512).reduce((total, byte) => total + byte, 0);
    tar.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "latin1");
    await expect(readTarballManifest(gzipSync(tar))).resolves.toEqual(manifest);
  });

  it("rejects data that is not a gzipped tar, a tar without package.json and a cut-off archive", async () => {
    await expect(readTarballManifest(new TextEncoder().encode("not a tarball"))).rejects.toThrow(
      "the attached tarball is not a valid gzipped tar with a package.json",
    );
    await expect(readTarballManifest(makeTarball({ "index.js": "1;\n" }))).rejects.toThrow(
      "the attached tarball has no package/package.json",
    );
    const whole = gunzip(makeTarball({ "package.json": JSON.stringify({ ...manifest, padding: "x".repeat(2000) }) }));
    const cut = gzipSync(whole.subarray(0, 1024));
    await expect(readTarballManifest(cut)).rejects.toThrow(
      "the attached tarball is not a valid gzipped tar with a package.json",
    );
  });

  it("refuses what a gzip stream refuses: a manifest in a second gzip member, a wrong CRC or header CRC", async () => {
    const good = makeTarball({ "package.json": JSON.stringify(manifest) });
    const invalid = "the attached tarball is not a valid gzipped tar with a package.json";
    // The manifest only in a second member, after a member holding a lone file.
    const lone = gunzip(makeTarball({ "index.js": "1" })).subarray(0, 1024);
    await expect(readTarballManifest(Buffer.concat([gzipSync(lone), good]))).rejects.toThrow(invalid);
    const badCrc = Buffer.from(good);
    badCrc.writeUInt32LE((badCrc.readUInt32LE(badCrc.length - 8) ^ 1) >>> 0, badCrc.length - 8);
    await expect(readTarballManifest(badCrc)).rejects.toThrow(invalid);
    // The same tarball, whole and with optional header fields (a file name), is read.
    const named = Buffer.from(good);
    named[3] = 0x08;
    const withName = Buffer.concat([named.subarray(0, 10), Buffer.from("package.tar\0"), named.subarray(10)]);
    await expect(readTarballManifest(withName)).resolves.toEqual(manifest);
    // A header CRC that does not match the header.
    const hcrc = Buffer.from(good);
    hcrc[3] = 0x02;
    const badHeaderCrc = Buffer.concat([hcrc.subarray(0, 10), Buffer.from([0, 0]), hcrc.subarray(10)]);
    await expect(readTarballManifest(badHeaderCrc)).rejects.toThrow(invalid);
  });

  it("rejects a package.json that is not a JSON object", async () => {
    await expect(readTarballManifest(makeTarball({ "package.json": "[1, 2]" }))).rejects.toThrow(
      "the attached tarball is not a valid gzipped tar with a package.json",
    );
  });
});

function gunzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gunzipSync(bytes));
}
