import type { SecretVersion } from "./vault.js";

function shortTime(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`;
}

/**
 * A secret's history in plain ASCII, newest first, one line per version joined by `|`: `*` marks the
 * version `getSecret` returns, `o` older values, `x` deletion markers. Plain characters only, so it reads
 * the same in logs, CI output and terminals without Unicode.
 *
 *     uplinks/public/token: 3 versions, current v3, rotate every 90d (due 2025-08-30)
 *     * v3  current  2025-06-01 12:00Z  rotate by ci      mk_2bW0cTq1Yx9fVn3K
 *     |
 *     o v2           2025-03-01 09:30Z  rotate by alice   mk_2bW0cTq1Yx9fVn3K
 *     |
 *     o v1           2025-01-01 08:00Z  set by alice      mk_2bW0cTq1Yx9fVn3K
 */
export function renderVersionGraph(
  name: string,
  versions: readonly SecretVersion[],
  schedule: { rotateEvery?: string; due?: string } = {},
): string {
  const newest = [...versions].sort((a, b) => b.version - a.version);
  const current = newest.find((v) => v.current);
  const deleted = newest[0]?.op === "delete";
  const header = [
    `${name}: ${versions.length} version${versions.length === 1 ? "" : "s"}`,
    deleted ? "deleted" : current ? `current v${current.version}` : "no current value",
    ...(schedule.rotateEvery
      ? [`rotate every ${schedule.rotateEvery}${schedule.due && !deleted ? ` (due ${schedule.due.slice(0, 10)})` : ""}`]
      : []),
  ].join(", ");
  const numberWidth = Math.max(...newest.map((v) => String(v.version).length), 1) + 1;
  const labelOf = (v: SecretVersion) => (v.current ? "current" : v.op === "delete" ? "deleted" : "");
  const labelWidth = Math.max(...newest.map((v) => labelOf(v).length), 0);
  const whatOf = (v: SecretVersion) => `${v.op}${v.actor ? ` by ${v.actor}` : ""}`;
  const whatWidth = Math.max(...newest.map((v) => whatOf(v).length), 0);
  const lines = newest.map((v) => {
    const marker = v.op === "delete" ? "x" : v.current ? "*" : "o";
    const cells = [
      `${marker} ${`v${v.version}`.padEnd(numberWidth)}`,
      ...(labelWidth > 0 ? [labelOf(v).padEnd(labelWidth)] : []),
      shortTime(v.created),
      whatOf(v).padEnd(whatWidth),
      v.masterKeyId ?? "",
    ];
    return cells.join("  ").trimEnd();
  });
  return [header, lines.join("\n|\n")].join("\n");
}
