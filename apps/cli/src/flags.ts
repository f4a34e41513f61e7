import type { Command } from "cac";

/** Parsed flags as cac hands them over: strings, numbers (mri turns "0" into 0), booleans or arrays. */
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
