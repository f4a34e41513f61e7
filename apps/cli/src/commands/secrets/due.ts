import { print, printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/** `fw secrets due [--within days]`: secrets whose rotation schedule says they are due or overdue. */
export async function run(opts: SecretsFlags & { within?: number }): Promise<void> {
  if (opts.within !== undefined && (!Number.isFinite(opts.within) || opts.within < 0)) {
    throw new Error(`--within "${opts.within}" is not a number of days`);
  }
  await withVault(opts, async ({ vault }) => {
    const due = await vault.dueSecrets({ withinDays: opts.within ?? 14 });
    if (opts.json) printJson(due);
    else
      print(
        due.length === 0
          ? "nothing due"
          : due
              .map(
                (d) =>
                  `${d.overdue ? "OVERDUE" : "due"} ${d.due.slice(0, 10)} ${d.name} v${d.version} (every ${d.rotateEvery}, ${d.schedule === "secret" ? "its own schedule" : "policy"})`,
              )
              .join("\n"),
      );
  });
}
