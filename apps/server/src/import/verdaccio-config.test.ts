import JSON5 from "json5";
import { describe, expect, it } from "vitest";
import { checkConfig } from "../config/parse.js";
import {
  type ConvertedConfig,
  convertVerdaccioConfig,
  parseInterval,
  readVerdaccioYaml,
  renderConvertedConfig,
} from "./verdaccio-config.js";

async function convert(yaml: string, users: string[] = []): Promise<ConvertedConfig> {
  const converted = convertVerdaccioConfig(await readVerdaccioYaml(yaml), { configDir: "/etc/verdaccio", users });
  expect(converted.issues).toEqual([]);
  return converted;
}

describe("parseInterval", () => {
  it("reads Verdaccio's durations", () => {
    expect(parseInterval("30s")).toBe(30_000);
    expect(parseInterval("2m")).toBe(120_000);
    expect(parseInterval("1h 30m")).toBe(5_400_000);
    expect(parseInterval("500ms")).toBe(500);
    expect(parseInterval("1.5s")).toBe(1500);
    expect(parseInterval("10")).toBe(10_000);
    expect(parseInterval(15)).toBe(15_000);
    for (const bad of ["1m 2h", "abc", "", "5 10", "-1s", null]) expect(parseInterval(bad)).toBeUndefined();
  });
});

describe("convertVerdaccioConfig", () => {
  it("keeps Verdaccio's meaning of groups: all is logged-in users, plugin groups become roles to fill", async () => {
    const converted = await convert(
      `
auth:
  ldap:
    type: ldap
  htpasswd:
    file: ./htpasswd
    max_users: -1
packages:
  "@company/*":
    access: developers all
    publish: release-team alice
  "company-*":
    access: $anonymous @authenticated
    publish: admin
  "**":
    access: "@all"
    publish: $authenticated
    proxy: npmjs
`,
      ["alice"],
    );
    expect(converted.config.auth).toEqual({ signup: false });
    expect(converted.config.roles).toEqual({ developers: [], "release-team": [] });
    expect(converted.config.packages).toEqual({
      "@company/*": {
        access: ["role:developers", "$authenticated"],
        publish: ["role:release-team", "user:alice"],
        unpublish: ["role:release-team", "user:alice"],
        proxy: [],
      },
      "company-*": { access: ["$anonymous", "$authenticated"], publish: [], unpublish: [], proxy: [] },
      "**": { access: ["$all"], publish: ["$authenticated"], unpublish: ["$authenticated"], proxy: [] },
    });
    expect(converted.notConverted).toEqual([
      { key: "auth.ldap", why: "an auth plugin: fw authenticates its own users (the htpasswd users are imported)" },
    ]);
    expect(converted.warnings).toEqual([
      'group "developers" (from an auth plugin) is the role "developers" in fw, with no members: list them under roles.developers',
      'packages.@company/*.access: Verdaccio\'s "all" means logged-in users only; written as $authenticated',
      'group "release-team" (from an auth plugin) is the role "release-team" in fw, with no members: list them under roles.release-team',
      'packages.company-*.publish: group "admin" cannot be an fw role name; left out',
      'packages.**.proxy: unknown uplink "npmjs"; left out',
    ]);
    expect(converted.htpasswd).toBe("/etc/verdaccio/htpasswd");
  });

  it("refuses names no rule matches, as Verdaccio does, and warns where fw's most-specific rule differs from first-match", async () => {
    const converted = await convert(`
packages:
  "**":
    access: $authenticated
  "@Acme/*":
    access: $all
    unpublish: []
  "{a,b}-*":
    access: $all
  "private-*":
    access: bob
`);
    expect(converted.config.packages).toEqual({
      "**": { access: ["$authenticated"], publish: [], unpublish: [], proxy: [] },
      "@acme/*": { access: ["$all"], publish: [], unpublish: [], proxy: [] },
      "private-*": { access: ["user:bob"], publish: [], unpublish: [], proxy: [] },
    });
    expect(converted.notConverted).toEqual([
      {
        key: 'packages."{a,b}-*"',
        why: "fw patterns are package names with * (within a scope or name) and ** (anything)",
      },
    ]);
    expect(converted.warnings).toEqual([
      'packages.private-*.access: "bob" is not an htpasswd user; kept as the user name "bob"',
      'rule order: for names matching both "**" and "@acme/*", Verdaccio applied "**" (listed first) but fw applies the more specific "@acme/*"',
      'rule order: for names matching both "**" and "private-*", Verdaccio applied "**" (listed first) but fw applies the more specific "private-*"',
    ]);

    const none = await convert("storage: ./storage\n");
    expect(none.config.packages).toEqual({ "**": { access: [], publish: [], unpublish: [], proxy: [] } });
    expect(none.warnings[0]).toMatch(/^no rule for "\*\*"/);
    expect(none.storage).toBe("/etc/verdaccio/storage");
  });

  it("converts uplinks with their timeouts, breaker and credentials, and lists the settings fw lacks", async () => {
    const converted = await convert(`
uplinks:
  NPM.js:
    url: https://registry.example.com/
    timeout: 1m
    maxage: 2m 30s
    max_fails: 0
    fail_timeout: 10m
    cache: false
    strict_ssl: false
    auth:
      type: Basic
      token: dXNlcjpwYXNz
  npm-js:
    url: https://mirror.example.com
    auth:
      token_env: true
  other:
    url: https://user:secret@example.com/
  broken:
    timeout: 5s
packages:
  "**":
    access: $all
    proxy: NPM.js npm-js
`);
    expect(converted.config.uplinks).toEqual({
      "npm-js": {
        url: "https://registry.example.com/",
        timeouts: { responseMs: 60_000, idleMs: 60_000 },
        maxAgeMs: 150_000,
        circuit: { cooldownMs: 600_000 },
        auth: { type: "basic", token: "dXNlcjpwYXNz" },
        audit: false,
      },
      "npm-js-2": { url: "https://mirror.example.com", auth: { type: "bearer", tokenEnv: "NPM_TOKEN" }, audit: false },
    });
    expect(converted.config.packages?.["**"]?.proxy).toEqual(["npm-js", "npm-js-2"]);
    expect(converted.notConverted).toEqual([
      {
        key: "uplinks.NPM.js.max_fails",
        why: "fw always rests an uplink after repeated failures (circuit.failures ≥ 1)",
      },
      { key: "uplinks.NPM.js.cache", why: "fw always caches what its uplinks serve" },
      { key: "uplinks.NPM.js.strict_ssl", why: "fw always verifies TLS certificates" },
      { key: "uplinks.other", why: "its url cannot be used (it has a user name or password)" },
      { key: "uplinks.broken", why: "has no url" },
    ]);
    expect(converted.warnings).toEqual([
      'uplink "NPM.js" is called "npm-js" in fw (uplink names are lowercase)',
      'uplinks.NPM.js.auth.token is copied as written: move it to an environment variable (tokenEnv) or fw secrets ("secret:<name>")',
      'uplink "npm-js" is called "npm-js-2" in fw (uplink names are lowercase)',
      "Verdaccio's audit middleware is off, so fw's uplinks do not forward npm audit (audit: false)",
    ]);
  });

  it("converts listen, the public URL, body size, log, trusted proxies and rate limit", async () => {
    const converted = await convert(`
listen:
  - 0.0.0.0:4000
  - unix:/tmp/verdaccio.sock
url_prefix: https://npm.example.com/verdaccio/
max_body_size: 50mb
logs:
  - { type: file, path: /var/log/verdaccio.log, level: http, format: pretty-timestamped }
server:
  keepAliveTimeout: 60
  trustProxy: loopback
userRateLimit:
  windowMs: 60000
  max: 600
notify:
  method: POST
i18n:
  web: en-US
mystery: 1
`);
    expect(converted.config).toMatchObject({
      listen: { host: "0.0.0.0", port: 4000 },
      publicUrl: "https://npm.example.com/verdaccio/",
      limits: { maxBodySize: "50mb" },
      log: { level: "info", format: "pretty" },
      trustProxy: ["127.0.0.0/8", "::1/128"],
      auth: { rateLimit: { burst: 600, perSecond: 10 } },
    });
    expect(converted.notConverted.map((item) => item.key)).toEqual([
      "listen",
      "logs.path",
      "server.keepAliveTimeout",
      "notify",
      "i18n",
      "mystery",
    ]);

    for (const [listen, expected] of [
      ["4873", { port: 4873 }],
      ["http://localhost:4000/", { host: "localhost", port: 4000 }],
      ["[::1]:4873", { host: "::1", port: 4873 }],
    ] as const) {
      expect((await convert(`listen: "${listen}"\n`)).config.listen).toEqual(expected);
    }
    const tls = await convert("listen: https://0.0.0.0:443/\n");
    expect(tls.warnings).toContain("listen used https: fw speaks plain HTTP; put TLS in a proxy in front of it");
    const path = await convert("url_prefix: /npm/\n");
    expect(path.notConverted).toEqual([
      {
        key: "url_prefix",
        why: "a path: set publicUrl to the full URL (https://<host>/npm/) and have your proxy strip the path",
      },
    ]);
  });

  it("renders the result as a JSON5 file whose comments no input can break out of", async () => {
    const converted = await convert('"evil\\nkey: 1": true\nweb:\n  enable: false\n');
    const text = renderConvertedConfig(converted, { source: "/etc/verdaccio/config.yaml", date: new Date(0) });
    expect(text.split("\n").slice(0, 7)).toEqual([
      '// fw registry config, converted from the Verdaccio config "/etc/verdaccio/config.yaml"',
      "// by `fw registry import verdaccio` on 1970-01-01T00:00:00.000Z. JSON5: comments and",
      "// trailing commas are fine. Check it with `fw registry config load <this file>`.",
      "//",
      "// Not converted (no fw equivalent):",
      '//   - "evil\\nkey: 1": not a setting this converter knows',
      "//",
    ]);
    expect(checkConfig(JSON5.parse(text))).toHaveProperty("config");
  });

  it("says where YAML is broken", async () => {
    await expect(readVerdaccioYaml("packages:\n  - a\n b: c\n")).rejects.toThrow(/not valid YAML/);
    await expect(readVerdaccioYaml("- a\n- b\n")).rejects.toThrow("the Verdaccio config must be a YAML mapping");
    expect(await readVerdaccioYaml("")).toEqual({});
  });
});
