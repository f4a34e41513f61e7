import type { CAC, Command } from "cac";
import { CONFIG_FLAG, type Flags, last, text } from "../../flags.js";
import type { SecretsFlags } from "./vault.js";

function vaultFlags(command: Command): Command {
  return command
    .option(...CONFIG_FLAG)
    .option("--vault <dir>", "Keep the vault in this folder instead of the registry's storage")
    .option("--json", "Print JSON");
}

function common(flags: Flags): SecretsFlags {
  const config = text(flags.config);
  const vault = text(flags.vault);
  return { ...(config !== undefined && { config }), ...(vault !== undefined && { vault }), json: flags.json === true };
}

/** `name` or `name@3`. */
function nameAndVersion(value: unknown): { name: string; version?: number } {
  const raw = String(value);
  const match = /^(.*)@(\d+)$/.exec(raw);
  return match ? { name: match[1] as string, version: Number(match[2]) } : { name: raw };
}

/** `--generate` alone is 32 bytes; `--generate 48` is 48. */
function generate(flags: Flags): number | undefined {
  const value = last(flags.generate);
  if (value === undefined || value === false) return undefined;
  if (value === true) return 32;
  const bytes = Number(text(value));
  if (!Number.isSafeInteger(bytes)) throw new Error(`--generate "${text(value)}" is not a number of bytes`);
  return bytes;
}

function writeOptions(name: unknown, flags: Flags) {
  const rotateEvery = text(flags.rotateEvery);
  const bytes = generate(flags);
  return {
    ...common(flags),
    name: String(name),
    ...(rotateEvery !== undefined && { rotateEvery }),
    ...(bytes !== undefined && { generate: bytes }),
  };
}

/** Adds the `fw secrets …` commands. */
export function registerSecretsCommands(cli: CAC): void {
  vaultFlags(cli.command("secrets init", "Create the master key in the best available provider and set up the vault"))
    .option("--provider <name>", "keychain, file, or env (prints a new key for your deployment's secret store)")
    .example("  $ fw secrets init")
    .action(async (flags: Flags) => {
      const { run } = await import("./init.js");
      const provider = text(flags.provider);
      await run({ ...common(flags), ...(provider !== undefined && { provider }) });
    });

  vaultFlags(cli.command("secrets set <name>", "Create a secret (v1); the value comes from stdin or a prompt"))
    .option("--rotate-every <duration>", "Rotation schedule for `fw secrets due`: 12h, 90d, 2w")
    .option("--generate [bytes]", "Store random bytes (base64url, default 32) instead of reading a value")
    .example("  $ printf '%s' \"$TOKEN\" | fw secrets set uplinks/public/token --rotate-every 90d")
    .action(async (name: unknown, flags: Flags) => {
      const { runSet } = await import("./write.js");
      await runSet(writeOptions(name, flags));
    });

  vaultFlags(cli.command("secrets get <name>", "Print a secret's value (name@3 for version 3), and nothing else"))
    .example("  $ TOKEN=$(fw secrets get uplinks/public/token)")
    .action(async (name: unknown, flags: Flags) => {
      const { run } = await import("./get.js");
      await run({ ...common(flags), ...nameAndVersion(name) });
    });

  vaultFlags(cli.command("secrets rotate <name>", "Add a new version of a secret; old versions stay readable"))
    .option("--rotate-every <duration>", "Change the rotation schedule: 12h, 90d, 2w")
    .option("--generate [bytes]", "Store random bytes (base64url, default 32) instead of reading a value")
    .action(async (name: unknown, flags: Flags) => {
      const { runRotate } = await import("./write.js");
      await runRotate(writeOptions(name, flags));
    });

  vaultFlags(cli.command("secrets versions <name>", "Show a secret's version history (never the values)")).action(
    async (name: unknown, flags: Flags) => {
      const { run } = await import("./versions.js");
      await run({ ...common(flags), name: String(name) });
    },
  );

  vaultFlags(cli.command("secrets list", "List secrets (never the values)"))
    .option("--prefix <prefix>", "Only names starting with this")
    .option("--all", "Include deleted secrets")
    .action(async (flags: Flags) => {
      const { run } = await import("./list.js");
      const prefix = text(flags.prefix);
      await run({ ...common(flags), ...(prefix !== undefined && { prefix }), all: flags.all === true });
    });

  vaultFlags(cli.command("secrets delete <name>", "Delete a secret, keeping its history; --purge destroys it"))
    .option("--purge", "Destroy every version instead of marking the secret deleted")
    .option("--yes", "Do not ask before purging")
    .action(async (name: unknown, flags: Flags) => {
      const { run } = await import("./delete.js");
      await run({ ...common(flags), name: String(name), purge: flags.purge === true, yes: flags.yes === true });
    });

  vaultFlags(cli.command("secrets due", "Secrets whose rotation schedule says they are due"))
    .option("--within <days>", "How far ahead to look (default 14)")
    .action(async (flags: Flags) => {
      const { run } = await import("./due.js");
      const within = text(flags.within);
      await run({ ...common(flags), ...(within !== undefined && { within: Number(within) }) });
    });

  vaultFlags(
    cli.command("secrets rotate-master", "Replace the master key and re-wrap every data key (values stay as they are)"),
  ).action(async (flags: Flags) => {
    const { run } = await import("./rotate-master.js");
    await run(common(flags));
  });
}
