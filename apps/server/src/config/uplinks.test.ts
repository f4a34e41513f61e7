import { parsePolicy } from "@fw/auth";
import JSON5 from "json5";
import { describe, expect, it } from "vitest";
import { isConfigError } from "./errors.js";
import { REDACTED, redactConfig, serializeConfig } from "./output.js";
import { parseConfig } from "./parse.js";
import { proxyResolver } from "./uplinks.js";

const input = {
  uplinks: {
    public: { url: "https://registry.example.org/npm/", auth: { token: "npm_s3cret" } },
    mirror: {
      url: "http://mirror.internal:4873",
      maxAgeMs: 0,
      takedowns: "keep",
      audit: false,
      search: false,
      retries: 0,
    },
  },
  packages: {
    "@acme/*": { access: ["$authenticated"], publish: ["$authenticated"], proxy: [] },
    "@acme/open-*": { access: ["$all"], proxy: ["mirror", "public"] },
    "legacy-*": { access: ["$all"] },
    "**": { access: ["$all"], proxy: ["public"] },
  },
};

function issues(config: unknown): string[] {
  try {
    parseConfig(config);
  } catch (error) {
    if (isConfigError(error)) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe("uplinks config", () => {
  it("fills every default and takes proxy lists out of the access rules", () => {
    const config = parseConfig(input);
    expect(config.uplinks?.public).toEqual({
      url: "https://registry.example.org/npm",
      timeouts: { responseMs: 10_000, idleMs: 10_000, totalMs: 120_000 },
      retries: 2,
      maxAgeMs: 120_000,
      circuit: { failures: 3, cooldownMs: 10_000 },
      auth: { type: "bearer", token: "npm_s3cret" },
      takedowns: "remove",
      audit: true,
      search: true,
    });
    expect(config.uplinks?.mirror).toMatchObject({
      maxAgeMs: 0,
      takedowns: "keep",
      audit: false,
      search: false,
      retries: 0,
    });
    expect(config.proxy).toEqual({ "@acme/*": [], "@acme/open-*": ["mirror", "public"], "**": ["public"] });
    expect(config.access?.packages?.["@acme/*"]).toEqual({
      access: ["$authenticated"],
      publish: ["$authenticated"],
    });
    expect(() => parsePolicy(config.access)).not.toThrow();
  });

  it("lets the most specific rule decide, with no proxy inherited from wider rules", () => {
    const config = parseConfig(input);
    const proxyFor = proxyResolver(parsePolicy(config.access).rules, config.proxy ?? {});
    expect(proxyFor("left-pad")).toEqual(["public"]);
    expect(proxyFor("@acme/web")).toEqual([]);
    expect(proxyFor("@acme/open-ui")).toEqual(["mirror", "public"]);
    expect(proxyFor("legacy-tool")).toEqual([]);
    expect(proxyResolver([], {})("left-pad")).toEqual([]);
  });

  it("names the dotted path of each problem", () => {
    expect(
      issues({
        uplinks: {
          Public: { url: "https://a.example" },
          bad: {
            url: "ftp://x",
            retries: 11,
            timeouts: { responseMs: 0 },
            auth: { token: "a", tokenEnv: "B" },
            extra: true,
          },
        },
      }),
    ).toEqual([
      "uplinks.Public: expected an uplink name (lowercase letters, digits, '-', '_'; at most 64 characters)",
      "uplinks.bad.url: expected an absolute http(s) URL of an npm registry (ftp: is not http: or https:)",
      "uplinks.bad.timeouts.responseMs: expected the wait for response headers in ms (an integer of at least 1)",
      "uplinks.bad.retries: expected an integer from 0 to 10",
      "uplinks.bad.auth: expected exactly one of token and tokenEnv",
      "uplinks.bad.extra: unknown key; expected one of: url, timeouts, retries, maxAgeMs, circuit, auth, takedowns, audit, search",
    ]);
    expect(issues({ uplinks: { a: { url: "https://user:pw@a.example" } } })).toEqual([
      "uplinks.a.url: expected an absolute http(s) URL of an npm registry (it has a user name or password; use auth.token)",
    ]);
  });

  it("refuses a proxy list naming an uplink that does not exist", () => {
    expect(issues({ packages: { "**": { proxy: ["public"] } } })).toEqual([
      'packages.**.proxy.0: unknown uplink "public" (add it under uplinks)',
    ]);
  });

  it("redacts literal tokens but shows secret references", () => {
    const config = parseConfig({
      ...input,
      uplinks: { ...input.uplinks, mirror: { url: "https://m.example", auth: { token: "secret:uplinks/mirror" } } },
    });
    const redacted = redactConfig(config);
    expect(redacted.uplinks?.public?.auth?.token).toBe(REDACTED);
    expect(redacted.uplinks?.mirror?.auth?.token).toBe("secret:uplinks/mirror");
    expect(JSON.stringify(redacted)).not.toContain("npm_s3cret");
    expect(config.uplinks?.public?.auth?.token).toBe("npm_s3cret");
  });

  it("serializes back into one packages section that parses to the same config", () => {
    const config = parseConfig(input);
    const text = serializeConfig(config);
    expect(text).toMatch(/^\/\/ fw registry config\. It holds uplink credentials/);
    const file = JSON5.parse<{ packages: Record<string, { proxy?: string[] }> }>(text);
    expect(file.packages["**"]?.proxy).toEqual(["public"]);
    expect(file.packages["legacy-*"]?.proxy).toBeUndefined();
    expect(parseConfig(file)).toEqual(config);
  });
});
