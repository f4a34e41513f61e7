import { print, printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/**
 * `fw secrets rotate-master`: a new master key, with every data key re-wrapped under it; no value is
 * re-encrypted. Run it again to finish a rotation that was interrupted.
 */
export async function run(opts: SecretsFlags): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    const result = await vault.rotateMasterKey();
    if (opts.json) printJson(result);
    else
      print(
        `master key ${result.from} → ${result.to} in ${result.source}; ${result.rewrapped} data key(s) re-wrapped${result.note ? `\n${result.note}` : ""}`,
      );
  });
}
