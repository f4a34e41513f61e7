import { policyConfigSchema, trustedPublishingConfigSchema } from "@fw/auth";
import { secretsConfigSchema } from "@fw/secrets";
import { validatePrefix } from "@fw/storage-r2";
import { z } from "zod";
import { packagesWithProxySchema, uplinksSchema } from "./uplinks.js";
import { urlProblem } from "./url.js";

/** Every default, in one place: `normalise` fills them in and the JSON Schema documents them. */
export const DEFAULTS = {
  host: "127.0.0.1",
  port: 4873,
  storagePath: "./storage",
  s3Region: "us-east-1",
  forcePathStyle: false,
  signup: true,
  maxBodySize: "300mb",
  cacheMemory: "32mb",
  logLevel: "info",
  logFormat: "pretty",
  /** Per client address on login and token endpoints: a burst, then this many a second. */
  authRateLimit: { burst: 100, perSecond: 2 },
} as const;

export const LOG_LEVELS = ["debug", "info", "warn", "error", "silent"] as const;
export const LOG_FORMATS = ["pretty", "json"] as const;

/**
 * A size the `bytes` package reads (1 kb = 1024 bytes). Stricter than `bytes` itself, which reads
 * "12abc" as 12; spelled without the `i` flag because JSON Schema patterns have no flags.
 */
export const SIZE_PATTERN = /^\s*\d+(?:\.\d+)?\s*(?:[kKmMgGtTpP]?[bB])?\s*$/;

function expected(what: string) {
  return { error: `expected ${what}` };
}

function text(what: string) {
  return z.string(expected(what)).min(1, expected(what));
}

/** A strict object: a key it does not know is an error that names the keys it does. */
function strictObject<T extends z.ZodRawShape>(shape: T, what = "an object") {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown key; expected one of: ${keys}` : `expected ${what}`,
  });
}

function httpUrl(what: string) {
  const message = `expected ${what}`;
  return z
    .string(expected(what))
    .superRefine((value, ctx) => {
      const problem = urlProblem(value);
      if (problem) ctx.addIssue({ code: "custom", message: `${message} (${problem})` });
    })
    .meta({ format: "uri" });
}

const HOST = "a host name or IP address, e.g. 127.0.0.1, 0.0.0.0 or ::";
const booleanValue = z.boolean(expected("true or false"));

const listen = strictObject({
  host: z
    .string(expected(HOST))
    .regex(/^[^\s/?#@]+$/, expected(HOST))
    .meta({
      description: "Interface to listen on; 0.0.0.0 or :: accept connections from other machines.",
      default: DEFAULTS.host,
    }),
  port: z
    .int(expected("an integer from 0 to 65535"))
    .min(0, expected("an integer from 0 to 65535"))
    .max(65535, expected("an integer from 0 to 65535"))
    .meta({ description: "TCP port; 0 picks a free one.", default: DEFAULTS.port }),
}).partial();

const fsStorage = strictObject(
  {
    driver: z.literal("fs").optional(),
    path: text("a folder path").meta({
      description: "Folder for packages and users; a relative path is relative to this file.",
      default: DEFAULTS.storagePath,
    }),
    fsync: booleanValue.meta({
      description:
        "Flush every write to the disk before answering, so an acknowledged publish survives a power cut. Default: on, except on a tmpfs (nothing there survives one). false is faster and loses the last seconds of writes on an OS crash or power cut.",
    }),
  },
  "an object",
)
  .partial()
  .meta({ title: "Local folder" });

const s3Storage = strictObject({
  driver: z.literal("s3"),
  bucket: text("a non-empty string").meta({ description: "Bucket name." }),
  endpoint: httpUrl("an absolute http(s) URL, e.g. https://<account>.r2.cloudflarestorage.com")
    .optional()
    .meta({ description: "S3 API URL (R2, Ceph, MinIO…); omit for AWS S3." }),
  region: text('a region name, e.g. "us-east-1" or "auto"')
    .optional()
    .meta({ description: 'Signing region; R2 uses "auto".', default: DEFAULTS.s3Region }),
  accessKeyId: text("a non-empty string"),
  secretAccessKey: text("a non-empty string").meta({
    description: "Secret; prefer R2_SECRET_ACCESS_KEY in .env.registry.",
  }),
  forcePathStyle: booleanValue.optional().meta({
    description: "Address buckets as endpoint/bucket (Ceph, MinIO and servers without wildcard DNS).",
    default: DEFAULTS.forcePathStyle,
  }),
  prefix: z
    .string(expected("a folder path inside the bucket"))
    .superRefine((value, ctx) => {
      try {
        validatePrefix("s3", value);
      } catch (error) {
        // StorageError messages start with "[storage:s3] "; the config path already says where.
        const reason = (error instanceof Error ? error.message : String(error)).replace(/^\[[^\]]*\]\s*/, "");
        ctx.addIssue({ code: "custom", message: `expected a folder path inside the bucket, e.g. "npm/" (${reason})` });
      }
    })
    .optional()
    .meta({ description: "Folder inside the bucket the registry owns, so several registries can share a bucket." }),
}).meta({ title: "S3-compatible bucket" });

const storage = z.discriminatedUnion("driver", [fsStorage, s3Storage], {
  error: (issue) =>
    issue.code === "invalid_union" ? 'expected "fs" or "s3"' : 'expected an object with "driver": "fs" or "s3"',
});

function count(what: string, min: number) {
  const message = `expected ${what} (an integer of at least ${min})`;
  return z.int({ error: message }).min(min, { error: message });
}

const loginBackoff = strictObject({
  freeAttemptsPerUser: count("failed logins per account before delays start", 1).meta({ default: 5 }),
  freeAttemptsPerIp: count("failed logins per client address before delays start", 1).meta({ default: 20 }),
  baseDelayMs: count("the first delay in ms, doubled after each further failure", 1).meta({ default: 1000 }),
  maxDelayMs: count("the longest delay in ms", 1).meta({ default: 900_000 }),
})
  .partial()
  .meta({ description: "Back-off after failed password logins (couch, web and basic auth), per account and address." });

const rateLimit = strictObject({
  burst: count("requests allowed at once", 1).meta({ default: DEFAULTS.authRateLimit.burst }),
  perSecond: z
    .number({ error: "expected a number of requests a second above 0" })
    .positive({ error: "expected a number of requests a second above 0" })
    .meta({ default: DEFAULTS.authRateLimit.perSecond }),
})
  .partial()
  .meta({ description: "Requests per client address to login and token endpoints; more get 429 with Retry-After." });

const auth = strictObject({
  signup: booleanValue.meta({
    description: "Let `npm adduser` create new users; turn off once your team has accounts.",
    default: DEFAULTS.signup,
  }),
  loginBackoff,
  rateLimit,
  tfaKey: text("32 bytes as 64 hex digits or base64, or a secret: reference").meta({
    description:
      'Encrypts users\' two-factor secrets in storage (AES-256-GCM). Best given as a reference to the secrets vault, e.g. "secret:auth/tfa-key"; secrets stored before it was set stay readable. Keep it: without it 2FA accounts cannot sign in.',
  }),
}).partial();

const metricsAccess = strictObject({
  public: booleanValue.meta({
    description: "Serve /-/metrics to everyone; otherwise to admins and the allowFrom addresses.",
    default: false,
  }),
  allowFrom: z.array(text("an IP address or CIDR range"), expected("a list of addresses or CIDR ranges")).meta({
    description: "Addresses (CIDR ranges) that may scrape /-/metrics without credentials.",
    default: ["127.0.0.0/8", "::1/128"],
  }),
})
  .partial()
  .meta({ description: "Who may read the Prometheus metrics at /-/metrics." });

const sizeMessage = 'expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb"';
const size = () =>
  z.union(
    [
      z.int({ error: sizeMessage }).min(1, { error: sizeMessage }),
      z.string({ error: sizeMessage }).regex(SIZE_PATTERN, { error: sizeMessage }),
    ],
    { error: sizeMessage },
  );
const limits = strictObject({
  maxBodySize: size().meta({
    description: 'Largest request body (a publish carries the tarball): bytes, or "300mb", "1.5gb".',
    default: DEFAULTS.maxBodySize,
  }),
  cacheMemory: size().meta({
    description:
      'Memory for what the registry keeps ready to serve: package documents with their compressed forms, small tarballs, copies from uplinks, the last written documents (reused by the next publish). Bytes, or "32mb", "1gb".',
    default: DEFAULTS.cacheMemory,
  }),
}).partial();

const log = strictObject({
  level: z
    .enum(LOG_LEVELS, expected(LOG_LEVELS.map((level) => `"${level}"`).join(", ")))
    .meta({ default: DEFAULTS.logLevel }),
  format: z.enum(LOG_FORMATS, expected('"pretty" or "json"')).meta({
    description: "pretty for people, json (one object a line) for log collectors.",
    default: DEFAULTS.logFormat,
  }),
}).partial();

const secrets = secretsConfigSchema
  .extend({
    vault: text("a folder path").meta({
      description:
        "A folder (fs storage) holding the secrets vault instead of the registry's storage: needed when the storage settings themselves are secret references.",
    }),
  })
  .partial()
  .meta({
    description:
      'The secrets vault (`fw secrets …`): who may read and write which secrets. Config values written as "secret:<name>" are read from it at start-up.',
  });

const trustProxy = z
  .array(text("an IP address or CIDR range"), expected("a list of proxy addresses or CIDR ranges"))
  .meta({
    description:
      'Load balancers and proxies in front of fw (addresses or CIDR ranges, e.g. ["10.0.0.0/8"]). For requests from them the client address is taken from X-Forwarded-For (the nearest address not in this list); otherwise the header is ignored.',
  });

/** What a config file may contain: every key optional, none unknown. Defaults are filled by `normalise`. */
export const configFileSchema = strictObject({
  $schema: z.string(expected("a string")).meta({ description: "JSON Schema for editors; ignored by fw." }),
  listen,
  publicUrl: httpUrl("an absolute http(s) URL without a query, e.g. https://npm.example.com").meta({
    description: "URL clients reach the registry at, used in tarball links; default: the request's own origin.",
  }),
  storage: storage.meta({ description: 'Where packages are kept; default { driver: "fs", path: "./storage" }.' }),
  auth,
  limits,
  log,
  roles: policyConfigSchema.shape.roles,
  teams: policyConfigSchema.shape.teams,
  packages: packagesWithProxySchema,
  trustedPublishing: trustedPublishingConfigSchema.meta({
    description:
      "OIDC trusted publishing: CI identities (GitHub Actions, GitLab…) that may publish new versions of packages without a stored token. Needs publicUrl (its host is the token audience).",
  }),
  secrets,
  trustProxy,
  metrics: metricsAccess,
  uplinks: uplinksSchema,
})
  .partial()
  .meta({ title: "fw registry config" });

export type FwConfigInput = z.input<typeof configFileSchema>;

/** JSON Schema (draft 2020-12) for config files, generated from the zod schema so the two never drift. */
export function configJsonSchema(): object {
  return z.toJSONSchema(configFileSchema, { io: "input", target: "draft-2020-12" });
}
