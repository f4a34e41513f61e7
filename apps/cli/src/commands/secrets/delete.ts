import { print, printJson } from "../../output.js";
import { ask } from "./input.js";
import { type SecretsFlags, withVault } from "./vault.js";

/**
 * `fw secrets delete <name> [--purge]`: a deletion marker that keeps the history, or with `--purge` the
 * end of every version. A purge is confirmed by typing the name, or with `--yes` in scripts.
 */
export async function run(opts: SecretsFlags & { name: string; purge: boolean; yes: boolean }): Promise<void> {
  if (opts.purge && !opts.yes) {
    if (!process.stdin.isTTY)
      throw new Error(`--purge destroys every version of ${opts.name}: add --yes to do it from a script`);
    const answer = await ask(
      `purge ${opts.name} and all its versions? This cannot be undone. Type the name to confirm: `,
    );
    if (answer.trim() !== opts.name) throw new Error("not purged: the name did not match");
  }
  await withVault(opts, async ({ vault }) => {
    const result = await vault.deleteSecret(opts.name, { purge: opts.purge });
    if (opts.json) printJson(result);
    else if (result.purged) print(`purged ${result.name} (${result.removed} objects removed)`);
    else print(`deleted ${result.name} (marker v${result.version}; history kept, \`fw secrets set\` brings it back)`);
  });
}
