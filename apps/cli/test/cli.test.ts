import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "@fw/tooling/test";
import JSON5 from "json5";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, requireBuilt, runFw, startFw } from "./helpers.js";

const { version } = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};
const fakeUpstream = "https://registry.example.org/npm/";

beforeAll(requireBuilt);

/** The one line a failure prints: `fw: …`, nothing on stdout. */
function expectOneLineError(result: { code: number | null; stdout: string; stderr: string }, text: string): void {
  expect(result.code).toBe(1);
  expect(result.stdout).toBe("");
  expect(result.stderr.endsWith("\n")).toBe(true);
  expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
  expect(result.stderr).toMatch(/^fw: /);
  expect(result.stderr).toContain(text);
}

describe("fw", () => {
  it("prints help listing every command", async () => {
    await using dir = await tempDir();
    const result = await runFw(["--help"], { cwd: dir.path });
    expect(result.code).toBe(0);
    for (const command of [
      "registry start",
      "registry config",
      "registry config init",
      "registry config load",
      "registry config save",
    ]) {
      expect(result.stdout).toContain(command);
    }
    const start = await runFw(["registry", "start", "--help"], { cwd: dir.path });
    expect(start.code).toBe(0);
    expect(start.stdout).toContain("--port <port>");
    expect(start.stdout).toContain("--config <file>");
  });

  it("prints its version", async () => {
    await using dir = await tempDir();
    const result = await runFw(["--version"], { cwd: dir.path });
    expect(result).toMatchObject({ code: 0, stdout: `${version}\n` });
  });

  it("rejects an unknown command, an incomplete one and an unknown option with one line", async () => {
    await using dir = await tempDir();
    expectOneLineError(await runFw(["nope"], { cwd: dir.path }), 'unknown command "nope"');
    expectOneLineError(await runFw(["registry"], { cwd: dir.path }), '"fw registry" needs a command: start, config');
    expectOneLineError(
      await runFw(["registry", "config", "lod"], { cwd: dir.path }),
      'unknown command "registry config lod"',
    );
    expectOneLineError(await runFw(["registry", "config", "--bogus"], { cwd: dir.path }), "--bogus");
  });

  it("reports errors as JSON with --json", async () => {
    await using dir = await tempDir();
    const result = await runFw(["registry", "config", "--json", "--config", "missing.json5"], { cwd: dir.path });
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      error: {
        code: "E_CONFIG",
        message: `invalid config: config file ${join(dir.path, "missing.json5")} does not exist (named by --config)`,
        issues: [
          { path: "", message: `config file ${join(dir.path, "missing.json5")} does not exist (named by --config)` },
        ],
      },
    });
  });

  it("prints a stack with --debug", async () => {
    await using dir = await tempDir();
    const result = await runFw(["registry", "config", "--debug", "--port", "x"], { cwd: dir.path });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^fw: invalid config: listen\.port: expected an integer from 0 to 65535 \(from --port\)\n/,
    );
    expect(result.stderr).toContain("    at ");
  });
});

describe("fw registry config", () => {
  it("init writes a template that load accepts, and refuses to overwrite it without --force", async () => {
    await using dir = await tempDir();
    const env = cleanEnv({ npm_config_registry: fakeUpstream });
    const init = await runFw(["registry", "config", "init"], { cwd: dir.path, env });
    expect(init).toMatchObject({ code: 0, stdout: "wrote ./fw.config.json5\n" });
    const text = await readFile(join(dir.path, "fw.config.json5"), "utf8");
    expect(text).toContain(`url: "${fakeUpstream}",`);

    const load = await runFw(["registry", "config", "load", "fw.config.json5", "--json"], { cwd: dir.path });
    expect(load.code).toBe(0);
    expect(JSON.parse(load.stdout)).toEqual({
      file: join(dir.path, "fw.config.json5"),
      config: {
        listen: { host: "127.0.0.1", port: 4873 },
        storage: { driver: "fs", path: join(dir.path, "storage") },
        auth: { signup: true },
        limits: { maxBodySize: 314572800, cacheMemory: 33554432 },
        log: { level: "info", format: "pretty" },
        access: { packages: { "**": { access: ["$all"], publish: ["$authenticated"] } } },
        uplinks: {
          public: {
            url: fakeUpstream.replace(/\/$/, ""),
            timeouts: { responseMs: 10000, idleMs: 10000, totalMs: 120000 },
            retries: 2,
            maxAgeMs: 120000,
            circuit: { failures: 3, cooldownMs: 10000 },
            takedowns: "remove",
            audit: true,
            search: true,
          },
        },
        proxy: { "**": ["public"] },
      },
    });
    const loadDefault = await runFw(["registry", "config", "load"], { cwd: dir.path });
    expect(loadDefault.code).toBe(0);
    expect(JSON5.parse<{ listen: { port: number } }>(loadDefault.stdout).listen.port).toBe(4873);

    await writeFile(join(dir.path, "fw.config.json5"), "{ listen: { port: 1 } }");
    expectOneLineError(
      await runFw(["registry", "config", "init"], { cwd: dir.path, env }),
      "./fw.config.json5 already exists; pass --force to overwrite it",
    );
    expect(await readFile(join(dir.path, "fw.config.json5"), "utf8")).toBe("{ listen: { port: 1 } }");
    const forced = await runFw(["registry", "config", "init", "--force", "--json"], { cwd: dir.path, env });
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({
      file: join(dir.path, "fw.config.json5"),
      upstreamRegistry: fakeUpstream,
    });
  });

  it("init leaves the upstream out when npm does not give a URL, and writes where --config says", async () => {
    await using dir = await tempDir();
    const env = cleanEnv({ npm_config_registry: "not a url" });
    const init = await runFw(["registry", "config", "init", "--config", "etc/fw.json5"], { cwd: dir.path, env });
    expect(init).toMatchObject({ code: 0, stdout: "wrote ./etc/fw.json5\n" });
    const text = await readFile(join(dir.path, "etc", "fw.json5"), "utf8");
    expect(text).toContain("fw serves only the packages published to it");
    expect(text).not.toMatch(/^ {2}uplinks:/m);
  });

  it("load rejects a bad config with one line naming the dotted path", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, "bad.json5"),
      "{ storage: { driver: 's3', bucket: '', accessKeyId: 'a', secretAccessKey: 'b' } }",
    );
    expectOneLineError(
      await runFw(["registry", "config", "load", "bad.json5"], { cwd: dir.path }),
      `fw: invalid config (${join(dir.path, "bad.json5")}): storage.bucket: expected a non-empty string`,
    );
    await writeFile(join(dir.path, "typo.json5"), "{ listen: { prot: 80 } }");
    expectOneLineError(
      await runFw(["registry", "config", "load", "typo.json5"], { cwd: dir.path }),
      "listen.prot: unknown key; expected one of: host, port",
    );
    const json = await runFw(["registry", "config", "load", "bad.json5", "--json"], { cwd: dir.path });
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).error.issues).toEqual([
      { path: "storage.bucket", message: "expected a non-empty string" },
    ]);
    expectOneLineError(await runFw(["registry", "config", "load"], { cwd: dir.path }), "no config file");
  });

  it("shows the effective config with its sources and never a secret", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, ".env.registry"),
      "R2_SECRET_ACCESS_KEY=very-secret-value\nR2_ACCESS_KEY_ID=key-id-value\n",
    );
    const env = cleanEnv({ FW_PORT: "5000", R2_ACCOUNT_ID: "acct", R2_REGISTRY_BUCKET: "npm" });
    const pretty = await runFw(["registry", "config", "--host", "0.0.0.0"], { cwd: dir.path, env });
    expect(pretty.code).toBe(0);
    expect(pretty.stdout).not.toContain("very-secret-value");
    expect(pretty.stdout).not.toContain("key-id-value");
    expect(pretty.stdout).toContain("//   flags: --host");
    const shown = JSON5.parse<{ listen: unknown; storage: unknown }>(pretty.stdout);
    expect(shown.listen).toEqual({ host: "0.0.0.0", port: 5000 });

    const json = await runFw(["registry", "config", "--json"], { cwd: dir.path, env });
    expect(json.stdout).not.toContain("very-secret-value");
    expect(JSON.parse(json.stdout)).toEqual({
      config: {
        listen: { host: "127.0.0.1", port: 5000 },
        storage: {
          driver: "s3",
          bucket: "npm",
          endpoint: "https://acct.r2.cloudflarestorage.com",
          region: "auto",
          accessKeyId: "***",
          secretAccessKey: "***",
          forcePathStyle: false,
        },
        auth: { signup: true },
        limits: { maxBodySize: 314572800, cacheMemory: 33554432 },
        log: { level: "info", format: "pretty" },
      },
      file: null,
      sources: [
        "defaults",
        `${join(dir.path, ".env.registry")}: R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY`,
        "environment: FW_PORT, R2_ACCOUNT_ID, R2_REGISTRY_BUCKET",
      ],
    });
  });

  it("save writes the effective config, which reads back the same", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, "fw.config.json5"),
      "// my comments\n{ log: { level: 'warn' }, limits: { maxBodySize: '1.5gb' } }",
    );
    const env = cleanEnv({ FW_PORT: "6000" });
    const save = await runFw(["registry", "config", "save", "--out", "saved.json5", "--storage-path", "data"], {
      cwd: dir.path,
      env,
    });
    expect(save).toMatchObject({ code: 0, stdout: "wrote ./saved.json5\n" });
    const saved = JSON5.parse<unknown>(await readFile(join(dir.path, "saved.json5"), "utf8"));
    expect(saved).toEqual({
      listen: { host: "127.0.0.1", port: 6000 },
      storage: { driver: "fs", path: "./data" },
      auth: { signup: true },
      limits: { maxBodySize: "1.5gb", cacheMemory: "32mb" },
      log: { level: "warn", format: "pretty" },
    });
    const reread = await runFw(["registry", "config", "load", "saved.json5", "--json"], { cwd: dir.path });
    expect(JSON.parse(reread.stdout).config.storage).toEqual({ driver: "fs", path: join(dir.path, "data") });

    // Without --out it replaces the config file it read.
    const inPlace = await runFw(["registry", "config", "save", "--port", "7000"], { cwd: dir.path, env: cleanEnv() });
    expect(inPlace).toMatchObject({ code: 0, stdout: "wrote ./fw.config.json5\n" });
    expect(
      JSON5.parse<{ listen: { port: number } }>(await readFile(join(dir.path, "fw.config.json5"), "utf8")).listen.port,
    ).toBe(7000);
  });

  it("save writes a config holding a credential (an uplink's token) readable by its owner only", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, "fw.config.json5"),
      "{ uplinks: { up: { url: 'http://127.0.0.1:9/', auth: { token: 'literal-token' } } } }",
    );
    const save = await runFw(["registry", "config", "save", "--out", "saved.json5"], {
      cwd: dir.path,
      env: cleanEnv(),
    });
    expect(save).toMatchObject({ code: 0 });
    expect((await stat(join(dir.path, "saved.json5"))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir.path, "saved.json5"), "utf8")).toContain("literal-token");
  });
});

describe("fw registry start", () => {
  it("listens on a free port with --port 0, answers /-/ping and stops on SIGTERM with exit 0", async () => {
    await using dir = await tempDir();
    const running = await startFw(["registry", "start", "--port", "0"], { cwd: dir.path });
    expect(running.line).toMatch(/^fw registry listening on http:\/\/127\.0\.0\.1:\d+ \(storage: fs \.\/storage\)$/);
    expect(running.url).not.toMatch(/:0$/);
    expect(running.url).not.toMatch(/:4873$/);
    const ping = await fetch(`${running.url}/-/ping`);
    expect(ping.status).toBe(200);
    const stopped = await running.stop();
    expect(stopped).toMatchObject({ code: 0, signal: null });
  });

  it("runs with glibc's malloc arenas limited to 2 and its mmap threshold fixed, unless set, in the same process", async () => {
    await using dir = await tempDir();
    const malloc = async (env: Record<string, string>) => {
      await using running = await startFw(["registry", "start", "--port", "0"], { cwd: dir.path, env });
      expect((await fetch(`${running.url}/-/ping`)).status).toBe(200);
      const environ = (await readFile(`/proc/${running.pid}/environ`, "utf8")).split("\0");
      return environ.filter((entry) => /^(MALLOC_ARENA_MAX|MALLOC_MMAP_THRESHOLD_)=/.test(entry)).sort();
    };
    const { MALLOC_ARENA_MAX: _, MALLOC_MMAP_THRESHOLD_: __, ...inherited } = cleanEnv();
    // Replacing itself needs process.execve (Node 22.15+, 23.11+); without it fw runs as it was started.
    const execve = typeof process.execve === "function";
    expect(await malloc(inherited)).toEqual(execve ? ["MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"] : []);
    // Each is the operator's when set; the other is still set.
    expect(await malloc({ ...inherited, MALLOC_ARENA_MAX: "8" })).toEqual(
      execve ? ["MALLOC_ARENA_MAX=8", "MALLOC_MMAP_THRESHOLD_=131072"] : ["MALLOC_ARENA_MAX=8"],
    );
    expect(await malloc({ ...inherited, MALLOC_ARENA_MAX: "8", MALLOC_MMAP_THRESHOLD_: "65536" })).toEqual([
      "MALLOC_ARENA_MAX=8",
      "MALLOC_MMAP_THRESHOLD_=65536",
    ]);
  });

  it("on Bun, runs with JavaScriptCore told of 128 MiB of RAM unless BUN_JSC_forceRAMSize is set, in the same process", async () => {
    await using dir = await tempDir();
    const ramSize = async (env: Record<string, string>) => {
      await using running = await startFw(["registry", "start", "--port", "0"], { cwd: dir.path, env, bun: true });
      expect((await fetch(`${running.url}/-/ping`)).status).toBe(200);
      const environ = (await readFile(`/proc/${running.pid}/environ`, "utf8")).split("\0");
      return environ.filter((entry) => /^(BUN_JSC_forceRAMSize|MALLOC_ARENA_MAX)=/.test(entry));
    };
    const { BUN_JSC_forceRAMSize: _, MALLOC_ARENA_MAX: __, ...inherited } = cleanEnv();
    expect(await ramSize(inherited)).toEqual(["BUN_JSC_forceRAMSize=134217728"]);
    expect(await ramSize({ ...inherited, BUN_JSC_forceRAMSize: "1073741824" })).toEqual([
      "BUN_JSC_forceRAMSize=1073741824",
    ]);
  });

  it("prints its address as JSON with --json and takes its settings from the config file", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, "fw.json5"),
      "{ listen: { port: 0 }, storage: { path: 'pkgs' }, log: { level: 'silent' } }",
    );
    await using running = await startFw(["registry", "start", "--config", "fw.json5", "--json"], { cwd: dir.path });
    const printed = JSON.parse(running.line) as { url: string; storage: unknown };
    expect(printed.storage).toEqual({ driver: "fs", path: join(dir.path, "pkgs") });
    expect((await fetch(`${printed.url}/-/ping`)).status).toBe(200);
  });

  it("refuses to start on a bad config, naming the dotted path and the flag", async () => {
    await using dir = await tempDir();
    expectOneLineError(
      await runFw(["registry", "start", "--port", "http"], { cwd: dir.path }),
      "fw: invalid config: listen.port: expected an integer from 0 to 65535 (from --port)",
    );
    await writeFile(join(dir.path, "fw.config.json5"), "{ storage: { driver: 'gcs' } }");
    expectOneLineError(
      await runFw(["registry", "start"], { cwd: dir.path }),
      `fw: invalid config (${join(dir.path, "fw.config.json5")}): storage.driver: expected "fs" or "s3"`,
    );
  });

  it("fails with one line when the port is taken", async () => {
    await using dir = await tempDir();
    await using first = await startFw(["registry", "start", "--port", "0"], { cwd: dir.path });
    const port = new URL(first.url).port;
    const second = await runFw(["registry", "start", "--port", port], { cwd: dir.path });
    expect(second.code).toBe(1);
    expect(second.stdout).toBe("");
    // The registry may log on stderr too; fw's own report is the one `fw:` line.
    expect(second.stderr.split("\n").filter((line) => line.startsWith("fw: "))).toEqual([
      `fw: listen EADDRINUSE: address already in use 127.0.0.1:${port}`,
    ]);
  });
});
