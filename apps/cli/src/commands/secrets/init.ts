import {
  initMasterKey,
  isSecretsError,
  loadMasterKeys,
  MASTER_KEY_VARIABLE,
  MasterKey,
  type ProviderName,
  parseProviderOrder,
  SecretsVault,
} from "@fw/secrets";
import { print, printJson } from "../../output.js";
import { type SecretsFlags, withVault } from "./vault.js";

/**
 * `fw secrets init [--provider keychain|file|env]`: makes sure a master key exists — the OS keychain's,
 * else a 0600 key file — and records it in the vault. With `--provider env` a new key is printed for the
 * deployment's secret store instead, since fw cannot set an environment variable for later processes.
 */
export async function run(opts: SecretsFlags & { provider?: string }): Promise<void> {
  const only =
    opts.provider === undefined ? undefined : (parseProviderOrder(opts.provider, "--provider")[0] as ProviderName);
  await withVault(opts, async ({ vault, storage, providers, where }) => {
    if (only === "env") {
      const existing = await loadMasterKeys(providers).catch((error: unknown) => {
        if (isSecretsError(error, "E_NO_MASTER_KEY")) return null;
        throw error;
      });
      const key = await MasterKey.generate();
      const fresh = new SecretsVault({ storage, masterKeys: { current: key, previous: [], source: "the new key" } });
      let note: string | undefined;
      try {
        await fresh.init();
      } catch (error) {
        if (!isSecretsError(error, "E_WRONG_MASTER_KEY")) throw error;
        note = `this vault uses ${existing?.current.id ?? "another master key"}: to switch to the new key, set FW_SECRETS_PREVIOUS_MASTER_KEY to the current key and ${MASTER_KEY_VARIABLE} to the new one, then run \`fw secrets rotate-master\``;
      }
      if (opts.json) {
        printJson({
          created: true,
          provider: "env",
          variable: MASTER_KEY_VARIABLE,
          masterKeyId: key.id,
          key: key.toText(),
          vault: where,
          ...(note && { note }),
        });
        return;
      }
      process.stderr.write(
        `fw: new master key ${key.id}; fw keeps no copy of it: put this line in your deployment's secret store${note ? `\nfw: ${note}` : ""}\n`,
      );
      print(`${MASTER_KEY_VARIABLE}=${key.toText()}`);
      return;
    }
    const result = await initMasterKey(providers, { ...(only && { only }) });
    const recorded = await vault.init();
    const where_ = result.provider.describe();
    if (opts.json) {
      printJson({
        created: result.created,
        provider: result.provider.name,
        where: where_,
        masterKeyId: result.key.id,
        skipped: result.skipped,
        vault: where,
        vaultCreated: recorded.created,
      });
      return;
    }
    const lines = [
      result.created
        ? `created master key ${result.key.id} in ${where_}`
        : `master key ${result.key.id} is already in ${where_}`,
      ...result.skipped.map((reason) => `  (not in ${reason})`),
      `vault ${recorded.created ? "initialised" : "ready"} in ${where}`,
    ];
    print(lines.join("\n"));
  });
}
