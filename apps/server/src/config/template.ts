import { DEFAULTS } from "./schema.js";

export interface ConfigTemplateOptions {
  /**
   * The npm registry people use today (what `npm config get registry` prints). fw serves only what is
   * published to it, so the template shows how to keep this registry for everything else.
   */
  upstreamRegistry?: string;
}

const q = (value: string | number | boolean) => JSON.stringify(value);

function upstreamNote(upstream: string | undefined): string {
  const local = `http://${DEFAULTS.host}:${DEFAULTS.port}/`;
  const keep = upstream
    ? [`// Keep ${upstream} for everything else and send your scope to fw, in .npmrc:`, `//   registry=${upstream}`]
    : ["// Keep your current registry for everything else and send your scope to fw, in .npmrc:"];
  return [
    "// fw serves only the packages published to it (it does not proxy another registry).",
    ...keep,
    `//   @your-scope:registry=${local}`,
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
 * It parses back to the default config.
 */
export function renderConfigTemplate(options: ConfigTemplateOptions = {}): string {
  const upstream = checkUpstream(options.upstreamRegistry);
  return `// fw registry config. JSON5: comments and trailing commas are fine; every key is optional and
// the values below are the defaults. Editors can check this file against the JSON Schema in
// node_modules/@fw/server/fw.config.schema.json (add "$schema": "<that path>").
//
// Precedence, lowest first: defaults < this file < .env.registry < environment < command-line flags.
//
${upstreamNote(upstream)}
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
  },

  log: {
    // "debug", "info", "warn", "error" or "silent". FW_LOG_LEVEL, --log-level.
    level: ${q(DEFAULTS.logLevel)},
    // "pretty" for people, "json" (one object a line) for log collectors. FW_LOG_FORMAT, --log-format.
    format: ${q(DEFAULTS.logFormat)},
  },
}
`;
}
