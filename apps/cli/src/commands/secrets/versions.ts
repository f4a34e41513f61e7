import { print, printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/** `fw secrets versions <name>`: the history as an ASCII graph (never the values). */
export async function run(opts: SecretsFlags & { name: string }): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    if (opts.json) printJson(await vault.getSecretVersions(opts.name));
    else print(await vault.generateVersionGraph(opts.name));
  });
}
