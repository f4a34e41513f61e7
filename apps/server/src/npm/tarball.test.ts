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
  it("reads a manifest near the start without a decompression stream", async () => {
    vi.stubGlobal(
      "DecompressionStream",
      class {
        constructor() {
          throw new Error("the streaming read was used");
        }
      },
    );
    const tgz = makeTarball({ "package.json": JSON.stringify(manifest), "index.js": "module.exports = 1;\n" });
    await expect(readTarballManifest(tgz)).resolves.toEqual(manifest);
  });

  it("finds a manifest beyond the first 64 KB of compressed data", async () => {
    // Random bytes do not compress: package.json starts ~300 KB into the gzip stream.
    const tgz = makeTarball({ "blob.bin": randomBytes(300 * 1024), "package.json": JSON.stringify(manifest) });
    expect(tgz.byteLength).toBeGreaterThan(300 * 1024);
    await expect(readTarballManifest(tgz)).resolves.toEqual(manifest);
  });

  it("finds a manifest behind a file that inflates far beyond the first try's limit", async () => {
    // 64 MB of zeros compress to ~64 KB: the first try's output cap is hit before package.json.
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

  it("rejects a package.json that is not a JSON object", async () => {
    await expect(readTarballManifest(makeTarball({ "package.json": "[1, 2]" }))).rejects.toThrow(
      "the attached tarball is not a valid gzipped tar with a package.json",
    );
  });
});

function gunzip(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(gunzipSync(bytes));
}
