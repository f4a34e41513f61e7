import { createHash } from "node:crypto";
import { RegistryError } from "../http/errors.js";

export interface TarballDigest {
  shasum: string;
  integrity: string;
}

/** The digests npm records in `dist`: hex SHA-1 (`shasum`) and SRI SHA-512 (`integrity`). */
export function digest(bytes: Uint8Array): TarballDigest {
  return {
    shasum: createHash("sha1").update(bytes).digest("hex"),
    integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
  };
}

/** True when `integrity` (an SRI string, possibly listing several hashes) names `computed`'s sha512. */
export function integrityMatches(integrity: string, computed: TarballDigest): boolean {
  const expected = computed.integrity;
  return integrity
    .trim()
    .split(/\s+/)
    .some((entry) => entry.split("?")[0] === expected);
}

const MAX_MANIFEST_BYTES = 5 * 1024 * 1024;
const decoder = new TextDecoder();

function octal(block: Uint8Array, start: number, length: number): number {
  // Base-256 (GNU) for sizes beyond 8 GiB: high bit of the first byte set.
  if (((block[start] ?? 0) & 0x80) !== 0) {
    let value = (block[start] ?? 0) & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + (block[i] ?? 0);
    return value;
  }
  const text = decoder
    .decode(block.subarray(start, start + length))
    .replace(/\0.*$/s, "")
    .trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

function field(block: Uint8Array, start: number, length: number): string {
  const bytes = block.subarray(start, start + length);
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/** `path=` from a PAX extended header, which overrides the next entry's name. */
function paxPath(data: Uint8Array): string | undefined {
  const text = decoder.decode(data);
  for (const match of text.matchAll(/\d+ path=([^\n]*)\n/g)) return match[1];
  return undefined;
}

/**
 * Reads `<root>/package.json` out of a gzipped tarball, streaming: it stops as soon as the manifest is
 * found, so a 200 MB tarball is never unpacked in memory. npm packs everything under `package/`; other
 * tools may use another single top-level folder, which npm's own registry accepts too.
 */
export async function readTarballManifest(tgz: Uint8Array): Promise<Record<string, unknown>> {
  let stream: ReadableStream<Uint8Array>;
  try {
    stream = new Blob([tgz as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new DecompressionStream("gzip"));
  } catch (cause) {
    throw new RegistryError("E_BAD_REQUEST", "the attached tarball is not gzip data", { cause });
  }
  const reader = stream.getReader();
  let buffer = new Uint8Array(0);
  let ended = false;
  const need = async (bytes: number): Promise<boolean> => {
    while (buffer.byteLength < bytes && !ended) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else {
        const next = new Uint8Array(buffer.byteLength + value.byteLength);
        next.set(buffer);
        next.set(value, buffer.byteLength);
        buffer = next;
      }
    }
    return buffer.byteLength >= bytes;
  };
  const take = (bytes: number): Uint8Array => {
    const out = buffer.subarray(0, bytes);
    buffer = buffer.subarray(bytes);
    return out;
  };
  const skip = async (bytes: number) => {
    let left = bytes;
    while (left > 0) {
      if (buffer.byteLength === 0 && !(await need(1))) throw new Error("truncated");
      const n = Math.min(left, buffer.byteLength);
      take(n);
      left -= n;
    }
  };

  try {
    let overrideName: string | undefined;
    for (;;) {
      if (!(await need(512))) break;
      const header = take(512);
      if (header.every((b) => b === 0)) break;
      const size = octal(header, 124, 12);
      const type = String.fromCharCode(header[156] ?? 48);
      const padded = Math.ceil(size / 512) * 512;
      if (type === "x" || type === "L") {
        if (size > 64 * 1024 || !(await need(padded))) throw new Error("bad extended header");
        const data = take(padded).subarray(0, size);
        overrideName = type === "x" ? paxPath(data) : field(data, 0, size);
        continue;
      }
      const magic = field(header, 257, 6);
      const prefix = magic.startsWith("ustar") ? field(header, 345, 155) : "";
      const name = overrideName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
      overrideName = undefined;
      const parts = name.replace(/^\.\//, "").split("/");
      if ((type === "0" || type === "\0") && parts.length === 2 && parts[1] === "package.json") {
        if (size > MAX_MANIFEST_BYTES)
          throw new RegistryError("E_BAD_REQUEST", "package.json in the tarball is too large");
        if (!(await need(size))) throw new Error("truncated");
        const manifest = JSON.parse(decoder.decode(take(size)));
        if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest))
          throw new Error("not an object");
        return manifest as Record<string, unknown>;
      }
      await skip(padded);
    }
  } catch (cause) {
    if (cause instanceof RegistryError) throw cause;
    throw new RegistryError("E_BAD_REQUEST", "the attached tarball is not a valid gzipped tar with a package.json", {
      cause,
    });
  } finally {
    await reader.cancel().catch(() => {});
  }
  throw new RegistryError("E_BAD_REQUEST", "the attached tarball has no package/package.json");
}
