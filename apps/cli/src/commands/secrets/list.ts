import { print, printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/** `fw secrets list [--prefix p] [--all]`: names and versions, never values. */
export async function run(opts: SecretsFlags & { prefix?: string; all: boolean }): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    const secrets = await vault.listSecrets({
      ...(opts.prefix !== undefined && { prefix: opts.prefix }),
      includeDeleted: opts.all,
    });
    if (opts.json) {
      printJson(secrets);
      return;
    }
    if (secrets.length === 0) {
      print("no secrets");
      return;
    }
    const width = Math.max(...secrets.map((s) => s.name.length));
    print(
      secrets
        .map((s) =>
          [
            s.name.padEnd(width),
            `v${s.latest}`.padEnd(5),
            s.deleted ? "deleted" : `updated ${s.updated.slice(0, 10)}`,
            s.rotateEvery ? `rotate every ${s.rotateEvery}` : "",
          ]
            .join("  ")
            .trimEnd(),
        )
        .join("\n"),
    );
  });
}
