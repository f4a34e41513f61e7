import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { parseConfig } from "./parse.js";
import type { ConfigIssue } from "./types.js";

const base = resolve("/srv/fw");
const s3 = { driver: "s3", bucket: "npm", accessKeyId: "AKID", secretAccessKey: "s3cr3t" } as const;

function issuesOf(input: unknown): ConfigIssue[] {
  try {
    parseConfig(input, { baseDir: base });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("parseConfig", () => {
  it("fills every default", () => {
    expect(parseConfig({}, { baseDir: base })).toEqual({
      listen: { host: "127.0.0.1", port: 4873 },
      storage: { driver: "fs", path: join(base, "storage") },
      auth: { signup: true },
      limits: { maxBodySize: 300 * 1024 * 1024, cacheMemory: 32 * 1024 * 1024 },
      log: { level: "info", format: "pretty" },
    });
  });

  it("reads the cache memory as a size and names it when it is not one", () => {
    expect(parseConfig({ limits: { cacheMemory: "256mb" } }).limits.cacheMemory).toBe(256 * 1024 * 1024);
    expect(parseConfig({ limits: { cacheMemory: 1000 } }).limits.cacheMemory).toBe(1000);
    expect(() => parseConfig({ limits: { cacheMemory: "lots" } })).toThrow(
      /limits\.cacheMemory: expected a number of bytes/,
    );
    expect(() => parseConfig({ limits: { cacheMemory: 0 } })).toThrow(/limits\.cacheMemory/);
  });

  it("resolves a relative storage path against baseDir, and keeps an absolute one", () => {
    expect(parseConfig({ storage: { path: "data/npm" } }, { baseDir: base }).storage).toEqual({
      driver: "fs",
      path: join(base, "data", "npm"),
    });
    const absolute = resolve("/var/lib/fw");
    expect(parseConfig({ storage: { driver: "fs", path: absolute } }, { baseDir: base }).storage).toEqual({
      driver: "fs",
      path: absolute,
    });
  });

  it("keeps fsync for fs storage only when it is given, and names a value that is not a boolean", () => {
    expect(parseConfig({ storage: { path: "/srv/npm", fsync: false } }).storage).toEqual({
      driver: "fs",
      path: resolve("/srv/npm"),
      fsync: false,
    });
    expect(parseConfig({ storage: { path: "/srv/npm" } }).storage).not.toHaveProperty("fsync");
    expect(() => parseConfig({ storage: { path: "/srv/npm", fsync: "no" } })).toThrow(
      "storage.fsync: expected true or false",
    );
  });

  it("resolves against the working directory without baseDir", () => {
    expect(parseConfig({}).storage).toEqual({ driver: "fs", path: join(process.cwd(), "storage") });
  });

  it.each([
    ["300mb", 300 * 1024 * 1024],
    ["1.5gb", 1.5 * 1024 ** 3],
    ["1.5 GB", 1.5 * 1024 ** 3],
    ["512kb", 512 * 1024],
    ["1024", 1024],
    ["10b", 10],
    [2048, 2048],
  ])("reads the body size %j as %d bytes", (size, expected) => {
    expect(parseConfig({ limits: { maxBodySize: size } }).limits.maxBodySize).toBe(expected);
  });

  it("normalises URLs and hosts", () => {
    const config = parseConfig({
      publicUrl: "https://NPM.example.com/registry/",
      listen: { host: "[::1]" },
      storage: { ...s3, endpoint: "https://acct.r2.cloudflarestorage.com/" },
    });
    expect(config.publicUrl).toBe("https://npm.example.com/registry");
    expect(config.listen.host).toBe("::1");
    expect(config.storage).toEqual({
      ...s3,
      endpoint: "https://acct.r2.cloudflarestorage.com",
      region: "us-east-1",
      forcePathStyle: false,
    });
    expect(parseConfig({ publicUrl: "http://localhost:4873/" }).publicUrl).toBe("http://localhost:4873");
  });

  it("keeps every s3 setting", () => {
    const storage = {
      ...s3,
      endpoint: "http://127.0.0.1:7480",
      region: "auto",
      forcePathStyle: true,
      prefix: "team-a/",
    };
    expect(parseConfig({ storage }).storage).toEqual(storage);
  });

  it("keeps the roles, teams and packages sections as the access policy", () => {
    const config = parseConfig({
      roles: { release: ["acme:devs"] },
      teams: { "acme:devs": ["alice"] },
      packages: { "@acme/*": { access: "$authenticated", publish: ["release"] } },
    });
    expect(config.access).toEqual({
      roles: { release: ["acme:devs"] },
      teams: { "acme:devs": ["alice"] },
      packages: { "@acme/*": { access: ["$authenticated"], publish: ["release"] } },
    });
    expect(parseConfig({}).access).toBeUndefined();
  });

  it("refuses a package rule naming an undefined team, with its path", () => {
    const issues = issuesOf({ packages: { "@acme/*": { publish: ["acme:nobody"] } } });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toMatch(/packages\.@acme\/\*\.publish/);
  });

  it("accepts $schema for editors", () => {
    expect(parseConfig({ $schema: "./fw.config.schema.json" }).listen.port).toBe(4873);
  });

  it.each<[string, unknown, ConfigIssue[]]>([
    ["a non-object", [], [{ path: "", message: "expected an object" }]],
    [
      "unknown top-level keys",
      { port: 1, hots: "x" },
      [
        {
          path: "port",
          message:
            "unknown key; expected one of: $schema, listen, publicUrl, storage, auth, limits, log, roles, teams, packages, trustedPublishing, secrets, trustProxy, metrics, uplinks",
        },
        {
          path: "hots",
          message:
            "unknown key; expected one of: $schema, listen, publicUrl, storage, auth, limits, log, roles, teams, packages, trustedPublishing, secrets, trustProxy, metrics, uplinks",
        },
      ],
    ],
    [
      "unknown nested keys",
      { listen: { hots: "x" } },
      [{ path: "listen.hots", message: "unknown key; expected one of: host, port" }],
    ],
    [
      "an unknown fs storage key",
      { storage: { path: "x", bucket: "b" } },
      [{ path: "storage.bucket", message: "unknown key; expected one of: driver, path, fsync" }],
    ],
    [
      "an unknown s3 storage key",
      { storage: { ...s3, path: "x" } },
      [
        {
          path: "storage.path",
          message:
            "unknown key; expected one of: driver, bucket, endpoint, region, accessKeyId, secretAccessKey, forcePathStyle, prefix",
        },
      ],
    ],
    ["listen as a number", { listen: 4873 }, [{ path: "listen", message: "expected an object" }]],
    [
      "an empty host",
      { listen: { host: "" } },
      [{ path: "listen.host", message: "expected a host name or IP address, e.g. 127.0.0.1, 0.0.0.0 or ::" }],
    ],
    [
      "a URL as host",
      { listen: { host: "http://x" } },
      [{ path: "listen.host", message: "expected a host name or IP address, e.g. 127.0.0.1, 0.0.0.0 or ::" }],
    ],
    [
      "a fractional port",
      { listen: { port: 1.5 } },
      [{ path: "listen.port", message: "expected an integer from 0 to 65535" }],
    ],
    [
      "a port as text",
      { listen: { port: "80" } },
      [{ path: "listen.port", message: "expected an integer from 0 to 65535" }],
    ],
    [
      "a port too large",
      { listen: { port: 65536 } },
      [{ path: "listen.port", message: "expected an integer from 0 to 65535" }],
    ],
    [
      "a negative port",
      { listen: { port: -1 } },
      [{ path: "listen.port", message: "expected an integer from 0 to 65535" }],
    ],
    [
      "a relative public URL",
      { publicUrl: "/npm" },
      [
        {
          path: "publicUrl",
          message: "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (not a URL)",
        },
      ],
    ],
    [
      "a public URL with a query",
      { publicUrl: "https://npm.example.com/?a=1" },
      [
        {
          path: "publicUrl",
          message: "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (it has a query)",
        },
      ],
    ],
    [
      "a public URL with an empty query",
      { publicUrl: "https://npm.example.com/?" },
      [
        {
          path: "publicUrl",
          message: "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (it has a query)",
        },
      ],
    ],
    [
      "a public URL with a fragment",
      { publicUrl: "https://npm.example.com/#x" },
      [
        {
          path: "publicUrl",
          message: "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (it has a fragment)",
        },
      ],
    ],
    [
      "a public URL with credentials",
      { publicUrl: "https://me:pw@npm.example.com" },
      [
        {
          path: "publicUrl",
          message:
            "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (it has a user name or password)",
        },
      ],
    ],
    [
      "a public URL that is not http",
      { publicUrl: "ftp://npm.example.com" },
      [
        {
          path: "publicUrl",
          message:
            "expected an absolute http(s) URL without a query, e.g. https://npm.example.com (ftp: is not http: or https:)",
        },
      ],
    ],
    [
      "a public URL as a number",
      { publicUrl: 1 },
      [
        {
          path: "publicUrl",
          message: "expected an absolute http(s) URL without a query, e.g. https://npm.example.com",
        },
      ],
    ],
    [
      "storage as text",
      { storage: "./storage" },
      [{ path: "storage", message: 'expected an object with "driver": "fs" or "s3"' }],
    ],
    [
      "an unknown driver",
      { storage: { driver: "gcs" } },
      [{ path: "storage.driver", message: 'expected "fs" or "s3"' }],
    ],
    ["an empty storage path", { storage: { path: "" } }, [{ path: "storage.path", message: "expected a folder path" }]],
    [
      "an s3 storage without its required keys",
      { storage: { driver: "s3" } },
      [
        { path: "storage.bucket", message: "expected a non-empty string" },
        { path: "storage.accessKeyId", message: "expected a non-empty string" },
        { path: "storage.secretAccessKey", message: "expected a non-empty string" },
      ],
    ],
    [
      "an empty bucket",
      { storage: { ...s3, bucket: "" } },
      [{ path: "storage.bucket", message: "expected a non-empty string" }],
    ],
    [
      "an endpoint that is not a URL",
      { storage: { ...s3, endpoint: "r2.example.com" } },
      [
        {
          path: "storage.endpoint",
          message: "expected an absolute http(s) URL, e.g. https://<account>.r2.cloudflarestorage.com (not a URL)",
        },
      ],
    ],
    [
      "an empty region",
      { storage: { ...s3, region: "" } },
      [{ path: "storage.region", message: 'expected a region name, e.g. "us-east-1" or "auto"' }],
    ],
    [
      "forcePathStyle as text",
      { storage: { ...s3, forcePathStyle: "yes" } },
      [{ path: "storage.forcePathStyle", message: "expected true or false" }],
    ],
    [
      "a prefix starting with a slash",
      { storage: { ...s3, prefix: "/npm" } },
      [
        {
          path: "storage.prefix",
          message: 'expected a folder path inside the bucket, e.g. "npm/" (prefix "/npm" starts with /)',
        },
      ],
    ],
    [
      "a prefix with a .. segment",
      { storage: { ...s3, prefix: "a/../b" } },
      [
        {
          path: "storage.prefix",
          message: 'expected a folder path inside the bucket, e.g. "npm/" (prefix "a/../b" has a ".." path segment)',
        },
      ],
    ],
    [
      'region "auto" without an endpoint',
      { storage: { ...s3, region: "auto" } },
      [
        {
          path: "storage.endpoint",
          message:
            'expected an endpoint URL when storage.region is "auto" (Cloudflare R2\'s region), e.g. https://<account>.r2.cloudflarestorage.com',
        },
      ],
    ],
    ["signup as text", { auth: { signup: "no" } }, [{ path: "auth.signup", message: "expected true or false" }]],
    ...(["12abc", "mb", "1.5.5mb", "-1", "300 megabytes"] as const).map((size): [string, unknown, ConfigIssue[]] => [
      `the body size ${JSON.stringify(size)}`,
      { limits: { maxBodySize: size } },
      [
        {
          path: "limits.maxBodySize",
          message: 'expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb"',
        },
      ],
    ]),
    [
      "a zero body size",
      { limits: { maxBodySize: 0 } },
      [
        {
          path: "limits.maxBodySize",
          message: 'expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb"',
        },
      ],
    ],
    [
      "a fractional body size",
      { limits: { maxBodySize: 1.5 } },
      [
        {
          path: "limits.maxBodySize",
          message: 'expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb"',
        },
      ],
    ],
    [
      "a body size of 0 bytes as text",
      { limits: { maxBodySize: "0b" } },
      [{ path: "limits.maxBodySize", message: "expected a size of at least 1 byte and below 8 PB" }],
    ],
    [
      "an absurd body size",
      { limits: { maxBodySize: "99999pb" } },
      [{ path: "limits.maxBodySize", message: "expected a size of at least 1 byte and below 8 PB" }],
    ],
    [
      "an unknown log level",
      { log: { level: "verbose" } },
      [{ path: "log.level", message: 'expected "debug", "info", "warn", "error", "silent"' }],
    ],
    [
      "an unknown log format",
      { log: { format: "text" } },
      [{ path: "log.format", message: 'expected "pretty" or "json"' }],
    ],
    ["$schema as a number", { $schema: 1 }, [{ path: "$schema", message: "expected a string" }]],
  ])("rejects %s", (_name, input, issues) => {
    expect(issuesOf(input)).toEqual(issues);
  });

  it("reports every problem at once, on one line", () => {
    let error: unknown;
    try {
      parseConfig({ listen: { port: "x" }, storage: { driver: "s3", accessKeyId: "a", secretAccessKey: "b" } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      code: "E_CONFIG",
      message:
        "invalid config: listen.port: expected an integer from 0 to 65535; storage.bucket: expected a non-empty string",
    });
  });
});
