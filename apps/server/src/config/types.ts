import type { PolicyConfig, TrustedPublishingInput } from "@fw/auth";
import type { SecretsConfig } from "@fw/secrets";
import type { UplinkConfig } from "./uplinks.js";

/** Log levels, quietest last; `silent` turns logging off. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
export type LogFormat = "pretty" | "json";

/** Objects kept on the local disk. */
export interface FsStorageConfig {
  driver: "fs";
  /** Absolute path of the storage folder (relative paths are resolved while parsing). */
  path: string;
  /** Flush writes to disk before acknowledging them; absent: on, except on a tmpfs (see `fsDriver`). */
  fsync?: boolean;
}

/** Objects kept in an S3-compatible bucket: AWS S3, Cloudflare R2, Ceph, MinIO… */
export interface S3StorageConfig {
  driver: "s3";
  bucket: string;
  /** The S3 API's URL; absent means AWS S3 in `region`. No trailing slash. */
  endpoint?: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** `endpoint/bucket/key` addressing, for servers without wildcard DNS (Ceph, MinIO). */
  forcePathStyle: boolean;
  /** Folder inside the bucket that the registry owns. */
  prefix?: string;
}

export type StorageConfig = FsStorageConfig | S3StorageConfig;

/** The registry's configuration after validation: every default filled in, every value normalised. */
export interface FwConfig {
  listen: { host: string; port: number };
  /** Absolute http(s) URL clients reach the registry at, without a trailing slash or query. */
  publicUrl?: string;
  storage: StorageConfig;
  auth: {
    signup: boolean;
    /** Login back-off settings; absent ones take @fw/auth's `LoginBackoff` defaults. */
    loginBackoff?: {
      freeAttemptsPerUser?: number;
      freeAttemptsPerIp?: number;
      baseDelayMs?: number;
      maxDelayMs?: number;
    };
    /** Flood limit on auth endpoints; absent: `DEFAULTS.authRateLimit`. */
    rateLimit?: { burst: number; perSecond: number };
    /** Key sealing two-factor secrets at rest (hex/base64 text, after secret references are resolved). */
    tfaKey?: string;
  };
  /**
   * `cacheMemory`: bytes for the in-memory caches, all of them together (see `cacheBudgets`); the
   * loader always sets it, configs built in code may leave it out (32 MB).
   */
  limits: { maxBodySize: number; cacheMemory?: number };
  log: { level: LogLevel; format: LogFormat };
  /**
   * The `roles`, `teams` and `packages` sections, as validated; absent when none is set, which keeps
   * the defaults (everyone reads, signed-in users publish new packages, maintainers manage theirs).
   */
  access?: PolicyConfig;
  /** OIDC trusted publishing as written (checked by @fw/auth's `parseTrustedPublishing`); absent when not configured. */
  trustedPublishing?: TrustedPublishingInput;
  /** The secrets vault's policy, and the folder holding it when it is not the registry's storage. */
  secrets?: SecretsConfig & { vault?: string };
  /** Proxies whose X-Forwarded-For is believed (addresses or CIDR ranges); absent: the header is ignored. */
  trustProxy?: string[];
  /** Access to /-/metrics: everyone (`public`), else admins and the `allowFrom` ranges (default loopback). */
  metrics?: { public?: boolean; allowFrom?: string[] };
  /** Upstream registries by name, every default filled in; absent when none is configured (nothing is proxied). */
  uplinks?: Record<string, UplinkConfig>;
  /**
   * Package pattern → the uplinks that serve it, from the `proxy` key of `packages` rules (which is taken
   * out of `access.packages`: the policy knows nothing of uplinks). Absent when no rule has one.
   */
  proxy?: Record<string, string[]>;
}

/** One problem found in a config: the dotted path of the value ("" for the whole config) and what was expected. */
export interface ConfigIssue {
  path: string;
  message: string;
}
