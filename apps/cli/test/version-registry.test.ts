import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { buildVersionGraph, type D3Graph, type PackumentLike } from "@fw/semver-graph";
import { tempDir } from "@fw/tooling/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, type RunningFw, requireBuilt, runFw, startFw } from "./helpers.js";

/**
 * `fw version graph` and `fw version rollback` against a running fw: versions published with npm and
 * over the publish API, graphed, rolled back, and checked with `npm view` and the audit trail. The
 * second part replays scripted release histories and keeps the packuments fw serves as the
 * fixtures of @fw/semver-graph's unit tests (`vitest -u` rewrites them).
 */

const exec = promisify(execFile);
let dir: Awaited<ReturnType<typeof tempDir>>;
let fw: RunningFw;
const tokens: Record<string, string> = {};

async function fwOk(args: string[], env: Record<string, string> = {}, input?: string) {
  const result = await runFw(args, {
    cwd: dir.path,
    env: cleanEnv(env),
    ...(input !== undefined && { input }),
  });
  expect(result.code, `fw ${args.join(" ")}: ${result.stderr}`).toBe(0);
  return result;
}

beforeAll(async () => {
  requireBuilt();
  dir = await tempDir();
  await writeFile(
    join(dir.path, "fw.config.json5"),
    '{ storage: { driver: "fs", path: "./storage" }, log: { level: "warn" } }\n',
  );
  await fwOk(["registry", "user", "add", "alice", "--password=alice password 1", "--email=alice@example.com"]);
  await fwOk(["registry", "user", "add", "bob", "--admin", "--password=bob password 1", "--email=bob@example.com"]);
  for (const user of ["alice", "bob"]) {
    const created = await fwOk(["registry", "token", "create", user, "--json"]);
    tokens[user] = (JSON.parse(created.stdout) as { token: string }).token;
  }
  fw = await startFw(["registry", "start", "--port", "0", "--json"], { cwd: dir.path, env: cleanEnv() });
});

afterAll(async () => {
  await fw?.stop();
  await dir?.remove();
});

/** A gzipped tarball holding `package/package.json`, byte-for-byte the same on every run. */
function tarball(manifest: object): Buffer {
  const data = Buffer.from(JSON.stringify(manifest, null, 2));
  const header = Buffer.alloc(512);
  header.write("package/package.json", 0, 100);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${data.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return gzipSync(Buffer.concat([header, data, padding, Buffer.alloc(1024)]));
}

async function api(method: string, path: string, user: string, body?: unknown): Promise<unknown> {
  const response = await fetch(new URL(path, fw.url), {
    method,
    headers: { authorization: `Bearer ${tokens[user]}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const answer = (await response.json()) as unknown;
  expect(response.ok, `${method} ${path}: ${JSON.stringify(answer)}`).toBe(true);
  return answer;
}

/** What `npm publish --tag <tag>` sends, without npm: one version and its tarball. */
async function publish(name: string, version: string, user: string, tag = "latest"): Promise<void> {
  const manifest = { name, version, description: `${name} ${version}`, license: "MIT" };
  const bytes = tarball(manifest);
  const file = `${name.replace(/^@[^/]+\//, "")}-${version}.tgz`;
  await api("PUT", `/${name.replace("/", "%2f")}`, user, {
    _id: name,
    name,
    description: manifest.description,
    "dist-tags": { [tag]: version },
    versions: {
      [version]: {
        ...manifest,
        dist: {
          integrity: `sha512-${createHash("sha512").update(bytes).digest("base64")}`,
          shasum: createHash("sha1").update(bytes).digest("hex"),
        },
      },
    },
    _attachments: {
      [file]: { content_type: "application/octet-stream", data: bytes.toString("base64"), length: bytes.length },
    },
  });
}

/** Deprecates or unpublishes versions the way npm does: read with ?write=true, PUT the changed document. */
async function editVersions(
  name: string,
  user: string,
  change: (versions: Record<string, { deprecated?: string }>) => void,
): Promise<void> {
  const doc = (await api("GET", `/${name.replace("/", "%2f")}?write=true`, user)) as {
    versions: Record<string, { deprecated?: string }>;
  };
  change(doc.versions);
  await api("PUT", `/${name.replace("/", "%2f")}`, user, doc);
}

async function npm(args: string[], cwd: string, token: string): Promise<string> {
  const npmrc = join(cwd, "..", `npmrc-${Math.random().toString(36).slice(2)}`);
  await writeFile(npmrc, `//${new URL(fw.url).host}/:_authToken=${token}\n`);
  const { stdout } = await exec("npm", [...args, "--registry", fw.url], {
    cwd,
    env: cleanEnv({ npm_config_userconfig: npmrc, npm_config_update_notifier: "false", npm_config_audit: "false" }),
  });
  return stdout;
}

/** The packument as fw serves it, with the clock, revision and host replaced so it is the same on every run. */
async function servedPackument(name: string): Promise<PackumentLike> {
  const doc = (await api("GET", `/${name.replace("/", "%2f")}`, "alice")) as PackumentLike & {
    time: Record<string, string>;
    _rev?: string;
  };
  const order = Object.entries(doc.time)
    .filter(([key]) => key !== "created" && key !== "modified")
    .sort((a, b) => Date.parse(a[1]) - Date.parse(b[1]));
  const start = Date.UTC(2023, 0, 2, 9, 0, 0);
  const day = 26 * 3_600_000;
  const time: Record<string, string> = { created: new Date(start).toISOString() };
  order.forEach(([version], index) => {
    time[version] = new Date(start + index * day).toISOString();
  });
  time.modified = new Date(start + order.length * day).toISOString();
  const text = JSON.stringify({ ...doc, _rev: "1-fixture", time }, null, 2).replaceAll(
    fw.url.replace(/\/$/, ""),
    "http://registry.invalid",
  );
  return JSON.parse(text) as PackumentLike;
}

describe("fw version graph / rollback against a running registry", () => {
  it("graphs versions published with npm, rolls latest back, and the registry and npm agree", async () => {
    const pkgDir = join(dir.path, "e2e-widget");
    await mkdir(pkgDir, { recursive: true });
    for (const version of ["1.0.0", "1.0.1", "1.1.0", "2.0.0"]) {
      await writeFile(join(pkgDir, "package.json"), JSON.stringify({ name: "e2e-widget", version, license: "MIT" }));
      await npm(["publish"], pkgDir, tokens.alice as string);
    }
    await npm(["deprecate", "e2e-widget@1.0.1", "leaks memory"], pkgDir, tokens.alice as string);

    const graph = await fwOk(["version", "graph", "e2e-widget", "--registry", fw.url, "--json"]);
    const d3 = JSON.parse(graph.stdout) as D3Graph;
    expect(d3.current).toBe("2.0.0");
    expect(Object.fromEntries(d3.nodes.map((node) => [node.id, node.status]))).toEqual({
      "2.0.0": "current",
      "1.1.0": "rollback",
      "1.0.1": "deprecated",
      "1.0.0": "rollback",
    });
    expect(d3.links).toEqual([
      { source: "1.0.0", target: "1.0.1", type: "patch" },
      { source: "1.0.1", target: "1.1.0", type: "minor" },
      { source: "1.1.0", target: "2.0.0", type: "major" },
    ]);
    const ascii = await fwOk(["version", "graph", "e2e-widget", "--registry", fw.url]);
    expect(ascii.stdout).toContain("├── v2.0.0  [Current]");
    expect(ascii.stdout).toContain("alice  latest");
    expect(ascii.stdout).not.toContain("\u001b[");
    const mermaid = await fwOk(["version", "graph", "e2e-widget", "mermaid"], { FW_REGISTRY: fw.url });
    expect(mermaid.stdout).toMatch(/^flowchart TD\n/);

    // Refused: deprecated without --force; and the tag has not moved.
    const refused = await runFw(["version", "rollback", "e2e-widget", "1.0.1", "--registry", fw.url, "--yes"], {
      cwd: dir.path,
      env: cleanEnv({ FW_TOKEN: tokens.alice as string }),
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      'fw: refusing to move "latest" of e2e-widget to 1.0.1: e2e-widget@1.0.1 is deprecated ("leaks memory"); pass --force to do it anyway\n',
    );
    // Not confirmed: stdin ends without an answer.
    const unconfirmed = await runFw(["version", "rollback", "e2e-widget", "1.1.0", "--registry", fw.url], {
      cwd: dir.path,
      env: cleanEnv({ FW_TOKEN: tokens.alice as string }),
      input: "",
    });
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stdout).toContain('e2e-widget: move "latest" 2.0.0 → 1.1.0 as alice');
    expect(unconfirmed.stderr).toContain('fw: rollback not confirmed: "latest" still points to 2.0.0');
    // Without credentials the registry says no, in one line.
    const anonymous = await runFw(["version", "rollback", "e2e-widget", "1.1.0", "--registry", fw.url, "--yes"], {
      cwd: dir.path,
      env: cleanEnv({ npm_config_userconfig: join(dir.path, "no-such-npmrc") }),
    });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^fw: .*log in \(npm login\) or pass --token \/ FW_TOKEN \(401 from PUT /);
    expect(
      JSON.parse(await npm(["view", "e2e-widget", "dist-tags", "--json"], pkgDir, tokens.alice as string)),
    ).toEqual({ latest: "2.0.0" });

    const dryRun = await fwOk([
      "version",
      "rollback",
      "e2e-widget",
      "1.1.0",
      "--registry",
      fw.url,
      "--dry-run",
      "--json",
    ]);
    expect(JSON.parse(dryRun.stdout)).toMatchObject({ from: "2.0.0", to: "1.1.0", changed: false, dryRun: true });

    // Confirmed at the prompt: the plan is printed first, then the tag moves.
    const moved = await fwOk(
      ["version", "rollback", "e2e-widget", "1.1.0", "--registry", fw.url],
      { FW_TOKEN: tokens.alice as string },
      "y\n",
    );
    expect(moved.stdout).toContain("2.0.0  stays published");
    expect(moved.stdout).toContain('"latest" of e2e-widget now points to 1.1.0 (was 2.0.0)');
    expect(
      JSON.parse(await npm(["view", "e2e-widget", "dist-tags", "--json"], pkgDir, tokens.alice as string)),
    ).toEqual({ latest: "1.1.0" });
    expect(JSON.parse(await npm(["view", "e2e-widget", "versions", "--json"], pkgDir, tokens.alice as string))).toEqual(
      ["1.0.0", "1.0.1", "1.1.0", "2.0.0"],
    );

    // The token from the project's .npmrc (as npm would use it), the registry from FW_REGISTRY, JSON out.
    const project = join(dir.path, "project");
    await mkdir(project, { recursive: true });
    await writeFile(join(project, "package.json"), "{}");
    await writeFile(join(project, ".npmrc"), `//${new URL(fw.url).host}/:_authToken=\${MY_FW_TOKEN}\n`);
    const viaNpmrc = await runFw(["version", "rollback", "e2e-widget", "1.0.0", "--yes", "--json"], {
      cwd: project,
      env: cleanEnv({
        FW_REGISTRY: fw.url,
        MY_FW_TOKEN: tokens.bob as string,
        npm_config_userconfig: join(dir.path, "no-such-npmrc"),
      }),
    });
    expect(viaNpmrc.code, viaNpmrc.stderr).toBe(0);
    expect(JSON.parse(viaNpmrc.stdout)).toMatchObject({
      package: "e2e-widget",
      tag: "latest",
      from: "1.1.0",
      to: "1.0.0",
      changed: true,
      actor: "bob",
      rollbackReady: ["1.0.0"],
      distTags: { latest: "1.0.0" },
    });

    // Every move is in the audit trail, with who did it.
    const audit = await fwOk(["registry", "audit", "--package", "e2e-widget", "--action", "dist-tag", "--json"]);
    const events = JSON.parse(audit.stdout) as Array<{ actor: string; details: { tag: string; set: string } }>;
    expect(events.map((event) => [event.actor, event.details])).toEqual([
      ["alice", { tag: "latest", set: "1.1.0" }],
      ["bob", { tag: "latest", set: "1.0.0" }],
    ]);

    // Back to 2.0.0 is not a rollback: only with --force.
    const forward = await runFw(["version", "rollback", "e2e-widget", "2.0.0", "--yes"], {
      cwd: dir.path,
      env: cleanEnv({ FW_REGISTRY: fw.url, FW_TOKEN: tokens.alice as string }),
    });
    expect(forward.stderr).toContain("2.0.0 is not earlier than 1.0.0");
    await fwOk(["version", "rollback", "e2e-widget", "2.0.0", "--yes", "--force"], {
      FW_REGISTRY: fw.url,
      FW_TOKEN: tokens.alice as string,
    });

    // An unpublished version cannot be tagged, --force or not.
    await npm(["unpublish", "e2e-widget@1.1.0", "--force"], pkgDir, tokens.alice as string);
    const gone = await runFw(["version", "rollback", "e2e-widget", "1.1.0", "--yes", "--force"], {
      cwd: dir.path,
      env: cleanEnv({ FW_REGISTRY: fw.url, FW_TOKEN: tokens.alice as string }),
    });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("e2e-widget@1.1.0 was unpublished");
    const after = JSON.parse(
      (await fwOk(["version", "graph", "e2e-widget", "--json"], { FW_REGISTRY: fw.url })).stdout,
    ) as D3Graph;
    expect(after.nodes.find((node) => node.id === "1.1.0")?.status).toBe("unpublished");
  });

  it("reports a missing package and an unreachable registry in one line", async () => {
    const missing = await runFw(["version", "graph", "no-such-package", "--registry", fw.url], {
      cwd: dir.path,
      env: cleanEnv(),
    });
    expect(missing).toMatchObject({ code: 1, stdout: "" });
    expect(missing.stderr).toBe(`fw: package "no-such-package" not found at ${new URL(fw.url).href}\n`);
    const down = await runFw(["version", "graph", "x", "--registry", "http://127.0.0.1:9/"], {
      cwd: dir.path,
      env: cleanEnv(),
    });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^fw: cannot reach the registry at http:\/\/127\.0\.0\.1:9\/: .+\n$/);
  });
});

describe("release histories replayed on fw (the fixtures of @fw/semver-graph)", () => {
  const fixtures = "../../../packages/semver-graph/test/fixtures";

  it("widget: a beta line, 1.x and 2.1.x maintenance, deprecations, an unpublish", async () => {
    const name = "@fixtures/widget";
    const steps: [string, string, string?][] = [
      ["1.0.0", "alice"],
      ["1.0.1", "alice"],
      ["1.1.0", "alice"],
      ["1.1.1", "bob"],
      ["1.2.0", "alice"],
      ["2.0.0-beta.0", "alice", "next"],
      ["2.0.0-beta.1", "alice", "next"],
      ["1.2.1", "alice"],
      ["2.0.0-rc.0", "bob", "next"],
      ["2.0.0", "alice"],
      ["1.2.2", "bob", "legacy"],
      ["2.0.1", "alice"],
      ["2.1.0", "alice"],
      ["1.2.3", "bob", "legacy"],
      ["2.1.1", "alice"],
      ["2.2.0", "alice"],
      ["2.1.2", "bob", "stable-2-1"],
      ["2.2.1", "alice"],
      ["2.3.0", "alice"],
      ["2.3.1", "alice"],
      ["3.0.0-alpha.0", "bob", "alpha"],
      ["2.3.2", "alice"],
    ];
    for (const [version, user, tag] of steps) await publish(name, version, user, tag);
    await editVersions(name, "alice", (versions) => {
      (versions["2.2.0"] as { deprecated?: string }).deprecated = "leaks file handles; use 2.2.1";
      (versions["1.1.1"] as { deprecated?: string }).deprecated = "broken on Windows";
    });
    await editVersions(name, "alice", (versions) => {
      delete versions["2.3.1"];
    });
    const doc = await servedPackument(name);
    await expect(`${JSON.stringify(doc, null, 2)}\n`).toMatchFileSnapshot(`${fixtures}/widget.generated.json`);
    // The CLI draws what the library draws from the same document.
    const cli = JSON.parse(
      (await fwOk(["version", "graph", name, "--json", "--all"], { FW_REGISTRY: fw.url })).stdout,
    ) as D3Graph;
    const graph = buildVersionGraph(doc);
    expect(cli.nodes.map((node) => [node.id, node.status, node.lane]).sort()).toEqual(
      graph.nodes.map((node) => [node.version, node.status, node.lane]).sort(),
    );
  });

  it("many: 150 versions over four majors with pre-releases and maintenance lines", async () => {
    const name = "many-versions";
    const steps: [string, string, string?][] = [];
    for (let minor = 1; minor <= 6; minor++)
      for (let patch = 0; patch <= 4; patch++) steps.push([`0.${minor}.${patch}`, "alice"]);
    for (let rc = 0; rc < 3; rc++) steps.push([`1.0.0-rc.${rc}`, "alice", "next"]);
    for (let minor = 0; minor <= 9; minor++)
      for (let patch = 0; patch <= (minor % 3) * 3 + 2; patch++)
        steps.push([`1.${minor}.${patch}`, patch % 4 ? "bob" : "alice"]);
    for (let beta = 0; beta < 4; beta++) steps.push([`2.0.0-beta.${beta}`, "alice", "next"]);
    steps.push(["2.0.0", "alice"]);
    let maintenance = 9;
    for (let minor = 0; minor <= 3; minor++)
      for (let patch = minor === 0 ? 1 : 0; patch <= 7; patch++) {
        steps.push([`2.${minor}.${patch}`, "alice"]);
        if (patch === 3 && maintenance < 13) steps.push([`1.9.${maintenance++}`, "bob", "v1-lts"]);
        if (minor === 3 && patch === 2) steps.push(["2.2.8", "bob", "stable-2-2"]);
      }
    for (let next = 0; next < 6; next++) steps.push([`3.0.0-next.${next}`, "alice", "next"]);
    expect(steps.length).toBeGreaterThanOrEqual(130);
    for (const [version, user, tag] of steps) await publish(name, version, user, tag);
    await editVersions(name, "alice", (versions) => {
      for (const [version, manifest] of Object.entries(versions))
        if (version.startsWith("0.")) manifest.deprecated = "0.x is no longer supported; upgrade to 2.x";
    });
    const doc = await servedPackument(name);
    expect(Object.keys(doc.versions ?? {}).length).toBe(steps.length);
    await expect(`${JSON.stringify(doc, null, 2)}\n`).toMatchFileSnapshot(`${fixtures}/many-versions.generated.json`);
  });
});
