import type { CAC, Command } from "cac";

/** Parsed flags as cac hands them over: strings (as typed, see `restoreTypedValues`), booleans or arrays. */
export type Flags = Record<string, unknown>;

/** The last of a repeated flag (`--port 1 --port 2` is 2). */
export function last(value: unknown): unknown {
  return Array.isArray(value) ? value.at(-1) : value;
}

/** A flag's value as text, or undefined when it was not given (or given without a value). */
export function text(value: unknown): string | undefined {
  const one = last(value);
  return typeof one === "string" || typeof one === "number" ? String(one) : undefined;
}

export const CONFIG_FLAG = ["--config <file>", "Config file (default: FW_CONFIG, else ./fw.config.json5)"] as const;

/** The flags of every command that talks to a registry, read by `RegistryClient.create`. */
export function registryFlags(command: Command): Command {
  return command
    .option("--registry <url>", "Registry URL (default: FW_REGISTRY, else the fw config's publicUrl or listen address)")
    .option("--token <token>", "Bearer token (default: FW_TOKEN, else the registry's _authToken in .npmrc)")
    .option(...CONFIG_FLAG);
}

/** The `--registry`, `--token` and `--config` values given, as `RegistryClient.create` takes them. */
export function clientFlags(flags: Flags): { registry?: string; token?: string; config?: string } {
  const registry = text(flags.registry);
  const token = text(flags.token);
  const config = text(flags.config);
  return {
    ...(registry !== undefined && { registry }),
    ...(token !== undefined && { token }),
    ...(config !== undefined && { config }),
  };
}

/**
 * Puts back every flag value exactly as typed. cac's parser (mri) turns values that look like numbers
 * into numbers, which drops leading zeros and changes other text: a one-time password "012345" would
 * become 12345, a token "1e3" 1000. Call after `cli.parse(…, { run: false })`; the matched command's
 * and the global value-taking flags are restored from `cli.rawArgs`.
 */
export function restoreTypedValues(cli: CAC): void {
  const options = [...cli.globalCommand.options, ...(cli.matchedCommand?.options ?? [])].filter((o) => !o.isBoolean);
  const nameOf = new Map<string, string>();
  for (const option of options) {
    for (const part of option.rawName.split(",")) {
      const flag = part.trim().split(/[\s<[]/, 1)[0] ?? "";
      if (flag.startsWith("-")) nameOf.set(flag, option.name);
    }
  }
  const typed = new Map<string, string[]>();
  const args = cli.rawArgs;
  for (let index = 0; index < args.length; index++) {
    const arg = args[index] as string;
    if (arg === "--") break;
    const equals = arg.indexOf("=");
    const name = nameOf.get(equals > 0 ? arg.slice(0, equals) : arg);
    if (name === undefined) continue;
    let value: string | undefined;
    if (equals > 0) value = arg.slice(equals + 1);
    else if (index + 1 < args.length && !(args[index + 1] as string).startsWith("-")) value = args[++index];
    if (value !== undefined) typed.set(name, [...(typed.get(name) ?? []), value]);
  }
  for (const [name, values] of typed) {
    const parsed = cli.options[name];
    if (typeof parsed === "number") cli.options[name] = values.at(-1);
    else if (Array.isArray(parsed) && parsed.length === values.length) cli.options[name] = values;
  }
}
