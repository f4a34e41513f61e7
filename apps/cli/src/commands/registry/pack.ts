import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { create as createTar, list as listTar } from "tar";
import { displayPath } from "../../output.js";

/** A package.json as npm publishes it: after `npm pkg fix` and npm's "prepare" normalisation. */
export type Manifest = Record<string, unknown> & { name: string; version: string };

export interface PackedFile {
  /** Path inside the package, without the `package/` prefix. */
  path: string;
  size: number;
  mode: number;
}

/** A packed folder: the tarball and what `npm pack --json` reports about it. */
export interface Packed {
  manifest: Manifest;
  /** `name@version`. */
  id: string;
  /** `@acme/web` 1.2.3 → `acme-web-1.2.3.tgz`, the name `npm pack` writes. */
  filename: string;
  tarball: Buffer;
  /** The gzipped tarball's bytes. */
  size: number;
  /** The bytes of the files in it. */
  unpackedSize: number;
  /** sha1 of the tarball, hex (`dist.shasum`). */
  shasum: string;
  /** `sha512-<base64>` of the tarball (`dist.integrity`). */
  integrity: string;
  /** In npm's display order: names starting with an upper-case letter first, then the rest. */
  files: PackedFile[];
  entryCount: number;
  /** Bundled dependencies found under `node_modules/`. */
  bundled: string[];
  /** What `npm pkg fix` would correct in package.json (npm prints these as warnings when publishing). */
  fixes: string[];
}

/*
 * npm-packlist, @npmcli/arborist and @npmcli/package-json ship no type declarations (and the
 * DefinitelyTyped ones describe older majors), so each is loaded through `require` and typed here
 * with just the calls made.
 */
interface PackTree {
  readonly path: string;
}
type ArboristClass = new (options: { path: string }) => { loadActual(): Promise<PackTree> };
type Packlist = (tree: PackTree, options: { path: string }) => Promise<string[]>;
interface PackageJsonClass {
  fix(path: string, options: { changes: string[] }): Promise<{ prepare(): Promise<{ content: unknown }> }>;
}

const require = createRequire(import.meta.url);

/**
 * The `mtime` of every entry: npm's (pacote `lib/util/tar-create-options.js`), a fixed date in 1985
 * rather than the epoch because zip tools mishandle 1970. With `portable` (no uid, gid, user names,
 * atime or ctime) and gzip level 9, the same files give the same bytes as `npm pack`, wherever packed.
 */
const NPM_MTIME = new Date("1985-10-26T08:15:00.000Z");

/**
 * pacote's `isPackageBin` (lib/util/is-package-bin.js), kept quirk and all so the bytes match
 * `npm pack`: it drops the path's first segment before comparing with `bin`, so a bin at the top
 * (`cli.js`) is packed executable and one in a folder (`bin/cli.js`) keeps its mode on disk.
 * Installers make bins executable when they link them either way.
 */
function isPackageBin(manifest: Manifest, path: string): boolean {
  const bin = manifest.bin;
  if (typeof bin !== "object" && typeof bin !== "string") return false;
  const targets = typeof bin === "string" ? [bin] : Object.values(bin ?? {});
  const stripped = path.replace(/^[^\\/]*\//, "");
  return targets.some((target) => target === stripped);
}

/** npm's `getContents` order (lib/utils/tar.js): upper-case initials first, each half sorted like `localeCompare("en")`. */
function npmOrder(files: PackedFile[]): PackedFile[] {
  const compare = new Intl.Collator("en", { sensitivity: "case", numeric: true }).compare;
  const upper = (path: string) => path.charAt(0) === path.charAt(0).toUpperCase();
  const byPath = (a: PackedFile, b: PackedFile) => compare(a.path, b.path);
  return [...files.filter((f) => upper(f.path)).sort(byPath), ...files.filter((f) => !upper(f.path)).sort(byPath)];
}

/** `@acme/web` → `acme-web`, as `npm pack` names the file. */
export function tarballFilename(name: string, version: string): string {
  return `${name.replace("@", "").replace("/", "-")}-${version}.tgz`;
}

async function readManifest(dir: string): Promise<{ manifest: Manifest; fixes: string[] }> {
  const PackageJson = require("@npmcli/package-json") as PackageJsonClass;
  const fixes: string[] = [];
  let content: unknown;
  try {
    // What npm publish does (lib/commands/publish.js `#getManifest`): `pkgJson.fix`, then `prepare`,
    // which adds `readme`, `gitHead`, `_id`, normalised `bin` and drops `_`-fields.
    content = (await (await PackageJson.fix(dir, { changes: fixes })).prepare()).content;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === "ENOENT" ? "no package.json" : (error as Error).message;
    throw new Error(`cannot pack ${displayPath(dir)}: ${reason}`, { cause: error });
  }
  const manifest = content as Partial<Manifest>;
  if (typeof manifest.name !== "string" || manifest.name === "")
    throw new Error(`cannot pack ${displayPath(dir)}: package.json has no "name"`);
  if (typeof manifest.version !== "string" || manifest.version === "")
    throw new Error(`cannot pack ${displayPath(dir)}: package.json has no "version"`);
  return { manifest: manifest as Manifest, fixes };
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Packs `dir` as `npm pack` would: the files npm-packlist picks (package.json `files`, `.npmignore`,
 * else `.gitignore`, npm's always-included README/LICENSE/package.json and always-excluded `.git`,
 * `.npmrc`, `node_modules` except bundled dependencies), written by node-tar under `package/` with
 * npm's options. Lifecycle scripts (`prepack`, `prepare`, …) are not run: pack what is built.
 */
export async function packDirectory(path: string): Promise<Packed> {
  const dir = resolve(path);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new Error(`cannot pack ${displayPath(dir)}: not a folder`);
  const { manifest, fixes } = await readManifest(dir);

  const Arborist = require("@npmcli/arborist") as ArboristClass;
  const packlist = require("npm-packlist") as Packlist;
  // npm-packlist needs the folder's arborist tree to find bundled dependencies (pacote lib/dir.js).
  const tree = await new Arborist({ path: dir }).loadActual();
  const list = await packlist(tree, { path: dir });

  const tarball = await collect(
    createTar(
      {
        cwd: dir,
        prefix: "package/",
        portable: true,
        gzip: { level: 9 },
        mtime: NPM_MTIME,
        filter: (file, stats) => {
          if (isPackageBin(manifest, file) && stats.mode !== undefined) stats.mode |= 0o111;
          return true;
        },
      },
      list,
    ),
  );

  const files: PackedFile[] = [];
  const bundled = new Set<string>();
  let entryCount = 0;
  let unpackedSize = 0;
  await new Promise<void>((done, fail) => {
    const parser = listTar({
      onReadEntry: (entry) => {
        entryCount++;
        unpackedSize += entry.size;
        const inner = entry.path.replace(/^package\//, "");
        const dep = /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(inner)?.[1];
        if (dep) bundled.add(dep);
        files.push({ path: inner, size: entry.size, mode: entry.mode ?? 0 });
        entry.resume();
      },
    });
    parser.on("end", () => done());
    parser.on("error", fail);
    parser.end(tarball);
  });

  return {
    manifest,
    id: `${manifest.name}@${manifest.version}`,
    filename: tarballFilename(manifest.name, manifest.version),
    tarball,
    size: tarball.byteLength,
    unpackedSize,
    shasum: createHash("sha1").update(tarball).digest("hex"),
    integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
    files: npmOrder(files),
    entryCount,
    bundled: [...bundled],
    fixes,
  };
}

/** npm's `formatBytes` (lib/utils/format-bytes.js): decimal units, one decimal. */
export function formatBytes(bytes: number, space = true): string {
  const gap = space ? " " : "";
  if (bytes < 1000) return `${bytes}${gap}B`;
  if (bytes < 1_000_000) return `${(bytes / 1000).toFixed(1)}${gap}kB`;
  if (bytes < 1_000_000_000) return `${(bytes / 1_000_000).toFixed(1)}${gap}MB`;
  return `${(bytes / 1_000_000_000).toFixed(1)}${gap}GB`;
}

/** The tarball summary `npm pack --dry-run` prints (lib/utils/tar.js `logTar`), with the integrity in full. */
export function describePacked(packed: Packed): string {
  const lines = [`package: ${packed.id}`, "Tarball Contents"];
  for (const file of packed.files)
    if (!file.path.startsWith("node_modules/")) lines.push(`${formatBytes(file.size, false)} ${file.path}`);
  if (packed.bundled.length > 0) lines.push("Bundled Dependencies", ...packed.bundled);
  lines.push(
    "Tarball Details",
    `name: ${packed.manifest.name}`,
    `version: ${packed.manifest.version}`,
    `filename: ${packed.filename}`,
    `package size: ${formatBytes(packed.size)}`,
    `unpacked size: ${formatBytes(packed.unpackedSize)}`,
    `shasum: ${packed.shasum}`,
    `integrity: ${packed.integrity}`,
  );
  if (packed.bundled.length > 0) {
    const own = packed.files.filter((file) => !file.path.startsWith("node_modules/")).length;
    lines.push(
      `bundled deps: ${packed.bundled.length}`,
      `bundled files: ${packed.entryCount - own}`,
      `own files: ${own}`,
    );
  }
  lines.push(`total files: ${packed.entryCount}`);
  return lines.join("\n");
}

/** `npm pack --json`'s fields for one package (without the tarball bytes). */
export function packedJson(packed: Packed) {
  return {
    id: packed.id,
    name: packed.manifest.name,
    version: packed.manifest.version,
    size: packed.size,
    unpackedSize: packed.unpackedSize,
    shasum: packed.shasum,
    integrity: packed.integrity,
    filename: packed.filename,
    files: packed.files,
    entryCount: packed.entryCount,
    bundled: packed.bundled,
  };
}
