import { readFile, stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { parse as parseDotenv } from "dotenv";
import JSON5 from "json5";
import { ConfigError } from "./errors.js";
import { checkConfig } from "./parse.js";
import type { ConfigIssue, FwConfig } from "./types.js";

/** File looked for in the working directory when neither `--config` nor `FW_CONFIG` names one. */
export const DEFAULT_CONFIG_FILE = "fw.config.json5";
/** Dotenv file read from the working directory; the seed's deployments keep their R2 secrets in it. */
export const DOTENV_FILE = ".env.registry";

/**
 * Settings given on the command line, the highest-precedence source. Values are as a CLI parser hands
 * them over (a port may still be a string); they are checked like every other source.
 */
export interface ConfigOverrides {
  host?: string;
  port?: number | string;
  publicUrl?: string;
  /** Relative to the working directory. Chooses fs storage. */
  storagePath?: string;
  logLevel?: string;
  logFormat?: string;
  maxBodySize?: number | string;
  cacheMemory?: number | string;
  signup?: boolean | string;
}

export interface LoadConfigOptions {
  /** Config file to read (`--config`); a missing file is an error. Default: `FW_CONFIG`, else `./fw.config.json5` if it exists. */
  file?: string;
  /** Where `./fw.config.json5` and `.env.registry` are looked for and relative paths start. Default: `process.cwd()`. */
  cwd?: string;
  /** The environment. Default: `process.env` (read, never changed). */
  env?: Record<string, string | undefined>;
  /** Command-line flags. */
  overrides?: ConfigOverrides;
}

export interface LoadedConfig {
  config: FwConfig;
  /** Absolute path of the config file read, if any. */
  file?: string;
  /** What contributed, lowest precedence first, e.g. `["defaults", "/srv/fw.config.json5", "environment: FW_PORT"]`. */
  sources: string[];
}

type Plain = Record<string, unknown>;

interface Setting {
  env: string;
  flag: keyof ConfigOverrides;
  path: readonly [string, ...string[]];
  /** Turns text from the environment into the type the schema checks; text it cannot read is passed on for the schema to reject. */
  read?: (text: string) => unknown;
}

function readPort(text: string): unknown {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : text;
}

const TRUE = new Set(["true", "1", "yes", "on"]);
const FALSE = new Set(["false", "0", "no", "off"]);
function readBoolean(text: string): unknown {
  const word = text.trim().toLowerCase();
  if (TRUE.has(word)) return true;
  if (FALSE.has(word)) return false;
  return text;
}

/** The one table of environment variables and flags; `storagePath` and R2 are handled apart because they choose the driver. */
const SETTINGS: readonly Setting[] = [
  { env: "FW_HOST", flag: "host", path: ["listen", "host"] },
  { env: "FW_PORT", flag: "port", path: ["listen", "port"], read: readPort },
  { env: "FW_PUBLIC_URL", flag: "publicUrl", path: ["publicUrl"] },
  { env: "FW_LOG_LEVEL", flag: "logLevel", path: ["log", "level"] },
  { env: "FW_LOG_FORMAT", flag: "logFormat", path: ["log", "format"] },
  { env: "FW_MAX_BODY_SIZE", flag: "maxBodySize", path: ["limits", "maxBodySize"] },
  { env: "FW_CACHE_MEMORY", flag: "cacheMemory", path: ["limits", "cacheMemory"] },
  { env: "FW_SIGNUP", flag: "signup", path: ["auth", "signup"], read: readBoolean },
];
const STORAGE_PATH = { env: "FW_STORAGE_PATH", flag: "storagePath" } as const;
const R2_VARS = ["R2_ACCOUNT_ID", "R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY", "R2_REGISTRY_BUCKET"] as const;

function flagName(flag: keyof ConfigOverrides): string {
  return `--${flag.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
}

function isPlain(value: unknown): value is Plain {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The config being assembled from its sources, remembering which environment variable or flag set each
 * value so that an error about it can say where it came from.
 */
class Assembly {
  readonly data: Plain;
  private readonly origins = new Map<string, string>();

  constructor(data: Plain) {
    this.data = data;
  }

  set(path: readonly [string, ...string[]], value: unknown, origin: string): void {
    let node = this.data;
    for (const key of path.slice(0, -1)) {
      const child = node[key];
      if (isPlain(child)) node = child;
      else {
        const fresh: Plain = {};
        node[key] = fresh;
        node = fresh;
      }
    }
    node[path[path.length - 1] as string] = value;
    this.origins.set(path.join("."), origin);
  }

  /** Replaces `storage` unless it already uses `driver`, in which case `fields` are merged into it. */
  setStorage(driver: "fs" | "s3", fields: Plain, origin: string): void {
    const current = this.data.storage;
    const sameDriver = isPlain(current) && (current.driver ?? "fs") === driver;
    if (!sameDriver) {
      this.data.storage = { driver };
      for (const key of [...this.origins.keys()]) if (key.startsWith("storage.")) this.origins.delete(key);
      this.origins.set("storage.driver", origin);
    }
    for (const [key, value] of Object.entries(fields)) this.set(["storage", key], value, origin);
  }

  /** Where the value at `path` (or the nearest value above or below it) came from, unless from the file. */
  originOf(path: string): string | undefined {
    // Only the file can make the whole config wrong.
    if (path === "") return undefined;
    for (let at = path; at !== ""; at = at.includes(".") ? at.slice(0, at.lastIndexOf(".")) : "") {
      const origin = this.origins.get(at);
      if (origin) return origin;
    }
    for (const [key, origin] of this.origins) if (key.startsWith(`${path}.`)) return origin;
    return undefined;
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if (isErrnoException(error) && (error.code === "ENOENT" || error.code === "ENOTDIR")) return undefined;
    throw new ConfigError([{ path: "", message: `cannot read ${file}: ${describe(error)}` }], { cause: error });
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && "code" in error;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Reads a JSON5 config file into plain data, without validating it. */
async function readRaw(file: string, namedBy?: string): Promise<Plain> {
  const text = await readText(file);
  if (text === undefined) {
    const by = namedBy ? ` (named by ${namedBy})` : "";
    throw new ConfigError([{ path: "", message: `config file ${file} does not exist${by}` }]);
  }
  let data: unknown;
  try {
    data = JSON5.parse(text);
  } catch (error) {
    // json5's messages read "JSON5: invalid character 'x' at 3:5".
    const message = describe(error).replace(/^JSON5:\s*/, "");
    throw new ConfigError([{ path: "", message: `expected JSON5: ${message}` }], { file, cause: error });
  }
  if (!isPlain(data)) throw new ConfigError([{ path: "", message: "expected an object at the top level" }], { file });
  return data;
}

/**
 * Reads and validates one config file on its own: no environment, no flags. A relative `storage.path`
 * is relative to the file's folder.
 */
export async function readConfigFile(
  file: string,
  options: { cwd?: string } = {},
): Promise<{ config: FwConfig; file: string }> {
  const path = resolve(options.cwd ?? process.cwd(), file);
  const result = checkConfig(await readRaw(path), { baseDir: dirname(path) });
  if ("issues" in result) throw new ConfigError(result.issues, { file: path });
  return { config: result.config, file: path };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

interface EnvLayer {
  /** How a variable from this layer is named in messages. */
  label(name: string): string;
  /** For `sources`. */
  title: string;
  vars: Record<string, string | undefined>;
  used: string[];
}

/**
 * Loads the effective config. Sources, lowest precedence first — each one overrides the ones before:
 *
 * 1. defaults (see `DEFAULTS`);
 * 2. the config file: `options.file` (`--config`), else `FW_CONFIG`, else `./fw.config.json5` if it
 *    exists; a file that was named but is missing is an error;
 * 3. `.env.registry` in the working directory (dotenv format; `process.env` is not changed);
 * 4. the environment: `FW_HOST`, `FW_PORT`, `FW_PUBLIC_URL`, `FW_STORAGE_PATH`, `FW_LOG_LEVEL`,
 *    `FW_LOG_FORMAT`, `FW_MAX_BODY_SIZE`, `FW_SIGNUP`, and R2 storage when all four of
 *    `R2_ACCOUNT_ID`, `R2_ACCESS_KEY_ID`, `R2_SECRET_ACCESS_KEY`, `R2_REGISTRY_BUCKET` are set;
 * 5. command-line flags (`options.overrides`).
 *
 * Empty variables count as unset. Relative paths from the file are relative to its folder; from the
 * environment and flags, to the working directory.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = resolve(options.cwd ?? process.cwd());
  const processEnv = options.env ?? process.env;
  const dotenvPath = join(cwd, DOTENV_FILE);
  const dotenvText = await readText(dotenvPath);
  const dotenv: Record<string, string | undefined> = dotenvText === undefined ? {} : parseDotenv(dotenvText);
  const layers: EnvLayer[] = [
    { label: (name) => `${name} in ${DOTENV_FILE}`, title: dotenvPath, vars: dotenv, used: [] },
    { label: (name) => name, title: "environment", vars: processEnv, used: [] },
  ];
  const lookup = (name: string) => nonEmpty(processEnv[name]) ?? nonEmpty(dotenv[name]);

  const fromEnv = lookup("FW_CONFIG");
  let file: string | undefined;
  let namedBy: string | undefined;
  if (options.file !== undefined) [file, namedBy] = [resolve(cwd, options.file), "--config"];
  else if (fromEnv !== undefined) [file, namedBy] = [resolve(cwd, fromEnv), "FW_CONFIG"];
  else if (await isFile(join(cwd, DEFAULT_CONFIG_FILE))) file = join(cwd, DEFAULT_CONFIG_FILE);

  const sources = ["defaults"];
  const assembly = new Assembly(file === undefined ? {} : await readRaw(file, namedBy));
  if (file !== undefined) sources.push(file);

  const r2Issue = r2Problem(layers);
  if (r2Issue) throw new ConfigError([r2Issue]);
  // R2 storage belongs to the highest layer that supplied one of its variables.
  const r2Layer = R2_VARS.every((name) => lookup(name) !== undefined)
    ? layers.findLast((layer) => R2_VARS.some((name) => nonEmpty(layer.vars[name]) !== undefined))
    : undefined;

  for (const layer of layers) {
    for (const setting of SETTINGS) {
      const text = nonEmpty(layer.vars[setting.env]);
      if (text === undefined) continue;
      assembly.set(setting.path, setting.read ? setting.read(text) : text, layer.label(setting.env));
      layer.used.push(setting.env);
    }
    const storagePath = nonEmpty(layer.vars[STORAGE_PATH.env]);
    if (storagePath !== undefined && layer === r2Layer) {
      throw new ConfigError([
        {
          path: "storage",
          message: `expected one storage: ${layer.label(STORAGE_PATH.env)} asks for a folder and the R2_* variables for R2; unset one`,
        },
      ]);
    }
    if (storagePath !== undefined) {
      assembly.setStorage("fs", { path: resolve(cwd, storagePath) }, layer.label(STORAGE_PATH.env));
      layer.used.push(STORAGE_PATH.env);
    }
    if (layer === r2Layer) {
      assembly.setStorage("s3", r2Storage(lookup), layer.label("R2_*"));
      // Credit each variable to the layer its value came from.
      for (const name of R2_VARS) layers.findLast((each) => nonEmpty(each.vars[name]) !== undefined)?.used.push(name);
    }
  }
  for (const layer of layers) if (layer.used.length > 0) sources.push(`${layer.title}: ${layer.used.join(", ")}`);

  const flags = applyOverrides(assembly, options.overrides ?? {}, cwd);
  if (flags.length > 0) sources.push(`flags: ${flags.join(", ")}`);

  const result = checkConfig(assembly.data, { baseDir: file === undefined ? cwd : dirname(file) });
  if ("issues" in result) {
    const issues: ConfigIssue[] = result.issues.map((issue) => {
      const origin = assembly.originOf(issue.path);
      return origin ? { path: issue.path, message: `${issue.message} (from ${origin})` } : issue;
    });
    // Name the file only when some problem is in it, not when every one came from a variable or flag.
    const inFile = file !== undefined && result.issues.some((issue) => assembly.originOf(issue.path) === undefined);
    throw new ConfigError(issues, inFile ? { file } : {});
  }
  return { config: result.config, ...(file === undefined ? {} : { file }), sources };
}

/** All four R2 variables, or none: three of them would silently fall back to local storage. */
function r2Problem(layers: EnvLayer[]): ConfigIssue | undefined {
  const present = R2_VARS.filter((name) => layers.some((layer) => nonEmpty(layer.vars[name]) !== undefined));
  if (present.length === 0 || present.length === R2_VARS.length) return undefined;
  const missing = R2_VARS.filter((name) => !present.includes(name));
  return {
    path: "storage",
    message: `expected all four R2 variables (R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_REGISTRY_BUCKET): ${present.join(", ")} ${present.length === 1 ? "is" : "are"} set but ${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} missing`,
  };
}

function r2Storage(lookup: (name: string) => string | undefined): Plain {
  const account = lookup("R2_ACCOUNT_ID") ?? "";
  return {
    bucket: lookup("R2_REGISTRY_BUCKET"),
    endpoint: `https://${account}.r2.cloudflarestorage.com`,
    region: "auto",
    accessKeyId: lookup("R2_ACCESS_KEY_ID"),
    secretAccessKey: lookup("R2_SECRET_ACCESS_KEY"),
  };
}

function applyOverrides(assembly: Assembly, overrides: ConfigOverrides, cwd: string): string[] {
  const used: string[] = [];
  for (const setting of SETTINGS) {
    const value = overrides[setting.flag];
    if (value === undefined) continue;
    const flag = flagName(setting.flag);
    assembly.set(setting.path, typeof value === "string" && setting.read ? setting.read(value) : value, flag);
    used.push(flag);
  }
  if (overrides.storagePath !== undefined) {
    const flag = flagName(STORAGE_PATH.flag);
    assembly.setStorage("fs", { path: resolve(cwd, overrides.storagePath) }, flag);
    used.push(flag);
  }
  return used;
}
