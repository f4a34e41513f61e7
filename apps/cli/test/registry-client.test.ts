import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { fsDriver } from "@fw/storage-r2/fs";
import { tempDir } from "@fw/tooling/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, FW_BIN, type RunningFw, requireBuilt, runFw, startFw } from "./helpers.js";

/**
 * `fw registry publish|info|search|list` against a running fw: folders packed with `files`,
 * `.npmignore` and `.gitignore`, checked against `npm pack`'s own answer, published, then read back
 * with real `npm view` and `npm install`.
 */

const exec = promisify(execFile);
let dir: Awaited<ReturnType<typeof tempDir>>;
let fw: RunningFw;
let token: string;
/** The registry's URL with its trailing slash, as fw prints it. */
let base: string;
async function client(args: string[], env: Record<string, string> = {}, cwd = dir.path) {
  return runFw(args, { cwd, env: cleanEnv({ FW_REGISTRY: fw.url, FW_TOKEN: token, ...env }) });
}

async function clientOk(args: string[], env: Record<string, string> = {}, cwd = dir.path) {
  const result = await client(args, env, cwd);
  expect(result.code, `fw ${args.join(" ")}: ${result.stderr}`).toBe(0);
  return result;
}

async function npm(args: string[], cwd: string): Promise<string> {
  const npmrc = join(dir.path, "npmrc");
  await writeFile(npmrc, `registry=${base}\n//${new URL(fw.url).host}/:_authToken=${token}\n`);
  const { stdout } = await exec("npm", args, {
    cwd,
    env: cleanEnv({
      npm_config_userconfig: npmrc,
      npm_config_cache: join(dir.path, "npm-cache"),
      npm_config_update_notifier: "false",
      npm_config_audit: "false",
      npm_config_fund: "false",
    }),
  });
  return stdout;
}

async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<string> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

function manifest(fields: Record<string, unknown>): string {
  return `${JSON.stringify(fields, null, 2)}\n`;
}

const widgetManifest = {
  name: "fixture-widget",
  version: "1.0.0",
  description: "A widget for the fw client tests",
  license: "MIT",
  keywords: ["fixture", "widget"],
  main: "lib/index.js",
  bin: { widget: "cli.js" },
  files: ["lib", "cli.js"],
  dependencies: { "@fixtures/helper": "^1.0.0" },
};

/** `files` picks lib/ and cli.js; lib/.npmignore drops tests; README and LICENSE always go; .npmrc never. */
async function widget(fields: Record<string, unknown> = {}): Promise<string> {
  return writeTree(join(dir.path, "widget"), {
    "package.json": manifest({ ...widgetManifest, ...fields }),
    "README.md": "# fixture-widget\n\nWidgets, for tests.\n",
    LICENSE: "MIT License\n",
    "lib/index.js": 'const helper = require("@fixtures/helper");\nmodule.exports = () => "widget + " + helper();\n',
    "lib/format.js": "module.exports = (s) => String(s).trim();\n",
    "lib/format.test.js": "throw new Error('tests are not shipped');\n",
    "lib/.npmignore": "*.test.js\n",
    "cli.js": '#!/usr/bin/env node\nconsole.log(require("./lib")());\n',
    "src/index.ts": "export {};\n",
    "notes.txt": "not in files\n",
    ".npmrc": "//example.invalid/:_authToken=do-not-ship\n",
  });
}
const WIDGET_FILES = ["LICENSE", "README.md", "cli.js", "lib/format.js", "lib/index.js", "package.json"];

/** No `files`: the root .npmignore decides, and the .gitignore beside it is not read. */
async function helper(): Promise<string> {
  return writeTree(join(dir.path, "helper"), {
    "package.json": manifest({
      name: "@fixtures/helper",
      version: "1.0.0",
      description: "Helps the widget",
      license: "MIT",
      main: "index.js",
    }),
    "index.js": 'module.exports = () => "helper";\n',
    "docs/guide.md": "# Guide\n",
    "test/index.test.js": "throw new Error('not shipped');\n",
    "debug.log": "noise\n",
    ".npmignore": "test/\n*.log\n",
    ".gitignore": "index.js\ndocs/\n",
  });
}
const HELPER_FILES = ["docs/guide.md", "index.js", "package.json"];

interface PackJson {
  id: string;
  shasum: string;
  integrity: string;
  filename: string;
  files: { path: string; size: number; mode: number }[];
  entryCount: number;
}

/** What `publish --dry-run --json` said about the fixtures, before they were published. */
let widgetPack: PackJson;
let helperPack: PackJson;

beforeAll(async () => {
  requireBuilt();
  dir = await tempDir("fw-client-");
  await writeFile(
    join(dir.path, "fw.config.json5"),
    '{ storage: { driver: "fs", path: "./storage" }, log: { level: "warn" } }\n',
  );
  const alice = ["alice", "--password=alice password 1", "--email=alice@example.com"];
  const add = await runFw(["registry", "user", "add", ...alice], { cwd: dir.path });
  expect(add.code, add.stderr).toBe(0);
  const created = await runFw(["registry", "token", "create", "alice", "--json"], { cwd: dir.path });
  token = (JSON.parse(created.stdout) as { token: string }).token;
  fw = await startFw(["registry", "start", "--port", "0", "--json"], { cwd: dir.path, env: cleanEnv() });
  base = new URL(fw.url).href;
});

afterAll(async () => {
  await fw?.stop();
  await dir?.remove();
});

describe("fw registry publish", () => {
  it("packs like npm pack (same files, same bytes) and --dry-run publishes nothing", async () => {
    const widgetDir = await widget();
    const dry = await clientOk(["registry", "publish", widgetDir, "--dry-run"]);
    expect(dry.stdout).toContain("package: fixture-widget@1.0.0\nTarball Contents\n");
    expect(dry.stdout).toMatch(/^\d+B lib\/format\.js$/m);
    expect(dry.stdout).toMatch(/^shasum: [0-9a-f]{40}$/m);
    expect(dry.stdout).toMatch(/^integrity: sha512-[A-Za-z0-9+/]{86}==$/m);
    expect(dry.stdout).toContain("total files: 6\n");
    expect(dry.stdout).toContain(`Would publish to ${base} with tag latest (dry run)\n`);
    expect(dry.stdout.endsWith("+ fixture-widget@1.0.0 (dry run: nothing was published)\n")).toBe(true);
    expect(dry.stderr).toBe("");

    widgetPack = JSON.parse((await clientOk(["registry", "publish", widgetDir, "--dry-run", "--json"])).stdout);
    expect(widgetPack).toMatchObject({
      id: "fixture-widget@1.0.0",
      filename: "fixture-widget-1.0.0.tgz",
      tag: "latest",
      published: false,
      alreadyPublished: false,
    });
    expect(widgetPack.files.map((file) => file.path).sort()).toEqual(WIDGET_FILES);
    // cli.js is the bin at the package's top, so it is packed executable (as npm does).
    expect(widgetPack.files.find((file) => file.path === "cli.js")?.mode).toBe(0o755);

    const helperDir = await helper();
    helperPack = JSON.parse(
      (await clientOk(["registry", "publish", "--dry-run", "--json"], {}, helperDir)).stdout,
    ) as PackJson;
    expect(helperPack.files.map((file) => file.path).sort()).toEqual(HELPER_FILES);
    expect(helperPack.filename).toBe("fixtures-helper-1.0.0.tgz");

    // npm's own packing of the same folders: the same files, and byte for byte the same tarball.
    for (const [folder, packed] of [
      [widgetDir, widgetPack],
      [helperDir, helperPack],
    ] as const) {
      const [npmPack] = JSON.parse(await npm(["pack", "--dry-run", "--json"], folder)) as PackJson[];
      expect(packed.files.map((file) => file.path)).toEqual(npmPack?.files.map((file) => file.path));
      expect([packed.shasum, packed.integrity]).toEqual([npmPack?.shasum, npmPack?.integrity]);
    }

    const missing = await fetch(new URL("fixture-widget", fw.url), { headers: { authorization: `Bearer ${token}` } });
    expect(missing.status).toBe(404);
  });

  it("publishes with progress, and npm view and npm install get exactly the packed files", async () => {
    const helperOut = await clientOk(["registry", "publish", join(dir.path, "helper"), "--access", "public"]);
    expect(helperOut.stdout.endsWith("+ @fixtures/helper@1.0.0\n")).toBe(true);
    expect(helperOut.stderr).toMatch(
      /^uploading @fixtures\/helper@1\.0\.0 \(\d+\.\d kB\)\nuploaded \d+\.\d kB; waiting for the registry\n$/,
    );

    const widgetOut = await clientOk(["registry", "publish", join(dir.path, "widget"), "--json"]);
    expect(JSON.parse(widgetOut.stdout)).toMatchObject({
      id: "fixture-widget@1.0.0",
      integrity: widgetPack.integrity,
      published: true,
      dryRun: false,
    });
    expect(widgetOut.stderr).toBe("");

    const viewed = JSON.parse(await npm(["view", "fixture-widget", "--json"], dir.path)) as {
      dist: { integrity: string; shasum: string };
      "dist-tags": Record<string, string>;
    };
    expect(viewed.dist).toMatchObject({ integrity: widgetPack.integrity, shasum: widgetPack.shasum });
    expect(viewed["dist-tags"]).toEqual({ latest: "1.0.0" });
    expect(JSON.parse(await npm(["view", "@fixtures/helper", "dist.integrity", "--json"], dir.path))).toBe(
      helperPack.integrity,
    );

    const project = await writeTree(join(dir.path, "project"), {
      "package.json": manifest({ name: "p", private: true }),
    });
    await npm(["install", "fixture-widget"], project);
    expect(await filesUnder(join(project, "node_modules/fixture-widget"))).toEqual(WIDGET_FILES);
    expect(await filesUnder(join(project, "node_modules/@fixtures/helper"))).toEqual(HELPER_FILES);
    const { stdout } = await exec(join(project, "node_modules/.bin/widget"), [], { cwd: project });
    expect(stdout).toBe("widget + helper\n");
  });

  it("says in one line why a publish is refused", async () => {
    const again = await client(["registry", "publish", join(dir.path, "widget")]);
    expect(again.code).toBe(1);
    expect(again.stderr.split("\n").at(-2)).toBe(
      `fw: cannot publish over the previously published version fixture-widget@1.0.0 (409 from PUT ${base}fixture-widget)`,
    );
    const dryAgain = await clientOk(["registry", "publish", join(dir.path, "widget"), "--dry-run"]);
    expect(dryAgain.stderr).toBe(
      "fw: warning: fixture-widget@1.0.0 is already published there; a real publish would be refused\n",
    );
    const againJson = await client(["registry", "publish", join(dir.path, "widget"), "--json"]);
    expect(JSON.parse(againJson.stdout)).toEqual({
      error: { code: "E409", message: expect.stringContaining("cannot publish over the previously published version") },
    });

    const widgetDir = await widget({ version: "2.0.0-beta.0" });
    const pre = await client(["registry", "publish", widgetDir]);
    expect(pre.stderr).toBe(
      'fw: fixture-widget@2.0.0-beta.0 is a pre-release: pass --tag (e.g. --tag next) so it does not become "latest"\n',
    );
    await widget({ version: "0.9.0" });
    const lower = await client(["registry", "publish", widgetDir]);
    expect(lower.stderr).toBe(
      'fw: 1.0.0 is already published, which is higher than 0.9.0: pass --tag to publish it without moving "latest"\n',
    );
    await widget({ private: true });
    expect((await client(["registry", "publish", widgetDir])).stderr).toBe(
      'fw: fixture-widget@1.0.0 is marked "private" in package.json; remove it to publish\n',
    );
    await widget({ version: "1.1.0" });
    expect((await client(["registry", "publish", widgetDir, "--access", "restricted"])).stderr).toBe(
      "fw: fixture-widget is not scoped: only scoped packages can be restricted\n",
    );
    const anonymous = await client(["registry", "publish", widgetDir], {
      FW_TOKEN: "",
      npm_config_userconfig: join(dir.path, "no-such-npmrc"),
    });
    expect(anonymous.stderr).toBe(
      `fw: publishing needs a token for ${base}: log in (npm login) or pass --token / FW_TOKEN\n`,
    );
    const notAFolder = await client(["registry", "publish", join(dir.path, "nowhere")]);
    expect(notAFolder.stderr).toBe("fw: cannot pack ./nowhere: not a folder\n");
    expect(JSON.parse(await npm(["view", "fixture-widget", "versions", "--json"], dir.path))).toEqual(["1.0.0"]);
  });

  it("--tag puts a pre-release on its own dist-tag", async () => {
    const widgetDir = await widget({ version: "2.0.0-beta.0" });
    const out = await clientOk(["registry", "publish", widgetDir, "--tag", "next"]);
    expect(out.stdout).toContain(`Publishing to ${base} with tag next\n`);
    expect(JSON.parse(await npm(["view", "fixture-widget", "dist-tags", "--json"], dir.path))).toEqual({
      latest: "1.0.0",
      next: "2.0.0-beta.0",
    });
  });
});

/** A registry that wants a one-time password for every PUT, and records what it was sent. */
async function otpRegistry() {
  const puts: { headers: IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      if (req.method !== "PUT") {
        res.writeHead(404).end('{"error":"not found"}');
        return;
      }
      puts.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      if (req.headers["npm-otp"] === "012345") res.writeHead(201).end('{"ok":true}');
      else
        res
          .writeHead(401, { "www-authenticate": "OTP" })
          .end('{"error":"publishing needs a one-time password from your authenticator app"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return {
    url,
    puts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("fw registry publish: one-time passwords and the upload", () => {
  it("turns an OTP challenge into one line, sends --otp as npm-otp, and streams the libnpmpublish body", async () => {
    const registry = await otpRegistry();
    try {
      const pkg = await writeTree(join(dir.path, "otp"), {
        "package.json": manifest({ name: "@fixtures/otp", version: "1.0.0", description: "2FA", license: "MIT" }),
        "index.js": "module.exports = 1;\n",
      });
      const env = { FW_REGISTRY: registry.url };
      const asked = await client(["registry", "publish", pkg], env);
      expect(asked.code).toBe(1);
      expect(asked.stderr.split("\n").at(-2)).toBe(
        "fw: publishing @fixtures/otp@1.0.0 needs a one-time password: pass --otp <code> from your authenticator app",
      );
      const wrong = await client(["registry", "publish", pkg, "--otp", "000000"], env);
      expect(wrong.stderr.split("\n").at(-2)).toBe(
        "fw: the registry refused the one-time password for @fixtures/otp@1.0.0: pass --otp with a fresh code",
      );
      const ok = await client(["registry", "publish", pkg, "--otp", "012345", "--access", "public", "--json"], env);
      expect(ok.code, ok.stderr).toBe(0);
      const packed = JSON.parse(ok.stdout) as PackJson & { access: string };
      expect(packed.access).toBe("public");

      expect(registry.puts.map((put) => put.headers["npm-otp"])).toEqual([undefined, "000000", "012345"]);
      const { headers, body } = registry.puts[2] as (typeof registry.puts)[number];
      expect(headers).toMatchObject({
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "transfer-encoding": "chunked",
      });
      const attachment = (body._attachments as Record<string, { data: string; length: number }>)[
        "@fixtures/otp-1.0.0.tgz"
      ];
      expect(Buffer.from(attachment?.data ?? "", "base64").byteLength).toBe(attachment?.length);
      expect(body).toMatchObject({
        _id: "@fixtures/otp",
        name: "@fixtures/otp",
        description: "2FA",
        access: "public",
        "dist-tags": { latest: "1.0.0" },
        versions: {
          "1.0.0": {
            _id: "@fixtures/otp@1.0.0",
            name: "@fixtures/otp",
            version: "1.0.0",
            _nodeVersion: expect.any(String),
            dist: {
              integrity: packed.integrity,
              shasum: packed.shasum,
              tarball: `${registry.url}@fixtures/otp/-/@fixtures/otp-1.0.0.tgz`,
            },
          },
        },
      });
    } finally {
      await registry.close();
    }
  });

  it("draws a progress bar on a terminal", async () => {
    const registry = await otpRegistry();
    try {
      const pkg = await writeTree(join(dir.path, "big"), {
        "package.json": manifest({ name: "fixture-big", version: "1.0.0", license: "MIT" }),
        "blob.bin": randomBytes(2_000_000),
      });
      const command = [`${process.execPath} ${FW_BIN}`, "registry", "publish", pkg, "--otp", "012345"].join(" ");
      // script(1) gives the command a real terminal; what it prints is everything the terminal showed.
      const child = spawn("script", ["-qec", command, "/dev/null"], {
        cwd: dir.path,
        env: cleanEnv({ FW_REGISTRY: registry.url, FW_TOKEN: token }),
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        output += chunk;
      });
      const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
      expect(code, output).toBe(0);
      expect(output).toMatch(/fixture-big@1\.0\.0 [█░]+ 100% \| 2\.\d MB of 2\.\d MB/);
      expect(output).toContain("+ fixture-big@1.0.0");
      expect(output).not.toContain("uploading ");
    } finally {
      await registry.close();
    }
  });
});

describe("fw registry info and search", () => {
  it("summarises a package like npm view", async () => {
    const text = (await clientOk(["registry", "info", "fixture-widget"])).stdout;
    expect(text).toMatch(
      /^fixture-widget@1\.0\.0 \| MIT \| deps: 1 \| versions: 2\nA widget for the fw client tests\n/,
    );
    expect(text).toContain("keywords: fixture, widget\n");
    expect(text).toContain(`.tarball: ${base}fixture-widget/-/fixture-widget-1.0.0.tgz\n`);
    expect(text).toContain(`.integrity: ${widgetPack.integrity}\n`);
    expect(text).toContain("dependencies:\n@fixtures/helper: ^1.0.0\n");
    expect(text).toContain("maintainers:\n- alice <alice@example.com>\n");
    expect(text).toContain("dist-tags:\nlatest: 1.0.0\nnext: 2.0.0-beta.0\n");
    expect(text).toMatch(/\npublished \d{4}-\d\d-\d\dT[\d:.]+Z \(just now\) by alice <alice@example\.com>\n$/);

    const next = JSON.parse((await clientOk(["registry", "info", "fixture-widget@next", "--json"])).stdout);
    expect(next).toMatchObject({
      name: "fixture-widget",
      version: "2.0.0-beta.0",
      distTags: { latest: "1.0.0", next: "2.0.0-beta.0" },
      versions: ["1.0.0", "2.0.0-beta.0"],
      versionCount: 2,
      maintainers: ["alice <alice@example.com>"],
      publisher: "alice <alice@example.com>",
    });
    const scoped = JSON.parse((await clientOk(["registry", "info", "@fixtures/helper@^1", "--json"])).stdout);
    expect(scoped).toMatchObject({ name: "@fixtures/helper", version: "1.0.0", description: "Helps the widget" });

    const missing = await client(["registry", "info", "no-such-package"]);
    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(missing.stderr).toBe(`fw: package "no-such-package" not found at ${base}\n`);
    const noMatch = await client(["registry", "info", "fixture-widget@^5"]);
    expect(noMatch.stderr).toBe(
      'fw: no version of fixture-widget matches "^5" (dist-tags: latest 1.0.0, next 2.0.0-beta.0)\n',
    );
  });

  it("searches with a table, --limit and --json", async () => {
    const table = (await clientOk(["registry", "search", "fixtures"])).stdout;
    const lines = table.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^NAME +VERSION +DATE +DESCRIPTION$/);
    expect(table).toMatch(/^@fixtures\/helper +1\.0\.0 +\d{4}-\d\d-\d\d +Helps the widget$/m);

    const widgetJson = JSON.parse((await clientOk(["registry", "search", "widget", "--json"])).stdout) as {
      name: string;
      version: string;
      description: string;
    }[];
    expect(widgetJson[0]).toMatchObject({
      name: "fixture-widget",
      version: "1.0.0",
      description: "A widget for the fw client tests",
    });
    const limited = JSON.parse(
      (await clientOk(["registry", "search", "fixture", "widget", "--limit", "1", "--json"])).stdout,
    );
    expect(limited).toHaveLength(1);
    expect((await clientOk(["registry", "search", "zzzqqq"])).stdout).toBe('No matches found for "zzzqqq"\n');
    expect((await client(["registry", "search", "x", "--limit", "0"])).stderr).toBe(
      'fw: --limit must be a whole number from 1 to 250, not "0"\n',
    );
  });
});

describe("fw registry list", () => {
  it("lists local and cached-upstream packages from storage, with the registry stopped", async () => {
    await fw.stop();
    const storage = fsDriver({ root: join(dir.path, "storage") });
    const cached = (name: string, version: string, description: string) =>
      JSON.stringify({
        _id: name,
        name,
        "dist-tags": { latest: version },
        versions: { [version]: { name, version, description, dist: { tarball: "http://upstream.invalid/x.tgz" } } },
        time: { modified: "2020-01-01T00:00:00.000Z" },
        _fwUplink: { uplink: "npmjs", url: "http://upstream.invalid/", fetchedAt: Date.UTC(2025, 0, 2) },
      });
    await storage.put("uplinks/npmjs/packages/left-pad/packument.json", cached("left-pad", "1.3.0", "String left pad"));
    await storage.put("uplinks/npmjs/packages/left-pad/-/left-pad-1.3.0.tgz", "not listed");
    await storage.put(
      "uplinks/mirror/packages/@fixtures/helper/packument.json",
      cached("@fixtures/helper", "0.1.0", "An older helper upstream"),
    );
    await storage.dispose?.();

    const listed = JSON.parse((await clientOk(["registry", "list", "--json"])).stdout);
    expect(
      listed.map((pkg: { name: string; source: string; uplink?: string; version: string }) => [
        pkg.name,
        pkg.source,
        pkg.uplink ?? null,
        pkg.version,
      ]),
    ).toEqual([
      ["@fixtures/helper", "local", null, "1.0.0"],
      ["@fixtures/helper", "cached", "mirror", "0.1.0"],
      ["fixture-widget", "local", null, "1.0.0"],
      ["left-pad", "cached", "npmjs", "1.3.0"],
    ]);
    expect(listed[3]).toEqual({
      name: "left-pad",
      source: "cached",
      uplink: "npmjs",
      version: "1.3.0",
      versions: 1,
      description: "String left pad",
      updated: "2025-01-02T00:00:00.000Z",
      key: "uplinks/npmjs/packages/left-pad/packument.json",
    });

    const text = (await clientOk(["registry", "list"])).stdout;
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^NAME +VERSION +SOURCE +UPDATED +DESCRIPTION$/);
    expect(text).toMatch(/^@fixtures\/helper +1\.0\.0 +local +\d{4}-\d\d-\d\d +Helps the widget$/m);
    expect(text).toMatch(/^@fixtures\/helper +0\.1\.0 +cached \(mirror\) +2025-01-02 +An older helper upstream$/m);
    expect(text).toMatch(/^left-pad +1\.3\.0 +cached \(npmjs\) +2025-01-02 +String left pad$/m);
    expect(text.endsWith("\n2 local, 1 cached from mirror, 1 cached from npmjs in fs ./storage\n")).toBe(true);
  });
});
