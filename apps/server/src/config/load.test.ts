import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "@fw/tooling/test";
import { describe, expect, it } from "vitest";
import { ConfigError } from "./errors.js";
import { type LoadConfigOptions, loadConfig, readConfigFile } from "./load.js";

async function failure(options: LoadConfigOptions): Promise<ConfigError> {
  const error = await loadConfig(options).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

const r2 = {
  R2_ACCOUNT_ID: "acct",
  R2_ACCESS_KEY_ID: "AKID",
  R2_SECRET_ACCESS_KEY: "s3cr3t",
  R2_REGISTRY_BUCKET: "npm-registry",
};

describe("loadConfig", () => {
  it("uses the defaults when there is no file, .env.registry or variable", async () => {
    await using dir = await tempDir();
    const loaded = await loadConfig({ cwd: dir.path, env: {} });
    expect(loaded).toEqual({
      config: {
        listen: { host: "127.0.0.1", port: 4873 },
        storage: { driver: "fs", path: join(dir.path, "storage") },
        auth: { signup: true },
        limits: { maxBodySize: 314572800, cacheMemory: 33554432 },
        log: { level: "info", format: "pretty" },
      },
      sources: ["defaults"],
    });
  });

  it("reads ./fw.config.json5 when it exists", async () => {
    await using dir = await tempDir();
    await writeFile(
      join(dir.path, "fw.config.json5"),
      "// comment\n{ listen: { port: 1234, }, storage: { path: 'data' } }",
    );
    const loaded = await loadConfig({ cwd: dir.path, env: {} });
    expect(loaded.file).toBe(join(dir.path, "fw.config.json5"));
    expect(loaded.sources).toEqual(["defaults", join(dir.path, "fw.config.json5")]);
    expect(loaded.config.listen.port).toBe(1234);
    expect(loaded.config.storage).toEqual({ driver: "fs", path: join(dir.path, "data") });
  });

  it("prefers --config over FW_CONFIG over ./fw.config.json5, with paths relative to the file's folder", async () => {
    await using dir = await tempDir();
    await mkdir(join(dir.path, "a"));
    await mkdir(join(dir.path, "b"));
    await writeFile(join(dir.path, "fw.config.json5"), "{ listen: { port: 1 } }");
    await writeFile(join(dir.path, "a", "fw.json5"), "{ listen: { port: 2 } }");
    await writeFile(join(dir.path, "b", "fw.json5"), "{ listen: { port: 3 } }");
    const viaEnv = await loadConfig({ cwd: dir.path, env: { FW_CONFIG: "a/fw.json5" } });
    expect(viaEnv.config.listen.port).toBe(2);
    expect(viaEnv.config.storage).toEqual({ driver: "fs", path: join(dir.path, "a", "storage") });
    const viaFlag = await loadConfig({ cwd: dir.path, file: "b/fw.json5", env: { FW_CONFIG: "a/fw.json5" } });
    expect(viaFlag.config.listen.port).toBe(3);
    expect(viaFlag.file).toBe(join(dir.path, "b", "fw.json5"));
  });

  it("fails when a named file is missing", async () => {
    await using dir = await tempDir();
    expect((await failure({ cwd: dir.path, file: "nope.json5", env: {} })).message).toBe(
      `invalid config: config file ${join(dir.path, "nope.json5")} does not exist (named by --config)`,
    );
    expect((await failure({ cwd: dir.path, env: { FW_CONFIG: "gone.json5" } })).message).toBe(
      `invalid config: config file ${join(dir.path, "gone.json5")} does not exist (named by FW_CONFIG)`,
    );
  });

  it("applies defaults < file < .env.registry < environment < flags", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "fw.config.json5");
    await writeFile(file, "{ listen: { host: '0.0.0.0', port: 1000 }, log: { level: 'warn' } }");
    const at = (env: Record<string, string>, port?: string) =>
      loadConfig({ cwd: dir.path, env, ...(port === undefined ? {} : { overrides: { port } }) });

    expect((await at({})).config.listen).toEqual({ host: "0.0.0.0", port: 1000 });
    await writeFile(join(dir.path, ".env.registry"), "FW_PORT=2000\n# a comment\nFW_LOG_FORMAT=json\n");
    expect((await at({})).config.listen).toEqual({ host: "0.0.0.0", port: 2000 });
    const fromEnv = await at({ FW_PORT: "3000" });
    expect(fromEnv.config.listen.port).toBe(3000);
    expect(fromEnv.config.log).toEqual({ level: "warn", format: "json" });
    const fromFlag = await at({ FW_PORT: "3000" }, "4000");
    expect(fromFlag.config.listen.port).toBe(4000);
    expect(fromFlag.sources).toEqual([
      "defaults",
      file,
      `${join(dir.path, ".env.registry")}: FW_PORT, FW_LOG_FORMAT`,
      "environment: FW_PORT",
      "flags: --port",
    ]);
  });

  it("reads .env.registry without changing process.env", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, ".env.registry"), 'FW_PUBLIC_URL="https://npm.example.com/"\nFW_SIGNUP=off\n');
    const { config } = await loadConfig({ cwd: dir.path, env: {} });
    expect(config.publicUrl).toBe("https://npm.example.com");
    expect(config.auth.signup).toBe(false);
    expect(process.env.FW_PUBLIC_URL).toBeUndefined();
    expect(process.env.FW_SIGNUP).toBeUndefined();
  });

  it("reads every FW_ variable", async () => {
    await using dir = await tempDir();
    const { config, sources } = await loadConfig({
      cwd: dir.path,
      env: {
        FW_HOST: "::",
        FW_PORT: "0",
        FW_PUBLIC_URL: "https://npm.example.com",
        FW_STORAGE_PATH: "data",
        FW_LOG_LEVEL: "debug",
        FW_LOG_FORMAT: "json",
        FW_MAX_BODY_SIZE: "1.5gb",
        FW_CACHE_MEMORY: "32mb",
        FW_SIGNUP: "false",
        FW_UNRELATED: "x",
      },
    });
    expect(config).toEqual({
      listen: { host: "::", port: 0 },
      publicUrl: "https://npm.example.com",
      storage: { driver: "fs", path: join(dir.path, "data") },
      auth: { signup: false },
      limits: { maxBodySize: 1610612736, cacheMemory: 32 * 1024 * 1024 },
      log: { level: "debug", format: "json" },
    });
    expect(sources).toEqual([
      "defaults",
      "environment: FW_HOST, FW_PORT, FW_PUBLIC_URL, FW_LOG_LEVEL, FW_LOG_FORMAT, FW_MAX_BODY_SIZE, FW_CACHE_MEMORY, FW_SIGNUP, FW_STORAGE_PATH",
    ]);
  });

  it("takes every flag", async () => {
    await using dir = await tempDir();
    const { config, sources } = await loadConfig({
      cwd: dir.path,
      env: { FW_SIGNUP: "true" },
      overrides: {
        host: "localhost",
        port: 8080,
        publicUrl: "http://localhost:8080/",
        storagePath: "/tmp/fw-elsewhere",
        logLevel: "error",
        logFormat: "json",
        maxBodySize: "1mb",
        cacheMemory: "16mb",
        signup: "no",
      },
    });
    expect(config).toMatchObject({
      listen: { host: "localhost", port: 8080 },
      publicUrl: "http://localhost:8080",
      storage: { driver: "fs", path: "/tmp/fw-elsewhere" },
      auth: { signup: false },
      limits: { maxBodySize: 1048576, cacheMemory: 16 * 1024 * 1024 },
      log: { level: "error", format: "json" },
    });
    expect(sources.at(-1)).toBe(
      "flags: --host, --port, --public-url, --log-level, --log-format, --max-body-size, --cache-memory, --signup, --storage-path",
    );
  });

  it("treats empty variables as unset", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, ".env.registry"), "FW_PORT=5000\nR2_ACCOUNT_ID=\n");
    const { config } = await loadConfig({ cwd: dir.path, env: { FW_PORT: "", FW_HOST: "" } });
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 5000 });
  });

  it("resolves FW_STORAGE_PATH against the working directory, not the file's folder", async () => {
    await using dir = await tempDir();
    await mkdir(join(dir.path, "etc"));
    await writeFile(join(dir.path, "etc", "fw.json5"), "{ storage: { path: 'from-file' } }");
    const fromFile = await loadConfig({ cwd: dir.path, file: "etc/fw.json5", env: {} });
    expect(fromFile.config.storage).toEqual({ driver: "fs", path: join(dir.path, "etc", "from-file") });
    const fromEnv = await loadConfig({ cwd: dir.path, file: "etc/fw.json5", env: { FW_STORAGE_PATH: "from-env" } });
    expect(fromEnv.config.storage).toEqual({ driver: "fs", path: join(dir.path, "from-env") });
  });

  it("names the variable or flag a bad value came from, and the file only when it is at fault", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "fw.config.json5");
    await writeFile(file, "{ log: { level: 'loud' } }");
    await writeFile(join(dir.path, ".env.registry"), "FW_MAX_BODY_SIZE=lots\n");
    const error = await failure({ cwd: dir.path, env: { FW_SIGNUP: "maybe" }, overrides: { port: "http" } });
    expect(error.issues).toEqual([
      { path: "listen.port", message: "expected an integer from 0 to 65535 (from --port)" },
      { path: "auth.signup", message: "expected true or false (from FW_SIGNUP)" },
      {
        path: "limits.maxBodySize",
        message:
          'expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb" (from FW_MAX_BODY_SIZE in .env.registry)',
      },
      { path: "log.level", message: 'expected "debug", "info", "warn", "error", "silent"' },
    ]);
    expect(error.message).toContain(`invalid config (${file}): listen.port: expected an integer`);

    await writeFile(file, "{}");
    const fromEnvOnly = await failure({ cwd: dir.path, env: {} });
    expect(fromEnvOnly.file).toBeUndefined();
    expect(fromEnvOnly.message).toBe(
      'invalid config: limits.maxBodySize: expected a number of bytes (at least 1) or a size such as "300mb" or "1.5gb" (from FW_MAX_BODY_SIZE in .env.registry)',
    );
  });

  it("rejects unknown keys in the file with their dotted path", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "fw.config.json5");
    await writeFile(file, "{ listen: { prot: 1 } }");
    const error = await failure({ cwd: dir.path, env: {} });
    expect(error.message).toBe(`invalid config (${file}): listen.prot: unknown key; expected one of: host, port`);
  });

  it("reports JSON5 syntax errors with their position", async () => {
    await using dir = await tempDir();
    const file = join(dir.path, "fw.config.json5");
    await writeFile(file, "{\n  listen: { port: 1 }\n  log: {}\n}");
    expect((await failure({ cwd: dir.path, env: {} })).message).toBe(
      `invalid config (${file}): expected JSON5: invalid character 'l' at 3:3`,
    );
    await writeFile(file, "[1, 2]");
    expect((await failure({ cwd: dir.path, env: {} })).message).toBe(
      `invalid config (${file}): expected an object at the top level`,
    );
  });

  describe("R2 variables", () => {
    it("choose R2 storage when all four are set", async () => {
      await using dir = await tempDir();
      const { config, sources } = await loadConfig({ cwd: dir.path, env: r2 });
      expect(config.storage).toEqual({
        driver: "s3",
        bucket: "npm-registry",
        endpoint: "https://acct.r2.cloudflarestorage.com",
        region: "auto",
        accessKeyId: "AKID",
        secretAccessKey: "s3cr3t",
        forcePathStyle: false,
      });
      expect(sources).toEqual([
        "defaults",
        "environment: R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_REGISTRY_BUCKET",
      ]);
    });

    it("may be split between .env.registry and the environment", async () => {
      await using dir = await tempDir();
      await writeFile(
        join(dir.path, ".env.registry"),
        "R2_ACCOUNT_ID=acct\nR2_SECRET_ACCESS_KEY=from-file\nR2_REGISTRY_BUCKET=b\n",
      );
      const { config } = await loadConfig({
        cwd: dir.path,
        env: { R2_ACCESS_KEY_ID: "AKID", R2_SECRET_ACCESS_KEY: "from-env" },
      });
      expect(config.storage).toMatchObject({
        driver: "s3",
        bucket: "b",
        accessKeyId: "AKID",
        secretAccessKey: "from-env",
      });
    });

    it("keep the file's s3 prefix and path style", async () => {
      await using dir = await tempDir();
      await writeFile(
        join(dir.path, "fw.config.json5"),
        "{ storage: { driver: 's3', bucket: 'old', accessKeyId: 'x', secretAccessKey: 'y', prefix: 'team/', forcePathStyle: true } }",
      );
      const { config } = await loadConfig({ cwd: dir.path, env: r2 });
      expect(config.storage).toMatchObject({
        driver: "s3",
        bucket: "npm-registry",
        region: "auto",
        prefix: "team/",
        forcePathStyle: true,
      });
    });

    it("replace the file's fs storage", async () => {
      await using dir = await tempDir();
      await writeFile(join(dir.path, "fw.config.json5"), "{ storage: { path: './data' } }");
      const { config } = await loadConfig({ cwd: dir.path, env: r2 });
      expect(config.storage.driver).toBe("s3");
    });

    it("fail when some but not all are set, naming the missing ones", async () => {
      await using dir = await tempDir();
      await writeFile(join(dir.path, ".env.registry"), "R2_ACCOUNT_ID=acct\n");
      const error = await failure({ cwd: dir.path, env: { R2_SECRET_ACCESS_KEY: "s" } });
      expect(error.issues).toEqual([
        {
          path: "storage",
          message:
            "expected all four R2 variables (R2_ACCOUNT_ID, R2_ACCESS_KEY_ID, R2_SECRET_ACCESS_KEY, R2_REGISTRY_BUCKET): R2_ACCOUNT_ID, R2_SECRET_ACCESS_KEY are set but R2_ACCESS_KEY_ID, R2_REGISTRY_BUCKET are missing",
        },
      ]);
      await writeFile(join(dir.path, ".env.registry"), "");
      const one = await failure({
        cwd: dir.path,
        env: { R2_ACCESS_KEY_ID: "a", R2_SECRET_ACCESS_KEY: "s", R2_REGISTRY_BUCKET: "b" },
      });
      expect(one.message).toContain("are set but R2_ACCOUNT_ID is missing");
    });

    it("conflict with FW_STORAGE_PATH from the same source", async () => {
      await using dir = await tempDir();
      const error = await failure({ cwd: dir.path, env: { ...r2, FW_STORAGE_PATH: "./data" } });
      expect(error.message).toBe(
        "invalid config: storage: expected one storage: FW_STORAGE_PATH asks for a folder and the R2_* variables for R2; unset one",
      );
    });

    it("give way to FW_STORAGE_PATH from a later source and to --storage-path", async () => {
      await using dir = await tempDir();
      await writeFile(
        join(dir.path, ".env.registry"),
        Object.entries(r2)
          .map(([k, v]) => `${k}=${v}`)
          .join("\n"),
      );
      const fromEnv = await loadConfig({ cwd: dir.path, env: { FW_STORAGE_PATH: "data" } });
      expect(fromEnv.config.storage).toEqual({ driver: "fs", path: join(dir.path, "data") });
      const fromFlag = await loadConfig({ cwd: dir.path, env: r2, overrides: { storagePath: "flagged" } });
      expect(fromFlag.config.storage).toEqual({ driver: "fs", path: join(dir.path, "flagged") });
    });

    it("name themselves when the account id makes a bad endpoint", async () => {
      await using dir = await tempDir();
      const error = await failure({ cwd: dir.path, env: { ...r2, R2_ACCOUNT_ID: "a b" } });
      expect(error.issues).toEqual([
        {
          path: "storage.endpoint",
          message:
            "expected an absolute http(s) URL, e.g. https://<account>.r2.cloudflarestorage.com (not a URL) (from R2_*)",
        },
      ]);
    });
  });
});

describe("readConfigFile", () => {
  it("validates one file on its own, ignoring the environment", async () => {
    await using dir = await tempDir();
    await writeFile(join(dir.path, "fw.json5"), "{ listen: { port: 9 } }");
    process.env.FW_HOST = "0.0.0.0";
    try {
      const { config, file } = await readConfigFile("fw.json5", { cwd: dir.path });
      expect(file).toBe(join(dir.path, "fw.json5"));
      expect(config.listen).toEqual({ host: "127.0.0.1", port: 9 });
      expect(config.storage).toEqual({ driver: "fs", path: join(dir.path, "storage") });
    } finally {
      delete process.env.FW_HOST;
    }
  });

  it("names the file in its errors", async () => {
    await using dir = await tempDir();
    const path = join(dir.path, "bad.json5");
    await writeFile(path, "{ storage: { driver: 's3', bucket: '', accessKeyId: 'a', secretAccessKey: 'b' } }");
    await expect(readConfigFile(path)).rejects.toThrow(
      `invalid config (${path}): storage.bucket: expected a non-empty string`,
    );
    await expect(readConfigFile(join(dir.path, "missing.json5"))).rejects.toThrow("does not exist");
  });
});
