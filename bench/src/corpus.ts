import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readTgz } from "./tar.ts";

/**
 * A corpus is a folder with an app (`package.json`, `package-lock.json`, optionally `pnpm-lock.yaml`),
 * `tarballs/*.tgz` holding every locked package with the exact bytes the registry served, and
 * `manifest.json` listing them. Lockfile URLs use a placeholder origin that never resolves.
 * `make-corpus.ts` writes one; /work/shared/corpus/A is the one the README numbers use.
 */
export interface CorpusEntry {
  name: string;
  version: string;
  /** File name under `tarballs/`. */
  file: string;
  integrity: string;
  shasum: string;
  size: number;
}

export interface Corpus {
  dir: string;
  packages: CorpusEntry[];
}

/** RFC 2606 reserves `.invalid`: a lockfile that escapes the rewrite cannot reach any real host. */
export const PLACEHOLDER_ORIGIN = "http://registry.invalid";

export function readCorpus(dir: string): Corpus {
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { packages: CorpusEntry[] };
  return { dir, packages: manifest.packages };
}

export function corpusFileName(name: string, version: string): string {
  return `${name.startsWith("@") ? name.slice(1).replace("/", "__") : name}-${version}.tgz`;
}

/** `/name/-/name-1.0.0.tgz`, `/@scope/name/-/name-1.0.0.tgz`: the layout every npm client expects. */
export function tarballPath(name: string, version: string): string {
  return `/${name}/-/${name.slice(name.indexOf("/") + 1)}-${version}.tgz`;
}

/** npm escapes the scope separator when it asks for a packument. */
export function packumentPath(name: string): string {
  return `/${name.replace("/", "%2f")}`;
}

export function integrityOf(bytes: Uint8Array): { integrity: string; shasum: string } {
  return {
    integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
    shasum: createHash("sha1").update(bytes).digest("hex"),
  };
}

export type PackageJson = Record<string, unknown> & { name: string; version: string };

/** package.json and the README of a packed package (files in the tarball's single top-level folder). */
export function readPackedPackage(tgz: Uint8Array): { pkg: PackageJson; readme?: string; readmeFilename?: string } {
  let pkg: PackageJson | undefined;
  let readme: { text: string; file: string; rank: number } | undefined;
  for (const file of readTgz(tgz)) {
    const parts = file.path.replace(/^\.\//, "").split("/");
    if (parts.length !== 2) continue;
    const base = parts[1] as string;
    if (base === "package.json") pkg ??= JSON.parse(file.data.toString("utf8").replace(/^\uFEFF/, "")) as PackageJson;
    else if (/^readme(\.|$)/i.test(base)) {
      // npm prefers README.md over README over README.txt and friends.
      const rank = /\.(md|markdown)$/i.test(base) ? 0 : base.includes(".") ? 2 : 1;
      if (!readme || rank < readme.rank) readme = { text: file.data.toString("utf8"), file: base, rank };
    }
  }
  if (!pkg) throw new Error("the tarball has no package/package.json");
  return readme ? { pkg, readme: readme.text, readmeFilename: readme.file } : { pkg };
}

/**
 * The body of `PUT /<name>` that `npm publish` sends, built the way libnpmpublish's `buildMetadata`
 * does: the manifest minus `_` fields, `_id`, `dist` with sha512 + sha1 of the tarball, and the tarball
 * base64-encoded in `_attachments`.
 * https://github.com/npm/cli/blob/latest/workspaces/libnpmpublish/lib/publish.js
 */
export function publishDocument(options: {
  pkg: PackageJson;
  tgz: Uint8Array;
  registry: string;
  readme?: string | undefined;
  readmeFilename?: string | undefined;
  tag?: string;
}): Record<string, unknown> {
  const { pkg, tgz } = options;
  const manifest: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(pkg)) {
    if (!key.startsWith("_") && key !== "publishConfig") manifest[key] = value;
  }
  if (options.readme !== undefined && manifest.readme === undefined) {
    manifest.readme = options.readme;
    manifest.readmeFilename = options.readmeFilename;
  }
  const { name, version } = pkg;
  const filename = `${name}-${version}.tgz`;
  manifest._id = `${name}@${version}`;
  manifest._nodeVersion = process.versions.node;
  manifest.dist = {
    ...integrityOf(tgz),
    tarball: `${options.registry.replace(/\/$/, "")}/${name}/-/${filename}`,
  };
  return {
    _id: name,
    name,
    description: pkg.description,
    "dist-tags": { [options.tag ?? "latest"]: version },
    versions: { [version]: manifest },
    access: null,
    _attachments: {
      [filename]: {
        content_type: "application/octet-stream",
        data: Buffer.from(tgz).toString("base64"),
        length: tgz.byteLength,
      },
    },
  };
}

interface ParsedVersion {
  core: [number, number, number];
  pre: string[];
}

function parseVersion(version: string): ParsedVersion | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+.*)?$/.exec(version);
  if (!m) return undefined;
  return { core: [Number(m[1]), Number(m[2]), Number(m[3])], pre: m[4] ? m[4].split(".") : [] };
}

/** SemVer 2 precedence; enough for ordering published versions without a dependency. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) return a < b ? -1 : a > b ? 1 : 0;
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return (x.core[i] as number) - (y.core[i] as number);
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) - Number(q);
    if (pn !== qn) return pn ? -1 : 1;
    return p < q ? -1 : 1;
  }
  return 0;
}

/** Publishing order for one package's versions: ascending, the highest stable last so it ends as `latest`. */
export function publishOrder(versions: string[]): string[] {
  const sorted = [...versions].sort(compareVersions);
  const stable = sorted.filter((v) => parseVersion(v)?.pre.length === 0);
  const latest = stable.at(-1) ?? sorted.at(-1);
  return [...sorted.filter((v) => v !== latest), ...(latest === undefined ? [] : [latest])];
}
