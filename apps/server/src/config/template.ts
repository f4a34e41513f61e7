import { DEFAULTS } from "./schema.js";
import { UPLINK_DEFAULTS } from "./uplinks.js";

export interface ConfigTemplateOptions {
  /**
   * The npm registry people use today (what `npm config get registry` prints): the template proxies it
   * as the uplink "public". Without it the uplink is shown commented out.
   */
  upstreamRegistry?: string;
}

const q = (value: string | number | boolean) => JSON.stringify(value);

/**
 * The uplinks and packages sections. With the registry npm uses today fw proxies it, so one URL serves
 * private and public packages; without one the proxy is shown commented out (no registry's address is
 * ever written by fw itself).
 */
function uplinkSection(upstream: string | undefined): string {
  const c = upstream ? "" : "// ";
  const intro = upstream
    ? [
        `  // Packages not published to fw are fetched from these registries, cached and served, so clients`,
        `  // need only fw: registry=http://${DEFAULTS.host}:${DEFAULTS.port}/ in .npmrc. "public" is the registry`,
        "  // `npm config get registry` printed when this file was written.",
      ]
    : [
        "  // fw serves only the packages published to it. To also serve packages from another registry",
        "  // (fetched, cached and checked), name it here and in the packages rules below.",
      ];
  return [
    ...intro,
    `  ${c}uplinks: {`,
    `  ${c}  public: {`,
    `  ${c}    url: ${q(upstream ?? "https://registry.example.com/")},`,
    `  ${c}    // maxAgeMs: ${UPLINK_DEFAULTS.maxAgeMs}, // cached metadata is revalidated (If-None-Match) after this long`,
    `  ${c}    // timeouts: { responseMs: ${UPLINK_DEFAULTS.responseTimeoutMs}, idleMs: ${UPLINK_DEFAULTS.idleTimeoutMs}, totalMs: ${UPLINK_DEFAULTS.totalTimeoutMs} },`,
    `  ${c}    // retries: ${UPLINK_DEFAULTS.retries}, // GETs retried after network errors and 5xx`,
    `  ${c}    // auth: { tokenEnv: "FW_UPLINK_TOKEN" }, // or token: "secret:uplinks/public/token"`,
    `  ${c}    // takedowns: ${q(UPLINK_DEFAULTS.takedowns)}, // versions removed upstream leave the cache; "keep" keeps them`,
    `  ${c}    // audit: ${q(UPLINK_DEFAULTS.audit)}, // npm audit is forwarded here, without your private package names`,
    `  ${c}    // search: ${q(UPLINK_DEFAULTS.search)}, // npm search shows this registry's packages after yours; false keeps search local`,
    `  ${c}  },`,
    `  ${c}},`,
    "",
    "  // Who may read and publish which packages, and which uplinks serve them; the most specific pattern",
    "  // wins. A name matching a rule without proxy (or with proxy: []) is never looked up upstream, and a",
    "  // name published here is never mixed with an upstream's: list your scope so nobody can slip a",
    "  // public package in under a private name (dependency confusion).",
    `  ${c}packages: {`,
    `  ${c}  // "@your-scope/*": { access: ["$authenticated"], publish: ["$authenticated"], proxy: [] },`,
    `  ${c}  "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },`,
    `  ${c}},`,
  ].join("\n");
}

function checkUpstream(upstream: string | undefined): string | undefined {
  if (upstream === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new TypeError(`upstreamRegistry must be an http(s) URL, got ${q(upstream)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new TypeError(`upstreamRegistry must be an http(s) URL, got ${q(upstream)}`);
  }
  // `href` is escaped, so nothing can end the comment line it is written on.
  return url.href;
}

/**
 * A commented JSON5 config file showing every setting at its default, for `fw registry config init`.
 * It parses back to the default config, plus the uplink when `upstreamRegistry` is given.
 */
export function renderConfigTemplate(options: ConfigTemplateOptions = {}): string {
  const upstream = checkUpstream(options.upstreamRegistry);
  return `// fw registry config. JSON5: comments and trailing commas are fine; every key is optional and
// the values below are the defaults. Editors can check this file against the JSON Schema in
// node_modules/@fw/server/fw.config.schema.json (add "$schema": "<that path>").
//
// Precedence, lowest first: defaults < this file < .env.registry < environment < command-line flags.
{
  listen: {
    // 0.0.0.0 or :: accepts connections from other machines. FW_HOST, --host.
    host: ${q(DEFAULTS.host)},
    // 0 picks a free port. FW_PORT, --port.
    port: ${q(DEFAULTS.port)},
  },

  // The URL clients reach the registry at, when it sits behind a proxy or TLS terminator; tarball
  // links are built from it. Default: the origin each request came to. FW_PUBLIC_URL, --public-url.
  // publicUrl: "https://npm.example.com",

  // Where packages and users are kept. A relative path is relative to this file.
  // FW_STORAGE_PATH, --storage-path.
  storage: {
    driver: "fs",
    path: ${q(DEFAULTS.storagePath)},
    // Each write is flushed to the disk before it is acknowledged (three flushes per publish), except
    // on a tmpfs. false is faster; an OS crash or power cut then loses the last seconds of writes.
    // fsync: true,
  },
  // Or an S3-compatible bucket (AWS S3, Cloudflare R2, Ceph, MinIO). For R2, setting R2_ACCOUNT_ID,
  // R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY and R2_REGISTRY_BUCKET in .env.registry does the same
  // and keeps the secret out of this file.
  // storage: {
  //   driver: "s3",
  //   bucket: "npm-registry",
  //   endpoint: "https://your-account-id.r2.cloudflarestorage.com", // omit for AWS S3
  //   region: "auto", // default ${q(DEFAULTS.s3Region)}
  //   accessKeyId: "<key id>",
  //   secretAccessKey: "<secret>",
  //   forcePathStyle: false, // true for Ceph, MinIO and servers without wildcard DNS
  //   prefix: "registry/", // a folder of the bucket, to share it
  // },

  auth: {
    // Let \`npm adduser\` create accounts; turn it off once your team has theirs. FW_SIGNUP.
    signup: ${q(DEFAULTS.signup)},
  },

  limits: {
    // Largest request body; a publish carries the whole tarball. Bytes, or sizes such as
    // "300mb" and "1.5gb". FW_MAX_BODY_SIZE.
    maxBodySize: ${q(DEFAULTS.maxBodySize)},
    // Memory for what is kept ready to serve: package documents and their compressed forms,
    // small tarballs, uplink copies. Most of the server's memory beyond Node's own ~80 MB.
    // FW_CACHE_MEMORY.
    cacheMemory: ${q(DEFAULTS.cacheMemory)},
  },

  log: {
    // "debug", "info", "warn", "error" or "silent". FW_LOG_LEVEL, --log-level.
    level: ${q(DEFAULTS.logLevel)},
    // "pretty" for people, "json" (one object a line) for log collectors. FW_LOG_FORMAT, --log-format.
    format: ${q(DEFAULTS.logFormat)},
  },

${uplinkSection(upstream)}
}
`;
}
