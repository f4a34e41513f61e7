import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const encoder = new TextEncoder();

function tarHeader(path: string, size: number): Uint8Array {
  const header = new Uint8Array(512);
  const put = (text: string, offset: number, length: number) =>
    header.set(encoder.encode(text).subarray(0, length), offset);
  put(path, 0, 100);
  put("0000644\0", 100, 8);
  put("0000000\0", 108, 8);
  put("0000000\0", 116, 8);
  put(`${size.toString(8).padStart(11, "0")}\0`, 124, 12);
  put(
    `${Math.floor(Date.UTC(1985, 9, 26) / 1000)
      .toString(8)
      .padStart(11, "0")}\0`,
    136,
    12,
  );
  put("        ", 148, 8);
  put("0", 156, 1);
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  const sum = header.reduce((total, byte) => total + byte, 0);
  put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
  return header;
}

/** A gzipped tar of `files` under `package/`, the layout `npm pack` produces. */
export function makeTarball(files: Record<string, string | Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [path, content] of Object.entries(files)) {
    const bytes = typeof content === "string" ? encoder.encode(content) : content;
    parts.push(
      tarHeader(`package/${path}`, bytes.byteLength),
      bytes,
      new Uint8Array((512 - (bytes.byteLength % 512)) % 512),
    );
  }
  parts.push(new Uint8Array(1024));
  return gzipSync(Buffer.concat(parts));
}

export interface Digests {
  shasum: string;
  integrity: string;
}

export function digests(bytes: Uint8Array): Digests {
  return {
    shasum: createHash("sha1").update(bytes).digest("hex"),
    integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
  };
}

export interface PublishBodyOptions {
  name: string;
  version: string;
  /** The tarball to attach; by default one holding a package.json with this name and version. */
  tarball?: Uint8Array;
  /** Override the digests written in `dist` (to send a tarball that does not match them). */
  dist?: Partial<Digests>;
  manifest?: Record<string, unknown>;
  distTags?: Record<string, string>;
}

/** The JSON body `npm publish` sends (libnpmpublish's `buildMetadata`), built by hand for raw-HTTP tests. */
export function publishBody(registryUrl: string, options: PublishBodyOptions): Record<string, unknown> {
  const { name, version } = options;
  const manifest = { name, version, description: `test package ${name}`, ...options.manifest };
  const tarball =
    options.tarball ?? makeTarball({ "package.json": JSON.stringify(manifest), "index.js": "module.exports = 1;\n" });
  const base = name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
  const filename = `${base}-${version}.tgz`;
  return {
    _id: name,
    name,
    description: manifest.description,
    "dist-tags": options.distTags ?? { latest: version },
    versions: {
      [version]: {
        ...manifest,
        _id: `${name}@${version}`,
        dist: { ...digests(tarball), ...options.dist, tarball: `${registryUrl}/${name}/-/${filename}` },
      },
    },
    access: null,
    _attachments: {
      [filename]: {
        content_type: "application/octet-stream",
        data: Buffer.from(tarball).toString("base64"),
        length: tarball.byteLength,
      },
    },
  };
}

export interface PackageSpec {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  /** Extra package.json fields. */
  manifest?: Record<string, unknown>;
  /** Extra files besides package.json and index.js. */
  files?: Record<string, string | Uint8Array>;
}

/** Writes a package folder ready for `npm publish`: package.json and an index.js that exports its version. */
export async function writePackage(dir: string, spec: PackageSpec): Promise<string> {
  await mkdir(dir, { recursive: true });
  const manifest = {
    name: spec.name,
    version: spec.version,
    description: `fw e2e fixture ${spec.name}`,
    main: "index.js",
    license: "MIT",
    ...(spec.dependencies && { dependencies: spec.dependencies }),
    ...spec.manifest,
  };
  await writeFile(join(dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  await writeFile(join(dir, "index.js"), `module.exports = ${JSON.stringify(`${spec.name}@${spec.version}`)};\n`);
  for (const [path, content] of Object.entries(spec.files ?? {})) {
    await mkdir(join(dir, path, ".."), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  return dir;
}
