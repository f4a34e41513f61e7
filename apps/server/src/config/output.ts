import { isAbsolute, relative, sep } from "node:path";
import bytes from "bytes";
import JSON5 from "json5";
import type { FwConfig } from "./types.js";

/** What a secret is printed as. */
export const REDACTED = "***";

/** A copy of `config` that is safe to print or log: credentials are replaced by `"***"`. */
export function redactConfig(config: FwConfig): FwConfig {
  const copy = structuredClone(config);
  for (const uplink of Object.values(copy.uplinks ?? {})) {
    // A "secret:<name>" reference names a secret without revealing it; a literal token is the secret.
    if (uplink.auth?.token !== undefined && !uplink.auth.token.startsWith("secret:")) uplink.auth.token = REDACTED;
  }
  if (copy.auth.tfaKey !== undefined && !copy.auth.tfaKey.startsWith("secret:")) copy.auth.tfaKey = REDACTED;
  if (copy.storage.driver === "s3") {
    // The key id is not secret by AWS's rules, but it names the account; printing it helps nobody.
    copy.storage.accessKeyId = REDACTED;
    copy.storage.secretAccessKey = REDACTED;
  }
  return copy;
}

/** `path` relative to `baseDir` ("./storage") when it lies inside it, else as it is. */
function portablePath(path: string, baseDir: string | undefined): string {
  if (baseDir === undefined) return path;
  const rel = relative(baseDir, path);
  if (rel === "") return ".";
  if (rel.startsWith("..") || isAbsolute(rel)) return path;
  // Forward slashes read back on every platform.
  return `./${rel.split(sep).join("/")}`;
}

/** "300mb" rather than 314572800 when that reads back to the very same number. */
function readableSize(size: number): number | string {
  const text = bytes.format(size, { decimalPlaces: 3 })?.toLowerCase();
  return text !== undefined && bytes.parse(text) === size ? text : size;
}

export interface SerializeConfigOptions {
  /**
   * Folder the file is written to: a storage folder inside it is written relative to it, so the file
   * and its storage can move together. Default: paths stay absolute.
   */
  baseDir?: string;
}

/**
 * The config as a JSON5 file that `parseConfig` reads back to the same config. Secrets are written as
 * they were given (the file is for the registry, not for people), so the header warns about them.
 */
export function serializeConfig(config: FwConfig, options: SerializeConfigOptions = {}): string {
  const storage =
    config.storage.driver === "fs"
      ? { ...config.storage, path: portablePath(config.storage.path, options.baseDir) }
      : config.storage;
  // The policy sections are top-level keys in a file, and `proxy` lists go back into their rules.
  const { access, proxy, ...rest } = config;
  const packages =
    access?.packages &&
    Object.fromEntries(
      Object.entries(access.packages).map(([pattern, rule]) => [
        pattern,
        proxy?.[pattern] ? { ...rule, proxy: proxy[pattern] } : rule,
      ]),
    );
  const value = {
    ...rest,
    ...access,
    ...(packages && { packages }),
    storage,
    limits: {
      ...config.limits,
      maxBodySize: readableSize(config.limits.maxBodySize),
      ...(config.limits.cacheMemory !== undefined && { cacheMemory: readableSize(config.limits.cacheMemory) }),
    },
  };
  const uplinkToken = Object.values(config.uplinks ?? {}).some(
    (uplink) => uplink.auth?.token !== undefined && !uplink.auth.token.startsWith("secret:"),
  );
  const header =
    config.storage.driver === "s3" || uplinkToken
      ? `// fw registry config. It holds ${config.storage.driver === "s3" ? "storage" : "uplink"} credentials: keep it out of version control.\n`
      : "// fw registry config.\n";
  return `${header}${JSON5.stringify(value, { space: 2, quote: '"' })}\n`;
}
