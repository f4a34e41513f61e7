import { resolve } from "node:path";
import { checkCidrs, isAuthError, parsePolicy, parseTrustedPublishing } from "@fw/auth";
import { parseSecretsPolicy } from "@fw/secrets";
import bytes from "bytes";
import ipaddr from "ipaddr.js";
import type { z } from "zod";
import { ConfigError } from "./errors.js";
import { configFileSchema, DEFAULTS, type FwConfigInput } from "./schema.js";
import type { ConfigIssue, FwConfig, StorageConfig } from "./types.js";
import { checkProxy, normaliseUplinks, splitProxy } from "./uplinks.js";

export interface ParseConfigOptions {
  /** Folder a relative `storage.path` is relative to: the config file's folder. Default: the working directory. */
  baseDir?: string;
}

/**
 * Turns what a config file holds into a `FwConfig`: validate (zod), normalise (defaults, paths, sizes,
 * URLs), cross-check (rules between values). Throws a `ConfigError` listing every problem, each with
 * its dotted path and what was expected.
 */
export function parseConfig(input: unknown, options: ParseConfigOptions = {}): FwConfig {
  const result = checkConfig(input, options);
  if ("issues" in result) throw new ConfigError(result.issues);
  return result.config;
}

/** `parseConfig` without the throw, for callers that add context to the issues first. */
export function checkConfig(
  input: unknown,
  options: ParseConfigOptions = {},
): { config: FwConfig } | { issues: ConfigIssue[] } {
  const parsed = configFileSchema.safeParse(input);
  if (!parsed.success) return { issues: issuesFromZod(parsed.error.issues) };
  const config = normalise(parsed.data, resolve(options.baseDir ?? process.cwd()));
  const issues = crossCheck(config);
  const publishing = trustedPublishing(parsed.data, config);
  if (publishing) issues.push(publishing);
  return issues.length > 0 ? { issues } : { config };
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join(".");
}

function issuesFromZod(issues: readonly z.core.$ZodIssue[]): ConfigIssue[] {
  return issues.flatMap((issue) =>
    // One issue per unknown key, so each is named by its own dotted path.
    issue.code === "unrecognized_keys"
      ? issue.keys.map((key) => ({ path: dotted([...issue.path, key]), message: issue.message }))
      : [{ path: dotted(issue.path), message: issue.message }],
  );
}

/** `https://npm.example.com/a/` → `https://npm.example.com/a`: links are built by appending "/…". */
function withoutTrailingSlash(url: string): string {
  const parsed = new URL(url);
  return parsed.origin + parsed.pathname.replace(/\/+$/, "");
}

function normaliseStorage(storage: FwConfigInput["storage"], baseDir: string): StorageConfig {
  if (storage?.driver === "s3") {
    return {
      driver: "s3",
      bucket: storage.bucket,
      ...(storage.endpoint === undefined ? {} : { endpoint: withoutTrailingSlash(storage.endpoint) }),
      region: storage.region ?? DEFAULTS.s3Region,
      accessKeyId: storage.accessKeyId,
      secretAccessKey: storage.secretAccessKey,
      forcePathStyle: storage.forcePathStyle ?? DEFAULTS.forcePathStyle,
      ...(storage.prefix === undefined || storage.prefix === "" ? {} : { prefix: storage.prefix }),
    };
  }
  return {
    driver: "fs",
    path: resolve(baseDir, storage?.path ?? DEFAULTS.storagePath),
    ...(storage?.fsync !== undefined && { fsync: storage.fsync }),
  };
}

function toBytes(size: number | string): number {
  if (typeof size === "number") return size;
  // The schema's pattern already admits only sizes `bytes` reads; NaN fails the cross-check.
  return bytes.parse(size.trim()) ?? Number.NaN;
}

function normalise(input: FwConfigInput, baseDir: string): FwConfig {
  const host = input.listen?.host ?? DEFAULTS.host;
  // `proxy` lists live in the `packages` rules of the file but not in the policy, which rejects unknown keys.
  const { packages, proxy } = input.packages === undefined ? {} : splitProxy(input.packages);
  return {
    // Node's listen() wants IPv6 addresses without the URL brackets.
    listen: { host: host.replace(/^\[(.*)\]$/, "$1"), port: input.listen?.port ?? DEFAULTS.port },
    ...(input.publicUrl === undefined ? {} : { publicUrl: withoutTrailingSlash(input.publicUrl) }),
    storage: normaliseStorage(input.storage, baseDir),
    auth: {
      signup: input.auth?.signup ?? DEFAULTS.signup,
      ...(input.auth?.loginBackoff && { loginBackoff: { ...input.auth.loginBackoff } }),
      ...(input.auth?.rateLimit && {
        rateLimit: {
          burst: input.auth.rateLimit.burst ?? DEFAULTS.authRateLimit.burst,
          perSecond: input.auth.rateLimit.perSecond ?? DEFAULTS.authRateLimit.perSecond,
        },
      }),
      ...(input.auth?.tfaKey !== undefined && { tfaKey: input.auth.tfaKey }),
    },
    limits: {
      maxBodySize: toBytes(input.limits?.maxBodySize ?? DEFAULTS.maxBodySize),
      cacheMemory: toBytes(input.limits?.cacheMemory ?? DEFAULTS.cacheMemory),
    },
    log: { level: input.log?.level ?? DEFAULTS.logLevel, format: input.log?.format ?? DEFAULTS.logFormat },
    ...((input.roles ?? input.teams ?? packages) !== undefined && {
      access: {
        ...(input.roles !== undefined && { roles: input.roles }),
        ...(input.teams !== undefined && { teams: input.teams }),
        ...(packages !== undefined && { packages }),
      },
    }),
    ...(input.secrets !== undefined && {
      secrets: {
        ...(input.secrets.rules !== undefined && { rules: input.secrets.rules }),
        ...(input.secrets.vault !== undefined && { vault: resolve(baseDir, input.secrets.vault) }),
      },
    }),
    ...(input.trustProxy !== undefined && { trustProxy: input.trustProxy.map(asCidr) }),
    ...(input.metrics !== undefined && {
      metrics: {
        ...(input.metrics.public !== undefined && { public: input.metrics.public }),
        ...(input.metrics.allowFrom !== undefined && { allowFrom: input.metrics.allowFrom.map(asCidr) }),
      },
    }),
    ...(input.uplinks !== undefined && { uplinks: normaliseUplinks(input.uplinks) }),
    ...(proxy !== undefined && Object.keys(proxy).length > 0 && { proxy }),
  };
}

/** "10.0.0.1" → "10.0.0.1/32" (and "::1" → "::1/128"): one address is a range of one. Anything else stays for the cross-check. */
export function asCidr(entry: string): string {
  const text = entry.trim();
  if (text.includes("/")) return text;
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return `${text}/32`;
  return ipaddr.IPv6.isValid(text) ? `${text}/128` : text;
}

/** The trusted publishing section checked by @fw/auth (issuer allow-list, publishers, limits), or an issue. */
function trustedPublishing(input: FwConfigInput, config: FwConfig): ConfigIssue | undefined {
  if (input.trustedPublishing === undefined) return undefined;
  config.trustedPublishing = input.trustedPublishing;
  let parsed: ReturnType<typeof parseTrustedPublishing>;
  try {
    parsed = parseTrustedPublishing(input.trustedPublishing, "trustedPublishing");
  } catch (error) {
    if (!isAuthError(error)) throw error;
    return { path: "", message: error.message };
  }
  if (parsed.audience.length === 0 && config.publicUrl === undefined) {
    return {
      path: "publicUrl",
      message:
        "expected the registry's public URL when trustedPublishing is set: its host is the audience CI tokens are issued for (or set trustedPublishing.audience)",
    };
  }
  return undefined;
}

function crossCheck(config: FwConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const key of ["maxBodySize", "cacheMemory"] as const) {
    const size = config.limits[key];
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 1)) {
      issues.push({ path: `limits.${key}`, message: "expected a size of at least 1 byte and below 8 PB" });
    }
  }
  issues.push(...checkProxy(config.proxy, config.uplinks));
  if (config.access) {
    try {
      parsePolicy(config.access);
    } catch (error) {
      // @fw/auth names each dotted path in its message ("packages.@acme/*.publish.0: …").
      if (!isAuthError(error)) throw error;
      issues.push({ path: "", message: error.message });
    }
  }
  for (const [path, list] of [
    ["trustProxy", config.trustProxy],
    ["metrics.allowFrom", config.metrics?.allowFrom],
  ] as const) {
    for (const [index, entry] of (list ?? []).entries()) {
      try {
        checkCidrs([entry]);
      } catch {
        issues.push({ path: `${path}.${index}`, message: "expected an IP address or CIDR range such as 10.0.0.0/8" });
      }
    }
  }
  if (config.secrets?.rules && issues.length === 0) {
    try {
      parseSecretsPolicy(
        { rules: config.secrets.rules },
        { root: "secrets", access: parsePolicy(config.access ?? {}) },
      );
    } catch (error) {
      issues.push({ path: "", message: (error as Error).message });
    }
  }
  const { storage } = config;
  if (storage.driver === "s3" && storage.region === "auto" && storage.endpoint === undefined) {
    issues.push({
      path: "storage.endpoint",
      message:
        'expected an endpoint URL when storage.region is "auto" (Cloudflare R2\'s region), e.g. https://<account>.r2.cloudflarestorage.com',
    });
  }
  return issues;
}
