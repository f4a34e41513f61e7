import { generateSecretValue, parseDuration, type SecretVersion } from "@fw/secrets";
import { print, printJson } from "../../output.js";
import { readValue } from "./input.js";
import { type SecretsFlags, withVault } from "./vault.js";

export interface WriteOptions extends SecretsFlags {
  name: string;
  rotateEvery?: string;
  /** Random bytes to generate instead of reading a value (`--generate [bytes]`). */
  generate?: number;
}

function report(opts: WriteOptions, version: SecretVersion, verb: string, generated: boolean): void {
  if (opts.json) printJson({ ...version, ...(generated && { generated: true }) });
  else print(`${verb} ${version.name} v${version.version}${generated ? " (generated value)" : ""}`);
}

async function value(opts: WriteOptions): Promise<string> {
  if (opts.rotateEvery !== undefined) parseDuration(opts.rotateEvery, "--rotate-every");
  return opts.generate !== undefined ? generateSecretValue(opts.generate) : readValue(`value for ${opts.name}`);
}

/** `fw secrets set <name>`: the value from stdin or a prompt, never from the command line. */
export async function runSet(opts: WriteOptions): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    const version = await vault.setSecret(opts.name, await value(opts), {
      ...(opts.rotateEvery !== undefined && { rotateEvery: opts.rotateEvery }),
    });
    report(opts, version, "set", opts.generate !== undefined);
  });
}

/** `fw secrets rotate <name>`: a new version, from stdin, a prompt, or `--generate`. */
export async function runRotate(opts: WriteOptions): Promise<void> {
  await withVault(opts, async ({ vault }) => {
    const version = await vault.rotateSecret(opts.name, await value(opts), {
      ...(opts.rotateEvery !== undefined && { rotateEvery: opts.rotateEvery }),
    });
    report(opts, version, "rotated", opts.generate !== undefined);
  });
}
