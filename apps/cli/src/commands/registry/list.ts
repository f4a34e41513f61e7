import { loadConfig } from "@fw/server";
import { storageFromConfig } from "@fw/server/node";
import type { StorageDriver } from "@fw/storage-r2";
import { describeStorage, print, printJson } from "../../output.js";
import { table } from "./search.js";

export interface ListOptions {
  config?: string;
  json: boolean;
  /** Packuments read at once. Default 8: an S3 GET is tens of ms, a local read microseconds. */
  concurrency?: number;
}

/** One package in storage: hosted here (`local`) or an uplink's cached copy (`cached`). */
export interface ListedPackage {
  name: string;
  source: "local" | "cached";
  /** The uplink a cached copy came from. */
  uplink?: string;
  /** The `latest` dist-tag (else the last version key). */
  version: string | null;
  versions: number;
  description: string | null;
  /** Local: the packument's `time.modified`; cached: when fw last fetched it from the uplink. */
  updated: string | null;
  /** The storage key it was read from. */
  key: string;
}

/*
 * The storage layout read here: hosted packuments at `packages/<name>/packument.json` (the server's
 * `packumentKey`), uplink copies at `uplinks/<uplink>/packages/<name>/packument.json` (its
 * `uplinkPackumentKey`), `<name>` being `name` or `@scope/name`.
 */
const LOCAL_KEY = /^packages\/((?:@[^/]+\/)?[^/@][^/]*)\/packument\.json$/;
const CACHED_KEY = /^uplinks\/([^/]+)\/packages\/((?:@[^/]+\/)?[^/@][^/]*)\/packument\.json$/;

async function keys(storage: StorageDriver, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.list({ prefix, ...(cursor !== undefined && { cursor }) });
    for (const object of page.objects) found.push(object.key);
    cursor = page.cursor;
  } while (cursor);
  return found;
}

interface StoredPackument {
  "dist-tags"?: Record<string, unknown>;
  versions?: Record<string, { description?: unknown }>;
  description?: unknown;
  time?: Record<string, unknown>;
  _fwUplink?: { fetchedAt?: unknown };
}

/** The row for one packument, or null for a package whose every version was unpublished (nothing to install). */
function row(
  key: string,
  name: string,
  uplink: string | undefined,
  doc: StoredPackument,
  lastModified: Date | undefined,
): ListedPackage | null {
  const versions = Object.keys(doc.versions ?? {});
  if (versions.length === 0) return null;
  const latest = doc["dist-tags"]?.latest;
  const version = typeof latest === "string" && doc.versions?.[latest] ? latest : (versions.at(-1) ?? null);
  const description = (version !== null ? doc.versions?.[version]?.description : undefined) ?? doc.description;
  const fetchedAt = doc._fwUplink?.fetchedAt;
  const modified = doc.time?.modified;
  const updated =
    uplink !== undefined && typeof fetchedAt === "number"
      ? new Date(fetchedAt).toISOString()
      : typeof modified === "string"
        ? modified
        : (lastModified?.toISOString() ?? null);
  return {
    name,
    source: uplink === undefined ? "local" : "cached",
    ...(uplink !== undefined && { uplink }),
    version,
    versions: versions.length,
    description: typeof description === "string" ? description : null,
    updated,
    key,
  };
}

/**
 * Every package in `storage`: hosted ones and uplinks' cached copies, sorted by name (hosted first
 * for a name in both). Unreadable packuments are named in `unreadable`, not fatal.
 */
export async function listPackages(
  storage: StorageDriver,
  concurrency = 8,
): Promise<{ packages: ListedPackage[]; unreadable: string[] }> {
  const wanted: { key: string; name: string; uplink?: string }[] = [];
  for (const key of await keys(storage, "packages/")) {
    const match = LOCAL_KEY.exec(key);
    if (match) wanted.push({ key, name: match[1] as string });
  }
  for (const key of await keys(storage, "uplinks/")) {
    const match = CACHED_KEY.exec(key);
    if (match) wanted.push({ key, name: match[2] as string, uplink: match[1] as string });
  }
  const packages: ListedPackage[] = [];
  const unreadable: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < wanted.length) {
      const item = wanted[next++] as (typeof wanted)[number];
      const object = await storage.get(item.key);
      if (!object) continue; // deleted since it was listed
      let doc: StoredPackument;
      try {
        doc = JSON.parse(new TextDecoder().decode(object.body)) as StoredPackument;
        if (typeof doc !== "object" || doc === null) throw new Error("not an object");
      } catch {
        unreadable.push(item.key);
        continue;
      }
      const listed = row(item.key, item.name, item.uplink, doc, object.lastModified);
      if (listed) packages.push(listed);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, wanted.length)) }, worker));
  packages.sort(
    (a, b) =>
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
      (a.source === b.source ? (a.uplink ?? "").localeCompare(b.uplink ?? "") : a.source === "local" ? -1 : 1),
  );
  return { packages, unreadable: unreadable.sort() };
}

function sourceLabel(pkg: ListedPackage): string {
  return pkg.source === "local" ? "local" : `cached (${pkg.uplink})`;
}

/**
 * `fw registry list [--json]`: the packages in the storage the fw config names (`--config`, else
 * FW_CONFIG, else ./fw.config.json5), read directly so it works with the registry stopped: hosted
 * ones marked `local`, uplinks' cached copies marked `cached (<uplink>)`.
 */
export async function run(opts: ListOptions): Promise<void> {
  const { config } = await loadConfig({ file: opts.config, overrides: {} });
  const storage = await storageFromConfig(config);
  try {
    const { packages, unreadable } = await listPackages(storage, opts.concurrency);
    for (const key of unreadable) process.stderr.write(`fw: warning: ${key} is not a JSON packument; left out\n`);
    if (opts.json) {
      printJson(packages);
      return;
    }
    const where = describeStorage(config.storage);
    if (packages.length === 0) {
      print(`No packages in ${where}`);
      return;
    }
    print(
      table(
        ["name", "version", "source", "updated", "description"],
        packages.map((pkg) => [
          pkg.name,
          pkg.version ?? "",
          sourceLabel(pkg),
          pkg.updated?.slice(0, 10) ?? "",
          (pkg.description ?? "").replace(/\s+/g, " "),
        ]),
      ),
    );
    const local = packages.filter((pkg) => pkg.source === "local").length;
    const byUplink = new Map<string, number>();
    for (const pkg of packages)
      if (pkg.uplink !== undefined) byUplink.set(pkg.uplink, (byUplink.get(pkg.uplink) ?? 0) + 1);
    const cached = [...byUplink].map(([uplink, count]) => `${count} cached from ${uplink}`);
    print(`\n${[`${local} local`, ...cached].join(", ")} in ${where}`);
  } finally {
    await storage.dispose?.();
  }
}
