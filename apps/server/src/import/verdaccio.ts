import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import {
  authorize,
  hashPassword,
  identifyHash,
  identityFor,
  isAuthError,
  isValidUsername,
  type PasswordScheme,
  type Policy,
  UserStore,
} from "@fw/auth";
import { isStorageError, type StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import semver from "semver";
import { assertReadableName, tarballFilename } from "../npm/names.js";
import { nextRev, type Packument, type Person, type VersionManifest } from "../npm/packument.js";
import { readTarballManifest } from "../npm/tarball.js";
import { packumentKey, tarballKey } from "../services/packages.js";
import type { HtpasswdEntry } from "./htpasswd.js";

/** What could not be imported, or was left alone on purpose, and why. */
export interface ImportProblem {
  name: string;
  /** For one version of a package. */
  version?: string;
  reason: string;
}

export interface ImportedPackage {
  name: string;
  versions: string[];
  distTags: Record<string, string>;
  maintainers: string[];
  /** Where the owners came from: the stored document, or the users the `publish` rule allows (Verdaccio 6 keeps no owners). */
  ownersFrom: "storage" | "publish rule" | "--owners" | "none";
  deprecated: string[];
  /** Bytes of tarballs written. */
  bytes: number;
  /** Imported, but worth a look. */
  warnings: string[];
}

export interface ImportedUser {
  name: string;
  /** The hash kept until the first login; `plain` passwords were hashed with scrypt at import. */
  scheme: PasswordScheme | "plain";
}

export interface ReportPart<T> {
  imported: T[];
  skipped: ImportProblem[];
  failed: ImportProblem[];
}

/**
 * What an import did. `skipped` are things left alone on purpose (already in fw, uplink caches);
 * `failed` are things from the source that could not be imported. `ok` is false when anything failed.
 */
export interface ImportReport {
  ok: boolean;
  dryRun: boolean;
  packages: ReportPart<ImportedPackage>;
  users: ReportPart<ImportedUser>;
  counts: {
    packages: number;
    versions: number;
    tarballs: number;
    users: number;
    skipped: number;
    failed: number;
  };
}

export interface UserImportOptions {
  dryRun?: boolean;
  /** Milliseconds since the epoch, for the profiles' `updated`. */
  clock?: () => number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Creates an fw account for every htpasswd entry, keeping its hash so the old password keeps working
 * (fw replaces it with scrypt at the first login). `{PLAIN}` passwords are hashed now. Create-only:
 * an existing fw user is skipped, never changed.
 */
export async function importHtpasswdUsers(
  target: StorageDriver,
  entries: readonly HtpasswdEntry[],
  options: UserImportOptions = {},
): Promise<ReportPart<ImportedUser>> {
  const store = new UserStore(target, options.clock ? { clock: options.clock } : {});
  const scratch = new UserStore(memoryDriver());
  const part: ReportPart<ImportedUser> = { imported: [], skipped: [], failed: [] };
  for (const entry of entries) {
    const { name } = entry;
    const plain = entry.hash.startsWith("{PLAIN}");
    const identified = plain ? { scheme: "plain" as const } : identifyHash(entry.hash);
    if (identified.scheme === null) {
      part.failed.push({ name, reason: `${identified.reason} (htpasswd line ${entry.line})` });
      continue;
    }
    if (!isValidUsername(name)) {
      part.failed.push({
        name,
        reason: "not a valid fw user name (letters, digits, '.', '_', '-'; starting with a letter or digit)",
      });
      continue;
    }
    if (await store.get(name)) {
      part.skipped.push({ name, reason: "already an fw user (not changed)" });
      continue;
    }
    try {
      const passwordHash = plain ? await hashPassword(entry.hash.slice("{PLAIN}".length)) : entry.hash;
      // A dry run checks the account the same way, in a storage that is thrown away.
      await (options.dryRun ? scratch : store).importUser(name, {
        passwordHash,
        ...(entry.created !== undefined && { created: entry.created }),
      });
      part.imported.push({ name, scheme: identified.scheme });
    } catch (error) {
      if (isAuthError(error) && error.code === "E_CONFLICT")
        part.skipped.push({ name, reason: "already an fw user (not changed)" });
      else part.failed.push({ name, reason: message(error) });
    }
  }
  return part;
}

/** A package folder found in Verdaccio's storage. */
export interface SourcePackage {
  name: string;
  dir: string;
  /** Listed in `.verdaccio-db.json` (published here); `undefined` when the storage has no such file. */
  listed: boolean | undefined;
}

const DB_FILES = [".verdaccio-db.json", ".sinopia-db.json"];

async function readDbList(storageDir: string): Promise<Set<string> | undefined> {
  for (const file of DB_FILES) {
    let text: string;
    try {
      text = await readFile(join(storageDir, file), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    const parsed: unknown = JSON.parse(text);
    const list = isObject(parsed) && Array.isArray(parsed.list) ? parsed.list : [];
    return new Set(list.filter((name): name is string => typeof name === "string"));
  }
  return undefined;
}

async function subdirectories(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith("."))
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every package folder in Verdaccio's storage (`<name>/package.json`, `@scope/<name>/package.json`, also
 * below `extraRoots`, the per-rule `storage` folders), and the names `.verdaccio-db.json` lists without a
 * folder (`missing`).
 */
export async function findVerdaccioPackages(
  storageDir: string,
  extraRoots: readonly string[] = [],
): Promise<{ packages: SourcePackage[]; missing: string[] }> {
  if (!(await exists(storageDir))) throw new Error(`Verdaccio's storage folder ${storageDir} does not exist`);
  const listed = await readDbList(storageDir);
  const found = new Map<string, SourcePackage>();
  for (const root of [storageDir, ...extraRoots]) {
    for (const top of await subdirectories(root)) {
      const names = top.startsWith("@")
        ? (await subdirectories(join(root, top))).map((name) => `${top}/${name}`)
        : [top];
      for (const name of names) {
        const dir = join(root, ...name.split("/"));
        if (found.has(name) || !(await exists(join(dir, "package.json")))) continue;
        found.set(name, { name, dir, listed: listed ? listed.has(name) : undefined });
      }
    }
  }
  const missing = [...(listed ?? [])].filter((name) => !found.has(name)).sort();
  return { packages: [...found.values()].sort((a, b) => a.name.localeCompare(b.name)), missing };
}

/** How a version's tarball checked out against what its manifest recorded. */
export type Verification = { ok: true; shasum: string; integrity: string } | { ok: false; reason: string };

const SRI_ALGORITHMS = new Set(["sha1", "sha256", "sha384", "sha512"]);

/**
 * Compares a tarball's digests with `dist.shasum` and every `dist.integrity` entry fw can compute
 * (sha1/256/384/512). At least one must be recorded: a tarball nobody can check is not imported.
 * `hashes` are the tarball's digests by algorithm (hex for sha1 as `shasum`, base64 for SRI).
 */
export function verifyDigests(
  dist: Record<string, unknown>,
  hashes: { sha1hex: string; base64: Record<string, string> },
): Verification {
  let checked = false;
  if (typeof dist.shasum === "string" && dist.shasum !== "") {
    if (dist.shasum.toLowerCase() !== hashes.sha1hex)
      return { ok: false, reason: "the tarball does not match dist.shasum" };
    checked = true;
  }
  if (typeof dist.integrity === "string") {
    for (const entry of dist.integrity.trim().split(/\s+/)) {
      const [algorithm, rest] = [entry.slice(0, entry.indexOf("-")), entry.slice(entry.indexOf("-") + 1)];
      if (!SRI_ALGORITHMS.has(algorithm)) continue;
      const expected = rest.split("?")[0];
      if (expected !== hashes.base64[algorithm])
        return { ok: false, reason: `the tarball does not match dist.integrity (${algorithm})` };
      checked = true;
    }
  }
  if (!checked)
    return {
      ok: false,
      reason: "neither dist.shasum nor dist.integrity is recorded, so the tarball cannot be checked",
    };
  return {
    ok: true,
    shasum: hashes.sha1hex,
    integrity: `sha512-${hashes.base64.sha512 as string}`,
  };
}

/** Tarballs up to this size are read into memory once; larger ones are streamed (hashed, then copied). */
const IN_MEMORY_BYTES = 64 * 1024 * 1024;

interface TarballFile {
  path: string;
  size: number;
  mtime: Date;
}

interface ReadTarball {
  file: TarballFile;
  bytes?: Uint8Array;
  sha1hex: string;
  base64: Record<string, string>;
  md5: string;
}

/** Reads a tarball once, computing every digest `dist` may record, and MD5 to compare with storage ETags. */
async function readTarball(file: TarballFile): Promise<ReadTarball> {
  const algorithms = ["sha1", "sha256", "sha384", "sha512", "md5"] as const;
  const hashes = new Map(algorithms.map((algorithm) => [algorithm, createHash(algorithm)]));
  let bytes: Uint8Array | undefined;
  if (file.size <= IN_MEMORY_BYTES) {
    const buffer = await readFile(file.path);
    bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    for (const hash of hashes.values()) hash.update(bytes);
  } else {
    for await (const chunk of createReadStream(file.path))
      for (const hash of hashes.values()) hash.update(chunk as Buffer);
  }
  const digests = new Map([...hashes].map(([algorithm, hash]) => [algorithm, hash.digest()]));
  const base64: Record<string, string> = {};
  for (const algorithm of ["sha1", "sha256", "sha384", "sha512"] as const)
    base64[algorithm] = (digests.get(algorithm) as Buffer).toString("base64");
  return {
    file,
    ...(bytes && { bytes }),
    sha1hex: (digests.get("sha1") as Buffer).toString("hex"),
    base64,
    md5: (digests.get("md5") as Buffer).toString("hex"),
  };
}

/** Verdaccio's placeholder when a publish carried no README: not worth keeping. */
const NO_README = "ERROR: No README data found!";

/** Top-level fields taken from the latest version's manifest, as a publish of it would set them. */
const FIELDS_FROM_LATEST = ["description", "keywords", "license", "homepage", "repository", "bugs"] as const;

export interface PackageImportOptions {
  dryRun?: boolean;
  /** The converted access policy: who may publish a package decides its owners when the storage records none. */
  policy?: Policy;
  /** Account names (the imported users) checked against `policy` for owners. */
  users?: readonly string[];
  /** Owners for packages whose storage records none, instead of those `policy` lets publish. */
  owners?: readonly string[];
}

function people(value: unknown): Person[] {
  if (!Array.isArray(value)) return [];
  const out: Person[] = [];
  for (const entry of value) {
    if (!isObject(entry) || typeof entry.name !== "string" || entry.name === "") continue;
    if (out.some((person) => person.name === entry.name)) continue;
    out.push({
      name: entry.name,
      ...(typeof entry.email === "string" && entry.email !== "" && { email: entry.email }),
    });
  }
  return out;
}

/**
 * The owners of an imported package: those the document records (top-level `maintainers`, else the
 * latest version's, else every `_npmUser` that published), else `--owners`, else the users the
 * converted `publish` rule allows — exactly who could change the package in Verdaccio 6, which keeps
 * no owner list.
 */
function owners(
  name: string,
  raw: Record<string, unknown>,
  versions: Record<string, VersionManifest>,
  latest: string | undefined,
  options: PackageImportOptions,
): { maintainers: Person[]; from: ImportedPackage["ownersFrom"] } {
  const top = people(raw.maintainers);
  if (top.length > 0) return { maintainers: top, from: "storage" };
  const ofLatest = latest ? people(versions[latest]?.maintainers) : [];
  if (ofLatest.length > 0) return { maintainers: ofLatest, from: "storage" };
  const publishers = people(Object.values(versions).map((manifest) => manifest._npmUser));
  if (publishers.length > 0) return { maintainers: publishers, from: "storage" };
  if (options.owners && options.owners.length > 0)
    return { maintainers: options.owners.map((owner) => ({ name: owner })), from: "--owners" };
  if (!options.policy || !options.users) return { maintainers: [], from: "none" };
  const policy = options.policy;
  const allowed = options.users.filter((user) => {
    const identity = identityFor(policy, { name: user, passwordHash: "", created: "", updated: "" });
    return authorize(policy, { identity, action: "publish", pkg: name }).allowed;
  });
  return allowed.length > 0
    ? { maintainers: allowed.map((user) => ({ name: user })), from: "publish rule" }
    : { maintainers: [], from: "none" };
}

export type PackageOutcome =
  | { kind: "imported"; result: ImportedPackage; failed: ImportProblem[]; tarballs: number }
  | { kind: "skipped"; problem: ImportProblem }
  | { kind: "failed"; problems: ImportProblem[] };

/** A package's `package.json` as Verdaccio wrote it, or why it cannot be used. */
async function readDocument(source: SourcePackage): Promise<Record<string, unknown> | string> {
  try {
    assertReadableName(source.name);
  } catch (error) {
    return message(error);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(source.dir, "package.json"), "utf8"));
  } catch (error) {
    return `its package.json cannot be read: ${message(error)}`;
  }
  if (!isObject(raw) || !isObject(raw.versions)) return "its package.json has no versions";
  if (raw.name !== undefined && raw.name !== source.name) return `its package.json names "${String(raw.name)}"`;
  return raw;
}

/**
 * Why a document is Verdaccio's cache of an uplink's package rather than one published to it, or
 * undefined. `.verdaccio-db.json` lists what was published; without that file, a document fetched from an
 * uplink that has no published attachment is a cache.
 */
function cacheReason(source: SourcePackage, raw: Record<string, unknown>): string | undefined {
  const uplinks = isObject(raw._uplinks) ? Object.keys(raw._uplinks) : [];
  const distfiles = isObject(raw._distfiles) ? Object.keys(raw._distfiles) : [];
  const attachments = isObject(raw._attachments) ? Object.keys(raw._attachments) : [];
  const cached =
    source.listed === false
      ? uplinks.length > 0 || distfiles.length > 0
      : source.listed === undefined && uplinks.length > 0 && attachments.length === 0;
  if (!cached) return undefined;
  const from = uplinks.length > 0 ? `uplink ${uplinks.join(", ")}` : "an uplink";
  return `a cached copy from ${from}, not published here; fw's uplinks fetch it again`;
}

async function tarballFiles(dir: string): Promise<Map<string, TarballFile>> {
  const files = new Map<string, TarballFile>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".tgz")) continue;
    const info = await stat(join(dir, entry.name));
    files.set(entry.name, { path: join(dir, entry.name), size: info.size, mtime: info.mtime });
  }
  return files;
}

interface VersionContext {
  target: StorageDriver;
  name: string;
  raw: Record<string, unknown>;
  files: Map<string, TarballFile>;
  /** Tarball files some version claimed. */
  used: Set<string>;
  warnings: string[];
  dryRun: boolean;
}

type VersionOutcome = { manifest: VersionManifest; file: TarballFile } | { problem: string } | { uplink: true };

/**
 * Finds one version's tarball, checks it against the digests its manifest records, and (unless dry
 * run) writes it create-only. Tarballs are handled one at a time so a package with hundreds of
 * versions never sits in memory at once.
 */
async function importVersion(ctx: VersionContext, version: string, value: unknown): Promise<VersionOutcome> {
  const { name } = ctx;
  if (semver.valid(version) !== version) return { problem: "not a semver version" };
  if (!isObject(value) || (value.name !== undefined && value.name !== name) || value.version !== version) {
    return { problem: "its manifest does not name this package and version" };
  }
  const dist = isObject(value.dist) ? value.dist : {};
  const filename = tarballFilename(name, version);
  const recorded = typeof dist.tarball === "string" ? basename(dist.tarball.split("?")[0] as string) : undefined;
  const found = ctx.files.get(filename) ?? (recorded === undefined ? undefined : ctx.files.get(recorded));
  if (!found) {
    const distfiles = isObject(ctx.raw._distfiles) ? ctx.raw._distfiles : {};
    if (distfiles[filename] !== undefined || (recorded !== undefined && distfiles[recorded] !== undefined))
      return { uplink: true };
    return { problem: `its tarball ${filename} is not in the storage folder` };
  }
  ctx.used.add(basename(found.path));
  let tarball: ReadTarball;
  try {
    tarball = await readTarball(found);
  } catch (error) {
    return { problem: `its tarball cannot be read: ${message(error)}` };
  }
  const checked = verifyDigests(dist, tarball);
  if (!checked.ok) return { problem: checked.reason };
  const attachments = isObject(ctx.raw._attachments) ? ctx.raw._attachments : {};
  const attachment = attachments[basename(found.path)];
  if (isObject(attachment) && typeof attachment.shasum === "string" && attachment.shasum !== tarball.sha1hex) {
    return { problem: "the tarball does not match the shasum Verdaccio recorded when it was stored" };
  }
  if (tarball.bytes) {
    try {
      const packed = await readTarballManifest(tarball.bytes);
      if (packed.name !== name || packed.version !== version)
        ctx.warnings.push(
          `${version}: the tarball's package.json says ${String(packed.name)}@${String(packed.version)}`,
        );
    } catch (error) {
      ctx.warnings.push(`${version}: ${message(error)}`);
    }
  }
  if (!ctx.dryRun) {
    try {
      await writeTarball(ctx.target, tarballKey(name, filename), tarball);
    } catch (error) {
      return { problem: message(error) };
    }
  }
  const { readme: _readme, _attachments: _a, ...rest } = value;
  // Attestations and registry signatures belong to the registry that made them; fw has neither file nor key.
  const { attestations: _att, signatures: _sig, ...keptDist } = dist;
  return {
    file: found,
    manifest: {
      ...rest,
      name,
      version,
      dist: { ...keptDist, shasum: checked.shasum, integrity: checked.integrity, tarball: "" },
    } as VersionManifest,
  };
}

/** The dist-tags that point at imported versions; `latest` falls back to the highest stable version. */
function importTags(raw: Record<string, unknown>, versions: Record<string, VersionManifest>, warnings: string[]) {
  const tags: Record<string, string> = {};
  for (const [tag, version] of Object.entries(isObject(raw["dist-tags"]) ? raw["dist-tags"] : {})) {
    if (!/^[A-Za-z0-9._-]{1,100}$/.test(tag) || semver.validRange(tag) !== null) {
      warnings.push(`dist-tag "${tag}" is not a tag fw accepts (tags must not be version ranges): dropped`);
    } else if (typeof version !== "string" || !versions[version]) {
      warnings.push(`dist-tag "${tag}" points at ${String(version)}, which is not imported: dropped`);
    } else tags[tag] = version;
  }
  if (!tags.latest) {
    const all = Object.keys(versions);
    tags.latest = all.filter((version) => semver.prerelease(version) === null).at(-1) ?? (all.at(-1) as string);
    warnings.push(`no importable "latest" tag: latest is ${tags.latest}`);
  }
  return tags;
}

/**
 * Verdaccio's `time`, with a time for every imported version (the tarball's file time when Verdaccio
 * recorded none), and the numbers of versions unpublished in Verdaccio: those it still dates but no
 * longer has. They stay taken in fw too; versions left out by this import do not (once fixed, the real
 * tarball can be published again).
 */
function importTime(
  raw: Record<string, unknown>,
  imported: Map<string, TarballFile>,
): { time: Record<string, string>; unpublished: string[] } {
  const time: Record<string, string> = {};
  for (const [key, value] of Object.entries(isObject(raw.time) ? raw.time : {}))
    if (typeof value === "string" && !Number.isNaN(Date.parse(value))) time[key] = value;
  for (const [version, file] of imported) time[version] ??= file.mtime.toISOString();
  const stamps = [...imported.keys()].map((version) => time[version] as string).sort();
  time.created ??= stamps[0] as string;
  time.modified ??= stamps.at(-1) as string;
  const unpublished: string[] = [];
  for (const key of Object.keys(time)) {
    if (semver.valid(key) !== key || imported.has(key)) continue;
    if (key in (raw.versions as Record<string, unknown>)) delete time[key];
    else unpublished.push(key);
  }
  return { time, unpublished };
}

/**
 * Imports one Verdaccio package folder: verifies every version's tarball against its recorded digests,
 * writes the good ones, then writes the fw document create-only. Versions whose tarball is missing or
 * does not match are left out and reported; the rest of the package is imported.
 */
export async function importVerdaccioPackage(
  target: StorageDriver,
  source: SourcePackage,
  options: PackageImportOptions = {},
): Promise<PackageOutcome> {
  const { name } = source;
  const raw = await readDocument(source);
  if (typeof raw === "string") return { kind: "failed", problems: [{ name, reason: raw }] };
  const cached = cacheReason(source, raw);
  if (cached) return { kind: "skipped", problem: { name, reason: cached } };
  if (await target.head(packumentKey(name))) {
    return { kind: "skipped", problem: { name, reason: "already in fw (not changed)" } };
  }

  const warnings: string[] = source.listed === false ? ["not listed in .verdaccio-db.json"] : [];
  const ctx: VersionContext = {
    target,
    name,
    raw,
    files: await tarballFiles(source.dir),
    used: new Set(),
    warnings,
    dryRun: options.dryRun === true,
  };
  const failed: ImportProblem[] = [];
  const imported = new Map<string, TarballFile>();
  const manifests: Array<[string, VersionManifest]> = [];
  for (const [version, value] of Object.entries(raw.versions as Record<string, unknown>)) {
    const outcome = await importVersion(ctx, version, value);
    if ("problem" in outcome) failed.push({ name, version, reason: outcome.problem });
    else if ("uplink" in outcome)
      warnings.push(`${version} came from an uplink and its tarball is not stored here: left out`);
    else {
      imported.set(version, outcome.file);
      manifests.push([version, outcome.manifest]);
    }
  }
  for (const file of ctx.files.keys()) {
    if (!ctx.used.has(file))
      warnings.push(`${file} belongs to no version (left behind by an unpublish?): not imported`);
  }
  if (manifests.length === 0) {
    return {
      kind: "failed",
      problems: failed.length > 0 ? failed : [{ name, reason: "it has no version with a stored tarball" }],
    };
  }

  manifests.sort(([a], [b]) => semver.compare(a, b));
  const versions = Object.fromEntries(manifests);
  const distTags = importTags(raw, versions, warnings);
  const latest = versions[distTags.latest as string] as VersionManifest;
  const { time, unpublished } = importTime(raw, imported);
  const { maintainers, from } = owners(name, raw, versions, distTags.latest, options);
  if (maintainers.length === 0)
    warnings.push("no owners recorded and none allowed to publish it: only admins can change it until one is added");

  const doc: Packument = {
    _id: name,
    _rev: nextRev(undefined),
    name,
    "dist-tags": distTags,
    versions,
    time,
    maintainers,
    _fwPublished: [...Object.keys(versions), ...unpublished],
  };
  for (const field of FIELDS_FROM_LATEST) {
    const value = latest[field] ?? raw[field];
    if (value !== undefined) doc[field] = value as never;
  }
  // Verdaccio keeps the README of the last publish at the top; older versions kept one per version.
  const ofLatest = (raw.versions as Record<string, Record<string, unknown>>)[latest.version]?.readme;
  const readme = [raw.readme, ofLatest].find(
    (text): text is string => typeof text === "string" && text !== "" && text !== NO_README,
  );
  if (readme !== undefined) doc.readme = readme;
  const readmeFilename = latest.readmeFilename ?? raw.readmeFilename;
  if (typeof readmeFilename === "string") doc.readmeFilename = readmeFilename;
  const stars = isObject(raw.users) ? Object.entries(raw.users).filter(([, starred]) => starred === true) : [];
  if (stars.length > 0) doc.users = Object.fromEntries(stars.map(([user]) => [user, true]));

  if (!options.dryRun) {
    try {
      await target.put(packumentKey(name), JSON.stringify(doc), { ifNoneMatch: "*", contentType: "application/json" });
    } catch (error) {
      if (!isStorageError(error, "E_PRECONDITION")) throw error;
      return { kind: "skipped", problem: { name, reason: "already in fw (created while importing; not changed)" } };
    }
  }
  return {
    kind: "imported",
    tarballs: imported.size,
    failed,
    result: {
      name,
      versions: Object.keys(versions),
      distTags,
      maintainers: maintainers.map((person) => person.name),
      ownersFrom: from,
      deprecated: manifests.filter(([, manifest]) => typeof manifest.deprecated === "string").map(([v]) => v),
      bytes: [...imported.values()].reduce((sum, file) => sum + file.size, 0),
      warnings,
    },
  };
}

/**
 * Writes a tarball create-only. One already there with the same bytes (an earlier, interrupted
 * import) is fine; different bytes are an error, never overwritten.
 */
async function writeTarball(target: StorageDriver, key: string, tarball: ReadTarball, attempt = 1): Promise<void> {
  const { file, bytes } = tarball;
  try {
    const body = bytes ?? (Readable.toWeb(createReadStream(file.path)) as ReadableStream<Uint8Array>);
    await target.put(key, body, { ifNoneMatch: "*", contentType: "application/octet-stream", size: file.size });
    return;
  } catch (error) {
    if (!isStorageError(error, "E_PRECONDITION")) throw error;
  }
  const existing = await target.head(key);
  // Deleted between the two calls: try again, a few times at most.
  if (!existing && attempt < 3) return writeTarball(target, key, tarball, attempt + 1);
  if (!existing) throw new Error(`${key} keeps changing in the storage; try again`);
  if (existing.etag === tarball.md5) return;
  // Drivers' ETags are the MD5 of single-part writes; a multipart upload's is not, so compare the bytes.
  const stored = existing.size === file.size ? await target.get(key) : null;
  const md5 = stored ? createHash("md5").update(stored.body).digest("hex") : undefined;
  if (md5 !== tarball.md5) throw new Error(`a different tarball is already stored at ${key}`);
}

export interface VerdaccioImportOptions extends PackageImportOptions {
  /** fw's storage: packages and users are written here. */
  target: StorageDriver;
  /** Verdaccio's storage folder. */
  storageDir: string;
  /** Per-rule `storage` folders (see `ConvertedConfig.extraStorage`). */
  extraStorage?: readonly string[];
  /** htpasswd accounts to import as users. */
  htpasswd?: readonly HtpasswdEntry[];
  /** Packages imported at the same time. Default 4. */
  concurrency?: number;
  /** Called as each package is done, for progress output. */
  onPackage?(name: string, outcome: PackageOutcome["kind"]): void;
  clock?: () => number;
}

/**
 * Imports a Verdaccio storage folder and htpasswd users into fw's storage: users first (create-only),
 * then every package published to Verdaccio (uplink caches are skipped), each tarball verified before it
 * is written and each document written create-only, so running it again only adds what is missing. The
 * search index picks the packages up when the server starts (`PackagesService.indexAll`).
 */
export async function importVerdaccio(options: VerdaccioImportOptions): Promise<ImportReport> {
  const dryRun = options.dryRun === true;
  const users = await importHtpasswdUsers(options.target, options.htpasswd ?? [], {
    dryRun,
    ...(options.clock && { clock: options.clock }),
  });
  const accounts = [...users.imported, ...users.skipped].map((user) => user.name);

  const { packages: found, missing } = await findVerdaccioPackages(options.storageDir, options.extraStorage);
  const packages: ReportPart<ImportedPackage> = { imported: [], skipped: [], failed: [] };
  for (const name of missing)
    packages.failed.push({ name, reason: "listed in .verdaccio-db.json but its folder is missing" });
  let next = 0;
  let tarballs = 0;
  const worker = async () => {
    while (next < found.length) {
      const source = found[next++] as SourcePackage;
      let outcome: PackageOutcome;
      try {
        outcome = await importVerdaccioPackage(options.target, source, {
          dryRun,
          ...(options.policy && { policy: options.policy }),
          users: accounts,
          ...(options.owners && { owners: options.owners }),
        });
      } catch (error) {
        outcome = { kind: "failed", problems: [{ name: source.name, reason: message(error) }] };
      }
      if (outcome.kind === "imported") {
        packages.imported.push(outcome.result);
        packages.failed.push(...outcome.failed);
        tarballs += outcome.tarballs;
      } else if (outcome.kind === "skipped") packages.skipped.push(outcome.problem);
      else packages.failed.push(...outcome.problems);
      options.onPackage?.(source.name, outcome.kind);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 4) }, worker));

  const byName = (a: { name: string; version?: string }, b: { name: string; version?: string }) =>
    a.name.localeCompare(b.name) || (a.version ?? "").localeCompare(b.version ?? "");
  packages.imported.sort(byName);
  packages.skipped.sort(byName);
  packages.failed.sort(byName);
  const skipped = packages.skipped.length + users.skipped.length;
  const failedCount = packages.failed.length + users.failed.length;
  return {
    ok: failedCount === 0,
    dryRun,
    packages,
    users,
    counts: {
      packages: packages.imported.length,
      versions: packages.imported.reduce((sum, each) => sum + each.versions.length, 0),
      tarballs,
      users: users.imported.length,
      skipped,
      failed: failedCount,
    },
  };
}
