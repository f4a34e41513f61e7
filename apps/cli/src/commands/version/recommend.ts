import { RELEASE_TYPES, recommendAll, recommendNext } from "@fw/semver-graph";
import { print, printJson } from "../../output.js";

/**
 * `fw version recommend <version> [type] [--preid id]`: the next version (just the version, for
 * scripts), or a table of every bump without a type.
 */
export async function run(opts: { version: string; type?: string; preid?: string; json: boolean }): Promise<void> {
  const options = opts.preid === undefined ? {} : { preid: opts.preid };
  if (opts.type !== undefined) {
    const next = recommendNext(opts.version, opts.type, options);
    if (opts.json) printJson({ version: opts.version, type: opts.type, preid: opts.preid ?? null, next });
    else print(next);
    return;
  }
  const all = recommendAll(opts.version, options);
  if (opts.json) printJson({ version: opts.version, preid: opts.preid ?? null, next: all });
  else {
    const width = Math.max(...RELEASE_TYPES.map((type) => type.length));
    print(
      Object.entries(all)
        .map(([type, next]) => `${type.padEnd(width)}  ${next}`)
        .join("\n"),
    );
  }
}
