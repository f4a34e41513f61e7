import { compareVersions, versionDiff } from "@fw/semver-graph";
import { print, printJson } from "../../output.js";

/** `fw version compare <a> <b>`: `1.2.3 < 1.3.0 (minor)`; JSON `{ a, b, result, diff }`. */
export async function run(opts: { a: string; b: string; json: boolean }): Promise<void> {
  const result = compareVersions(opts.a, opts.b);
  const diff = versionDiff(opts.a, opts.b);
  if (opts.json) printJson({ a: opts.a, b: opts.b, result, diff });
  else print(`${opts.a} ${result < 0 ? "<" : result > 0 ? ">" : "="} ${opts.b}${diff ? ` (${diff})` : ""}`);
}
