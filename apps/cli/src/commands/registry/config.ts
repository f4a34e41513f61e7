import { execFile } from "node:child_process";
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { promisify } from "node:util";
import {
  type ConfigOverrides,
  DEFAULT_CONFIG_FILE,
  type FwConfig,
  loadConfig,
  readConfigFile,
  redactConfig,
  renderConfigTemplate,
  serializeConfig,
} from "@fw/server";
import JSON5 from "json5";
import { displayPath, print, printJson } from "../../output.js";

export interface ShowOptions {
  config?: string;
  overrides: ConfigOverrides;
  json: boolean;
}

function pretty(config: FwConfig, sources: string[]): string {
  // Comments keep the whole output valid JSON5, so it can be pasted into a config file.
  const header = ["// sources, each overriding the ones before:", ...sources.map((source) => `//   ${source}`)];
  return `${header.join("\n")}\n${JSON5.stringify(redactConfig(config), { space: 2, quote: '"' })}`;
}

/** `fw registry config`: the effective config, secrets redacted, and where it came from. */
export async function run(opts: ShowOptions): Promise<void> {
  const { config, file, sources } = await loadConfig({ file: opts.config, overrides: opts.overrides });
  if (opts.json) printJson({ config: redactConfig(config), file: file ?? null, sources });
  else print(pretty(config, sources));
}

export interface InitOptions {
  /** Where to write. Default `./fw.config.json5`. */
  config?: string;
  force: boolean;
  json: boolean;
}

/** The registry npm uses now, or undefined when npm is missing, slow or prints something else. */
async function npmRegistry(): Promise<string | undefined> {
  try {
    const { stdout } = await promisify(execFile)("npm", ["config", "get", "registry"], {
      timeout: 5_000,
      // npm is npm.cmd on Windows, which only a shell runs.
      shell: process.platform === "win32",
      windowsHide: true,
    });
    const url = new URL(stdout.trim());
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : undefined;
  } catch {
    return undefined;
  }
}

/** `fw registry config init`: writes a commented config with every default; never overwrites without `--force`. */
export async function runInit(opts: InitOptions): Promise<void> {
  const target = resolve(opts.config ?? DEFAULT_CONFIG_FILE);
  const upstreamRegistry = await npmRegistry();
  const text = renderConfigTemplate(upstreamRegistry === undefined ? {} : { upstreamRegistry });
  try {
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, text, { flag: opts.force ? "w" : "wx" });
  } catch (error) {
    if (error instanceof Error && "code" in error && error.code === "EEXIST") {
      throw new Error(`${displayPath(target)} already exists; pass --force to overwrite it`, { cause: error });
    }
    throw error;
  }
  if (opts.json) printJson({ file: target, upstreamRegistry: upstreamRegistry ?? null });
  else print(`wrote ${displayPath(target)}`);
}

export interface LoadOptions {
  /** Default: `FW_CONFIG`, else `./fw.config.json5`. */
  file?: string;
  json: boolean;
}

/** `fw registry config load [FILE]`: validates one file on its own (no environment, no flags) and prints it. */
export async function runLoad(opts: LoadOptions): Promise<void> {
  const named = opts.file ?? (process.env.FW_CONFIG || undefined);
  const candidate = named ?? DEFAULT_CONFIG_FILE;
  if (named === undefined && !(await stat(candidate).catch(() => undefined))) {
    throw new Error(
      `no config file: pass one, set FW_CONFIG, or create ./${DEFAULT_CONFIG_FILE} with \`fw registry config init\``,
    );
  }
  const { config, file } = await readConfigFile(candidate);
  if (opts.json) printJson({ file, config: redactConfig(config) });
  else print(pretty(config, [file]));
}

export interface SaveOptions {
  config?: string;
  /** Default: the config file read, else `./fw.config.json5`. */
  out?: string;
  overrides: ConfigOverrides;
  json: boolean;
}

/** `fw registry config save`: writes the effective config (file + environment + flags) as JSON5. */
export async function runSave(opts: SaveOptions): Promise<void> {
  const { config, file, sources } = await loadConfig({ file: opts.config, overrides: opts.overrides });
  const target = resolve(opts.out ?? file ?? DEFAULT_CONFIG_FILE);
  const text = serializeConfig(config, { baseDir: dirname(target) });
  // Through a temp file, so a crash never leaves the live config half-written.
  const temp = `${target}.${process.pid}.tmp`;
  try {
    // With credentials in it (storage keys, an uplink token, the 2FA key: what `config` shows as ***),
    // readable by the owner only.
    const holdsSecrets = JSON.stringify(redactConfig(config)) !== JSON.stringify(config);
    await writeFile(temp, text, { mode: holdsSecrets ? 0o600 : 0o644 });
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  if (opts.json) printJson({ file: target, sources });
  else print(`wrote ${displayPath(target)}`);
}
