import { appendFile, cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parsePolicy, type UserProfile, UserStore } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { tempDir } from "@fw/tooling/test";
import JSON5 from "json5";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkConfig, parseConfig } from "../src/config/parse.js";
import { type HtpasswdEntry, parseHtpasswd } from "../src/import/htpasswd.js";
import { type ImportReport, importVerdaccio } from "../src/import/verdaccio.js";
import {
  type ConvertedConfig,
  convertVerdaccioConfig,
  readVerdaccioYaml,
  renderConvertedConfig,
} from "../src/import/verdaccio-config.js";
import type { Packument } from "../src/npm/packument.js";
import { startTestRegistry } from "./helpers/registry.js";
import { makeVerdaccioStorage, type VerdaccioFixture } from "./helpers/verdaccio.js";

let fixture: VerdaccioFixture;

beforeAll(async () => {
  fixture = await makeVerdaccioStorage();
});

afterAll(async () => {
  await fixture?.remove();
});

interface Source {
  converted: ConvertedConfig;
  users: HtpasswdEntry[];
}

async function source(dir = fixture.dir): Promise<Source> {
  const yaml = await readVerdaccioYaml(await readFile(join(dir, "config.yaml"), "utf8"));
  const users = parseHtpasswd(await readFile(join(dir, "htpasswd"), "utf8")).entries;
  return { converted: convertVerdaccioConfig(yaml, { configDir: dir, users: users.map((u) => u.name) }), users };
}

async function runImport(target: StorageDriver, dir = fixture.dir, dryRun = false): Promise<ImportReport> {
  const { converted, users } = await source(dir);
  const config = parseConfig(converted.config, { baseDir: dir });
  return importVerdaccio({
    target,
    storageDir: converted.storage as string,
    htpasswd: users,
    policy: parsePolicy(config.access ?? {}),
    dryRun,
  });
}

async function stored(target: StorageDriver, name: string): Promise<Packument> {
  const object = await target.get(`packages/${name}/packument.json`);
  if (!object) throw new Error(`${name} was not imported`);
  return JSON.parse(new TextDecoder().decode(object.body)) as Packument;
}

interface VerdaccioDocument {
  readme?: string;
  time: Record<string, string>;
  versions: Record<string, { dist: { shasum: string; integrity: string } }>;
}

async function verdaccioDocument(name: string): Promise<VerdaccioDocument> {
  return JSON.parse(await readFile(join(fixture.storage, ...name.split("/"), "package.json"), "utf8"));
}

describe("the config Verdaccio ran with, converted", () => {
  it("keeps uplinks, rules with their proxy lists, listen, limits and log, and lists what has no equivalent", async () => {
    const { converted } = await source();
    expect(converted.issues).toEqual([]);
    const yaml = await readVerdaccioYaml(await readFile(fixture.configFile, "utf8"));
    const upstream = (yaml.uplinks as Record<string, { url: string }>).npmjs?.url;
    expect(converted.config.uplinks).toEqual({
      npmjs: {
        url: upstream,
        timeouts: { responseMs: 5000, idleMs: 5000 },
        maxAgeMs: 600_000,
        circuit: { failures: 3, cooldownMs: 60_000 },
        audit: true,
      },
      mirror: { url: "http://127.0.0.1:9/", auth: { type: "bearer", tokenEnv: "MIRROR_TOKEN" }, audit: true },
    });
    expect(converted.config.packages).toEqual({
      "public-*": { access: ["$all"], publish: [], unpublish: [], proxy: ["npmjs"] },
      "@acme/*": {
        access: ["$authenticated"],
        publish: ["user:alice", "user:bob"],
        unpublish: ["user:alice", "user:bob"],
        proxy: [],
      },
      "mirror-*": { access: ["$authenticated"], publish: [], unpublish: [], proxy: ["mirror", "npmjs"] },
      "@internal/*": { access: ["user:alice"], publish: ["user:alice"], unpublish: ["user:alice"], proxy: [] },
      "**": { access: ["$all"], publish: ["$authenticated"], unpublish: ["$authenticated"], proxy: [] },
    });
    expect(converted.config).toMatchObject({
      listen: { host: "127.0.0.1" },
      limits: { maxBodySize: "20mb" },
      log: { level: "warn", format: "json" },
      auth: { signup: true, rateLimit: { burst: 50, perSecond: 50 } },
    });
    expect(converted.notConverted.map((item) => item.key)).toEqual([
      "uplinks.Mirror.headers",
      "web",
      "publish",
      "security",
    ]);
    expect(converted.warnings).toContain('uplink "Mirror" is called "mirror" in fw (uplink names are lowercase)');
    expect(converted.storage).toBe(fixture.storage);
    expect(converted.htpasswd).toBe(fixture.htpasswd);

    const config = parseConfig(converted.config, { baseDir: fixture.dir });
    expect(config.proxy).toEqual({
      "public-*": ["npmjs"],
      "@acme/*": [],
      "mirror-*": ["mirror", "npmjs"],
      "@internal/*": [],
      "**": [],
    });
  });

  it("renders a JSON5 file fw loads, with what was not converted in its comments", async () => {
    const { converted } = await source();
    const text = renderConvertedConfig(converted, {
      source: fixture.configFile,
      storage: { driver: "fs", path: "./storage" },
    });
    expect(text).toContain("//   - security: fw issues its own tokens");
    expect(text).toContain('  packages: {\n    "public-*": {\n      access: ["$all"],');
    const parsed = JSON5.parse(text);
    expect(parsed).toEqual({ ...converted.config, storage: { driver: "fs", path: "./storage" } });
    expect(checkConfig(parsed, { baseDir: fixture.dir })).toHaveProperty("config");
  });
});

describe("importVerdaccio on a storage folder Verdaccio wrote", () => {
  it("imports every published package: versions, dist-tags, deprecations, owners, time, readme and tarballs", async () => {
    const target = memoryDriver();
    const report = await runImport(target);
    expect(report.ok).toBe(true);
    expect(report.packages.imported.map((each) => each.name)).toEqual([
      "@acme/widget",
      "@internal/secret",
      "left-pad-x",
      "old-style",
    ]);
    expect(report.counts).toEqual({ packages: 4, versions: 8, tarballs: 8, users: 6, skipped: 1, failed: 0 });
    expect(report.packages.skipped).toEqual([
      {
        name: "public-thing",
        reason: "a cached copy from uplink npmjs, not published here; fw's uplinks fetch it again",
      },
    ]);
    expect(await target.head("packages/public-thing/packument.json")).toBeNull();

    const leftPad = await stored(target, "left-pad-x");
    const original = await verdaccioDocument("left-pad-x");
    // 1.0.1 was unpublished in Verdaccio (and its "legacy" tag with it).
    expect(Object.keys(leftPad.versions)).toEqual(["1.0.0", "1.1.0", "2.0.0-beta.1"]);
    expect(leftPad["dist-tags"]).toEqual({ latest: "1.1.0", beta: "2.0.0-beta.1", stable: "1.1.0" });
    expect(leftPad.versions["1.0.0"]?.deprecated).toBe("use 1.1.0 or later");
    expect(leftPad.versions["1.1.0"]?.deprecated).toBeUndefined();
    expect(leftPad.time).toEqual(original.time);
    expect(leftPad._fwPublished).toEqual(["1.0.0", "1.1.0", "2.0.0-beta.1"]);
    expect(leftPad.description).toBe("pads, version 1.1.0");
    expect(leftPad.keywords).toEqual(["pad"]);
    // Verdaccio 6 keeps no owners: those its publish rule ($authenticated) allowed become maintainers.
    expect(leftPad.maintainers.map((m) => m.name)).toEqual(["alice", "bob", "carol", "dave", "erin", "frank"]);
    // The last publish (2.0.0-beta.1) had no README, and Verdaccio keeps only the last one's.
    expect(original.readme).toBe("ERROR: No README data found!");
    expect(leftPad.readme).toBeUndefined();
    for (const [version, manifest] of Object.entries(leftPad.versions)) {
      expect(manifest.dist.tarball).toBe("");
      expect(manifest.dist.shasum).toBe(original.versions[version]?.dist.shasum);
      expect(manifest.dist.integrity).toBe(original.versions[version]?.dist.integrity);
      const tarball = await target.get(`packages/left-pad-x/-/left-pad-x-${version}.tgz`);
      expect(tarball?.body).toEqual(
        new Uint8Array(await readFile(join(fixture.storage, "left-pad-x", `left-pad-x-${version}.tgz`))),
      );
    }
    for (const internal of ["_uplinks", "_distfiles", "_attachments"]) expect(leftPad).not.toHaveProperty(internal);

    const widget = await stored(target, "@acme/widget");
    expect(widget["dist-tags"]).toEqual({ latest: "0.2.0", next: "0.3.0-next.0" });
    // Verdaccio keeps the README of the last publish, here 0.3.0-next.0's.
    expect(widget.readme).toBe("# @acme/widget\n\nWidgets, next.\n");
    expect(widget.maintainers.map((m) => m.name)).toEqual(["alice", "bob"]);
    expect(await target.head("packages/@acme/widget/-/widget-0.3.0-next.0.tgz")).not.toBeNull();
    expect((await stored(target, "@internal/secret")).maintainers).toEqual([{ name: "alice" }]);
    // Published the npm 6 way, the document records its maintainers.
    expect((await stored(target, "old-style")).maintainers).toEqual([
      { name: "bob", email: "bob@example.com" },
      { name: "alice", email: "alice@example.com" },
    ]);

    // fw serves what was imported.
    await using registry = await startTestRegistry({ storage: target });
    const served = (await (await fetch(`${registry.url}/left-pad-x`)).json()) as Packument;
    expect(served.versions["1.1.0"]?.dist.tarball).toBe(`${registry.url}/left-pad-x/-/left-pad-x-1.1.0.tgz`);
    const download = await fetch(served.versions["1.1.0"]?.dist.tarball as string);
    expect(download.status).toBe(200);
    expect(new Uint8Array(await download.arrayBuffer())).toEqual(
      new Uint8Array(await readFile(join(fixture.storage, "left-pad-x", "left-pad-x-1.1.0.tgz"))),
    );
    expect(registry.errors).toEqual([]);
  });

  it("keeps every htpasswd password working and replaces each legacy hash with scrypt at the first login", async () => {
    const target = memoryDriver();
    const report = await runImport(target);
    expect(report.users.imported).toEqual([
      { name: "alice", scheme: "bcrypt" },
      { name: "bob", scheme: "bcrypt" },
      { name: "carol", scheme: "apr1" },
      { name: "dave", scheme: "sha1" },
      { name: "erin", scheme: "des-crypt" },
      { name: "frank", scheme: "plain" },
    ]);
    const users = new UserStore(target);
    const profile = async (name: string) =>
      JSON.parse(new TextDecoder().decode((await target.get(`users/${name}/profile.json`))?.body)) as UserProfile;
    const htpasswd = await readFile(fixture.htpasswd, "utf8");
    // A plain-text password is hashed at import: fw never stores one.
    expect((await profile("frank")).passwordHash).toMatch(/^scrypt\$/);
    expect((await profile("frank")).created).toBe("2020-01-02T03:04:05.000Z");
    for (const [name, password] of Object.entries(fixture.passwords)) {
      const before = await profile(name);
      if (name !== "frank") expect(htpasswd).toContain(`${name}:${before.passwordHash}:`);
      expect(await users.authenticate(name, `x${password}`)).toMatchObject({ ok: false });
      expect(await users.authenticate(name, password), name).toMatchObject({ ok: true });
      expect((await profile(name)).passwordHash).toMatch(/^scrypt\$32768\$8\$1\$/);
      expect(await users.authenticate(name, password)).toMatchObject({ ok: true });
    }
  });

  it("leaves out tarballs that do not match their digests, and users it cannot keep, and says why", async () => {
    await using copy = await tempDir();
    await cp(fixture.dir, copy.path, { recursive: true });
    const storage = join(copy.path, "storage");
    const corrupt = join(storage, "left-pad-x", "left-pad-x-1.1.0.tgz");
    const bytes = await readFile(corrupt);
    bytes[bytes.length - 1] = (bytes.at(-1) as number) ^ 0xff;
    await writeFile(corrupt, bytes);
    await writeFile(join(storage, "left-pad-x", "left-pad-x-0.0.1.tgz"), bytes);
    await writeFile(join(storage, "@acme", "widget", "widget-0.1.0.tgz"), "");
    const widget = join(storage, "@acme", "widget", "package.json");
    const document = JSON.parse(await readFile(widget, "utf8"));
    delete document.versions["0.2.0"].dist.shasum;
    document.versions["0.2.0"].dist.integrity = `sha512-${Buffer.alloc(64).toString("base64")}`;
    await writeFile(widget, JSON.stringify(document));
    await appendFile(
      join(copy.path, "htpasswd"),
      [
        "ghost:$6$salt$abcdefghijklmnop:",
        "o'neil:{SHA}9jBBHFEZTMHzCmbJTFWpfQoBmM8=:",
        "admin:{SHA}9jBBHFEZTMHzCmbJTFWpfQoBmM8=:",
      ].join("\n"),
    );

    const target = memoryDriver();
    const report = await runImport(target, copy.path);
    expect(report.ok).toBe(false);
    expect(report.packages.failed).toEqual([
      { name: "@acme/widget", version: "0.1.0", reason: "the tarball does not match dist.shasum" },
      { name: "@acme/widget", version: "0.2.0", reason: "the tarball does not match dist.integrity (sha512)" },
      { name: "left-pad-x", version: "1.1.0", reason: "the tarball does not match dist.shasum" },
    ]);
    expect(report.users.failed).toEqual([
      { name: "ghost", reason: "unsupported hash type $6$ (htpasswd line 7)" },
      { name: "o'neil", reason: expect.stringMatching(/not a valid fw user name/) },
      { name: "admin", reason: expect.stringMatching(/reserved for access rules/) },
    ]);
    expect(report.counts.failed).toBe(6);
    const dry = await runImport(memoryDriver(), copy.path, true);
    expect(dry.users.failed).toEqual(report.users.failed);
    expect(dry.packages.failed).toEqual(report.packages.failed);
    expect(await target.head("users/ghost/profile.json")).toBeNull();

    const leftPad = await stored(target, "left-pad-x");
    expect(Object.keys(leftPad.versions)).toEqual(["1.0.0", "2.0.0-beta.1"]);
    // The tags of the version left out go; latest falls back to the highest stable version imported.
    expect(leftPad["dist-tags"]).toEqual({ latest: "1.0.0", beta: "2.0.0-beta.1" });
    expect(await target.head("packages/left-pad-x/-/left-pad-x-1.1.0.tgz")).toBeNull();
    // A version left out is not reserved: its owner can publish the real tarball again.
    expect(leftPad._fwPublished).toEqual(["1.0.0", "2.0.0-beta.1"]);
    expect(report.packages.imported.find((each) => each.name === "left-pad-x")?.warnings).toEqual([
      "left-pad-x-0.0.1.tgz belongs to no version (left behind by an unpublish?): not imported",
      'dist-tag "latest" points at 1.1.0, which is not imported: dropped',
      'dist-tag "stable" points at 1.1.0, which is not imported: dropped',
      'no importable "latest" tag: latest is 1.0.0',
    ]);
    expect(Object.keys((await stored(target, "@acme/widget")).versions)).toEqual(["0.3.0-next.0"]);
  });

  it("is create-only: existing fw users and packages stay as they are, and a second run adds nothing", async () => {
    const target = memoryDriver();
    const users = new UserStore(target);
    await users.create("alice", "the fw password");
    const mine = JSON.stringify({
      _id: "old-style",
      name: "old-style",
      versions: {},
      "dist-tags": {},
      time: {},
      maintainers: [],
    });
    await target.put("packages/old-style/packument.json", mine);

    const first = await runImport(target);
    expect(first.ok).toBe(true);
    expect(first.users.skipped).toEqual([{ name: "alice", reason: "already an fw user (not changed)" }]);
    expect(first.packages.skipped.map((each) => each.name)).toEqual(["old-style", "public-thing"]);
    expect(new TextDecoder().decode((await target.get("packages/old-style/packument.json"))?.body)).toBe(mine);
    expect(await users.authenticate("alice", "the fw password")).toMatchObject({ ok: true });
    expect(await users.authenticate("alice", fixture.passwords.alice as string)).toMatchObject({ ok: false });

    const before = (await target.list({ prefix: "" })).objects.map((o) => `${o.key} ${o.etag}`);
    const second = await runImport(target);
    expect(second.ok).toBe(true);
    expect(second.counts).toMatchObject({ packages: 0, versions: 0, tarballs: 0, users: 0, failed: 0 });
    expect((await target.list({ prefix: "" })).objects.map((o) => `${o.key} ${o.etag}`)).toEqual(before);
  });

  it("writes nothing in a dry run and reports what it would import", async () => {
    const target = memoryDriver();
    const report = await runImport(target, fixture.dir, true);
    expect(report).toMatchObject({ ok: true, dryRun: true });
    expect(report.counts).toEqual({ packages: 4, versions: 8, tarballs: 8, users: 6, skipped: 1, failed: 0 });
    expect((await target.list({ prefix: "" })).objects).toEqual([]);
  });
});
