import { loadConfig } from "@fw/server";
import { collectGarbage, DEFAULT_GC_GRACE_MS, type GcReport, storageFromConfig } from "@fw/server/node";
import { print, printJson } from "../../output.js";
import { formatBytes } from "./stats.js";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "10m" → 600000: a whole number and a unit, ms, s, m, h or d (a bare "10" could mean minutes or ms). */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) throw new Error(`--grace "${text}" is not a duration; use e.g. 10m, 2h or 1d`);
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}

function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1000],
  ] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function describeReport(report: GcReport, apply: boolean, graceMs: number): string {
  const lines: string[] = [];
  const packages = new Set(report.orphans.map((o) => o.package)).size;
  lines.push(
    report.orphans.length === 0
      ? `no orphaned objects older than ${formatDuration(graceMs)} in ${report.packages} packages (${report.objects} objects)`
      : `${report.orphans.length} orphaned objects (${formatBytes(report.bytes)}) older than ${formatDuration(graceMs)} in ${packages} of ${report.packages} packages:`,
  );
  for (const orphan of report.orphans)
    lines.push(`  ${orphan.key}  ${formatBytes(orphan.size)}  ${orphan.lastModified}`);
  if (report.young > 0)
    lines.push(`${report.young} unreferenced objects are younger than that and may belong to publishes in flight`);
  for (const problem of report.errors)
    lines.push(`left alone: every object of ${problem.package} (its packument is unreadable: ${problem.reason})`);
  if (graceMs < DEFAULT_GC_GRACE_MS)
    lines.push(
      `note: a grace period below ${formatDuration(DEFAULT_GC_GRACE_MS)} (the server's) may catch publishes still in flight`,
    );
  if (!apply) {
    if (report.orphans.length > 0) lines.push("dry run: nothing deleted; run again with --apply to delete them");
    return lines.join("\n");
  }
  const freed = report.deleted.reduce((sum, o) => sum + o.size, 0);
  lines.push(`deleted ${report.deleted.length} (${formatBytes(freed)})`);
  for (const skipped of report.skipped) lines.push(`  kept ${skipped.key}: ${skipped.reason}`);
  return lines.join("\n");
}

/**
 * `fw registry gc [--apply] [--grace 10m]`: tarballs and attestations that no packument references,
 * left by publishes (or unpublishes) that crashed halfway. A dry run by default.
 */
export async function run(opts: { config?: string; json: boolean; apply: boolean; grace?: string }): Promise<void> {
  const graceMs = opts.grace === undefined ? DEFAULT_GC_GRACE_MS : parseDuration(opts.grace);
  const { config } = await loadConfig({ file: opts.config, overrides: {} });
  const storage = await storageFromConfig(config);
  try {
    const report = await collectGarbage(storage, { graceMs, apply: opts.apply });
    if (opts.json) printJson({ apply: opts.apply, graceMs, ...report });
    else print(describeReport(report, opts.apply, graceMs));
  } finally {
    await storage.dispose?.();
  }
}
