import { loadConfig } from "@fw/server";
import { storageFromConfig } from "@fw/server/node";
import type { StorageDriver } from "@fw/storage-r2";
import { describeStorage, print, printJson } from "../../output.js";

export type RankBy = "size" | "versions";

export interface PackageStats {
  name: string;
  /** Published versions (0 for an unpublished package). */
  versions: number;
  tarballs: number;
  /** Bytes of every object under the package's folder: packument, tarballs, attestations. */
  bytes: number;
}

export interface RegistryStats {
  /** Live packages: those with at least one published version. */
  packages: number;
  /** Packages whose every version was unpublished; their names stay reserved. */
  unpublished: number;
  versions: number;
  tarballs: { count: number; bytes: number };
  storage: { objects: number; bytes: number };
  /** Objects and bytes by the first segment of their keys: packages, users, tokens, audit… */
  areas: Record<string, { objects: number; bytes: number }>;
  /** Packuments that are not JSON documents (named, so someone can look). */
  unreadable: string[];
  by: RankBy;
  top: PackageStats[];
}

export interface StatsOptions {
  /** How many packages `top` lists. Default 10. */
  top?: number;
  by?: RankBy;
  /** Packuments read at once. Default 8: an S3 GET is tens of ms, a local read microseconds. */
  concurrency?: number;
}

/** `packages/<name>/…` → the package name (scoped names span two segments). */
function packageOf(key: string): { name: string; rest: string } | undefined {
  const segments = key.split("/");
  if (segments[0] !== "packages") return undefined;
  const parts = segments[1]?.startsWith("@") ? 2 : 1;
  if (segments.length < 2 + parts) return undefined;
  return { name: segments.slice(1, 1 + parts).join("/"), rest: segments.slice(1 + parts).join("/") };
}

function versionCount(body: Uint8Array): number | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(body));
  } catch {
    return undefined;
  }
  if (typeof doc !== "object" || doc === null) return undefined;
  const { versions } = doc as { versions?: unknown };
  if (versions === undefined) return 0;
  return typeof versions === "object" && versions !== null && !Array.isArray(versions)
    ? Object.keys(versions).length
    : undefined;
}

/**
 * Counts what the registry stores: one listing of every key (sizes come with it) and one read of each
 * packument for its versions. Works with the server stopped or running; a running server's writes
 * during the scan may or may not be counted.
 */
export async function collectStats(storage: StorageDriver, options: StatsOptions = {}): Promise<RegistryStats> {
  const by = options.by ?? "size";
  const packages = new Map<string, PackageStats & { hasPackument: boolean }>();
  const areas: RegistryStats["areas"] = {};
  const stats: RegistryStats = {
    packages: 0,
    unpublished: 0,
    versions: 0,
    tarballs: { count: 0, bytes: 0 },
    storage: { objects: 0, bytes: 0 },
    areas,
    unreadable: [],
    by,
    top: [],
  };
  let cursor: string | undefined;
  do {
    const page = await storage.list(cursor === undefined ? {} : { cursor });
    for (const object of page.objects) {
      stats.storage.objects++;
      stats.storage.bytes += object.size;
      const area = object.key.includes("/") ? object.key.slice(0, object.key.indexOf("/")) : "(top level)";
      const counted = areas[area] ?? { objects: 0, bytes: 0 };
      counted.objects++;
      counted.bytes += object.size;
      areas[area] = counted;
      const inPackage = packageOf(object.key);
      if (!inPackage) continue;
      let pkg = packages.get(inPackage.name);
      if (!pkg) {
        pkg = { name: inPackage.name, versions: 0, tarballs: 0, bytes: 0, hasPackument: false };
        packages.set(inPackage.name, pkg);
      }
      pkg.bytes += object.size;
      if (inPackage.rest === "packument.json") pkg.hasPackument = true;
      else if (inPackage.rest.startsWith("-/") && inPackage.rest.endsWith(".tgz")) {
        pkg.tarballs++;
        stats.tarballs.count++;
        stats.tarballs.bytes += object.size;
      }
    }
    cursor = page.cursor;
  } while (cursor);

  const queue = [...packages.values()].filter((pkg) => pkg.hasPackument);
  const worker = async () => {
    for (let pkg = queue.shift(); pkg; pkg = queue.shift()) {
      const object = await storage.get(`packages/${pkg.name}/packument.json`);
      if (!object) continue;
      const count = versionCount(object.body);
      if (count === undefined) stats.unreadable.push(pkg.name);
      else pkg.versions = count;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency ?? 8) }, worker));

  const all: PackageStats[] = [];
  for (const { hasPackument, ...pkg } of packages.values()) {
    if (!hasPackument) continue;
    if (pkg.versions > 0) {
      stats.packages++;
      stats.versions += pkg.versions;
    } else if (!stats.unreadable.includes(pkg.name)) {
      stats.unpublished++;
    }
    all.push(pkg);
  }
  const key = (pkg: PackageStats) => (by === "size" ? pkg.bytes : pkg.versions);
  stats.top = all
    .filter((pkg) => pkg.versions > 0)
    .sort((a, b) => key(b) - key(a) || a.name.localeCompare(b.name))
    .slice(0, options.top ?? 10);
  stats.unreadable.sort();
  return stats;
}

/** 1536 → "1.5 KB": powers of 1024, as `limits.maxBodySize` reads sizes. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function table(rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? "").length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) =>
          rightAligned.has(column) ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0),
        )
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function formatStats(stats: RegistryStats, where: string): string {
  const n = (value: number) => value.toLocaleString("en-US");
  const lines = [
    table(
      [
        ["storage", `${where}: ${n(stats.storage.objects)} objects, ${formatBytes(stats.storage.bytes)}`],
        [
          "packages",
          `${n(stats.packages)}${stats.unpublished > 0 ? ` (and ${n(stats.unpublished)} unpublished)` : ""}`,
        ],
        ["versions", n(stats.versions)],
        ["tarballs", `${n(stats.tarballs.count)}, ${formatBytes(stats.tarballs.bytes)}`],
      ],
      new Set(),
    ),
  ];
  const areas = Object.entries(stats.areas).sort(([, a], [, b]) => b.bytes - a.bytes);
  if (areas.length > 0) {
    lines.push(
      "",
      table(
        [
          ["area", "objects", "size"],
          ...areas.map(([area, { objects, bytes }]) => [area, n(objects), formatBytes(bytes)]),
        ],
        new Set([1, 2]),
      ),
    );
  }
  if (stats.top.length > 0) {
    lines.push(
      "",
      `top ${stats.top.length} by ${stats.by}`,
      table(
        [
          ["package", "versions", "tarballs", "size"],
          ...stats.top.map((pkg) => [pkg.name, n(pkg.versions), n(pkg.tarballs), formatBytes(pkg.bytes)]),
        ],
        new Set([1, 2, 3]),
      ),
    );
  }
  if (stats.unreadable.length > 0) lines.push("", `unreadable packuments: ${stats.unreadable.join(", ")}`);
  return lines.join("\n");
}

/** `fw registry stats`: packages, versions, storage use and the largest packages, from the configured storage. */
export async function run(opts: { config?: string; json: boolean; top?: string; by?: string }): Promise<void> {
  const top = opts.top === undefined ? 10 : Number(opts.top);
  if (!Number.isInteger(top) || top < 0) throw new Error(`--top "${opts.top}" is not a whole number of packages`);
  const by = opts.by ?? "size";
  if (by !== "size" && by !== "versions") throw new Error(`--by "${by}" is not one of: size, versions`);
  const { config } = await loadConfig({ file: opts.config, overrides: {} });
  const storage = await storageFromConfig(config);
  try {
    const stats = await collectStats(storage, { top, by });
    if (opts.json) printJson(stats);
    else print(formatStats(stats, describeStorage(config.storage)));
  } finally {
    await storage.dispose?.();
  }
}
