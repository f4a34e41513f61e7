import { printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/**
 * `fw secrets get <name> [--version n]`: prints only the value, for `$(fw secrets get …)` and redirects;
 * a newline is added only on a terminal, so redirected output is the value byte for byte.
 */
export async function run(opts: SecretsFlags & { name: string; version?: number }): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    const secret = await vault.readSecret(opts.name, { ...(opts.version !== undefined && { version: opts.version }) });
    if (opts.json) printJson(secret);
    else process.stdout.write(process.stdout.isTTY ? `${secret.value}\n` : secret.value);
  });
}
