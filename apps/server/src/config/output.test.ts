import { join, resolve } from "node:path";
import JSON5 from "json5";
import { describe, expect, it } from "vitest";
import { REDACTED, redactConfig, serializeConfig } from "./output.js";
import { parseConfig } from "./parse.js";
import { renderConfigTemplate } from "./template.js";
import type { FwConfig } from "./types.js";

const dir = resolve("/srv/fw");
const s3Config = parseConfig({
  publicUrl: "https://npm.example.com",
  storage: {
    driver: "s3",
    bucket: "npm",
    endpoint: "https://acct.r2.cloudflarestorage.com",
    region: "auto",
    accessKeyId: "AKIDEXAMPLE",
    secretAccessKey: "wJalrXUtnFEMI/K7MDENG",
    prefix: "team/",
  },
  limits: { maxBodySize: "10mb" },
});

describe("redactConfig", () => {
  it("replaces credentials and leaves the original alone", () => {
    const redacted = redactConfig(s3Config);
    expect(redacted.storage).toMatchObject({ accessKeyId: REDACTED, secretAccessKey: REDACTED, bucket: "npm" });
    expect(JSON.stringify(redacted)).not.toContain("wJalrXUtnFEMI");
    expect(JSON.stringify(redacted)).not.toContain("AKIDEXAMPLE");
    expect(s3Config.storage).toMatchObject({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG" });
  });

  it("has nothing to hide in an fs config", () => {
    const config = parseConfig({}, { baseDir: dir });
    expect(redactConfig(config)).toEqual(config);
  });
});

describe("serializeConfig", () => {
  it("round-trips through parseConfig, secrets included", () => {
    const text = serializeConfig(s3Config);
    expect(text).toMatch(/^\/\/ fw registry config\. It holds storage credentials/);
    expect(parseConfig(JSON5.parse(text))).toEqual(s3Config);
  });

  it("writes sizes readably when that loses nothing", () => {
    const size = (maxBodySize: number | string) =>
      JSON5.parse<{ limits: { maxBodySize: unknown } }>(serializeConfig(parseConfig({ limits: { maxBodySize } })))
        .limits.maxBodySize;
    expect(size("300mb")).toBe("300mb");
    expect(size("1.5gb")).toBe("1.5gb");
    expect(size(1024)).toBe("1kb");
    expect(size(1000)).toBe("1000b");
    expect(size(1_000_001)).toBe(1_000_001);
  });

  it("writes a storage folder inside baseDir relative to it", () => {
    const config = parseConfig({ storage: { path: "data/npm" } }, { baseDir: dir });
    const text = serializeConfig(config, { baseDir: dir });
    expect(JSON5.parse<FwConfig>(text).storage).toEqual({ driver: "fs", path: "./data/npm" });
    expect(parseConfig(JSON5.parse(text), { baseDir: dir })).toEqual(config);
    const outside = parseConfig({ storage: { path: "/elsewhere/npm" } });
    expect(JSON5.parse<FwConfig>(serializeConfig(outside, { baseDir: dir })).storage).toEqual({
      driver: "fs",
      path: resolve("/elsewhere/npm"),
    });
    expect(JSON5.parse<FwConfig>(serializeConfig(config)).storage).toEqual({
      driver: "fs",
      path: join(dir, "data", "npm"),
    });
  });
});

describe("renderConfigTemplate", () => {
  it("parses back to the default config", () => {
    const text = renderConfigTemplate();
    expect(parseConfig(JSON5.parse(text), { baseDir: dir })).toEqual(parseConfig({}, { baseDir: dir }));
    expect(text).toContain("fw serves only the packages published to it");
  });

  it("proxies the upstream registry it is given, and only adds that uplink to the defaults", () => {
    const upstream = "https://registry.example.org/npm/";
    const text = renderConfigTemplate({ upstreamRegistry: upstream });
    expect(text).toContain(`url: "${upstream}",`);
    const parsed = parseConfig(JSON5.parse(text), { baseDir: dir });
    const { uplinks, proxy, access, ...rest } = parsed;
    expect(rest).toEqual(parseConfig({}, { baseDir: dir }));
    expect(uplinks?.public?.url).toBe("https://registry.example.org/npm");
    expect(proxy).toEqual({ "**": ["public"] });
    expect(access).toEqual({ packages: { "**": { access: ["$all"], publish: ["$authenticated"] } } });
  });

  it("keeps its commented-out uplink example valid", () => {
    const text = renderConfigTemplate();
    const block = text.match(/^ {2}\/\/ uplinks: \{\n(?:.*\n)*? {2}\/\/ \},\n(?:.*\n)*? {2}\/\/ \},\n/m)?.[0];
    expect(block).toContain("// packages: {");
    // The example's lines, not the prose between them.
    const uncommented = (block ?? "")
      .split("\n")
      .map((line) => line.replace(/^( *)\/\/ ?/, "$1"))
      .filter((line) => /^\s*(uplinks:|packages:|public:|url:|\}|"\*\*"|\/\/|$)/.test(line))
      .join("\n");
    const parsed = parseConfig(JSON5.parse(`{${uncommented}}`), { baseDir: dir });
    expect(parsed.uplinks?.public?.url).toBe("https://registry.example.com");
    expect(parsed.proxy).toEqual({ "**": ["public"] });
  });

  it("refuses an upstream that is not an http(s) URL", () => {
    expect(() => renderConfigTemplate({ upstreamRegistry: "file:///etc/passwd" })).toThrow(TypeError);
    expect(() => renderConfigTemplate({ upstreamRegistry: "not a url" })).toThrow(
      "upstreamRegistry must be an http(s) URL",
    );
  });

  it("keeps its commented-out S3 example valid", () => {
    const text = renderConfigTemplate();
    const block = text.match(/^ {2}\/\/ storage: \{\n(?:.*\n)*? {2}\/\/ \},\n/m)?.[0];
    expect(block).toBeDefined();
    const uncommented = (block ?? "").replace(/^( *)\/\/ ?/gm, "$1");
    const storage = JSON5.parse<{ storage: unknown }>(`{${uncommented}}`).storage;
    expect(parseConfig({ storage }).storage).toMatchObject({ driver: "s3", region: "auto", prefix: "registry/" });
  });
});
