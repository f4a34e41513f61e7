import { spawn } from "node:child_process";
import { access, chmod, constants, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { tempDir } from "@fw/tooling/test";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, FW_BIN, type RunResult, requireBuilt, runFw } from "./helpers.js";

beforeAll(requireBuilt);

const VALUE = "npm_Upstre4mT0ken-with spaces-and-ünïcode";
const ROTATED = "npm_R0tatedT0ken-XXXXXXXXXXXXXXXXXXXXXXXX";
const R2_KEY = "R2+s3cr3t/4ccess=K3y";

async function files(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The forms a leaked value could take: as is, base64, base64url (edges trimmed: alignment changes them), hex. */
function encodings(value: string): string[] {
  const bytes = Buffer.from(value);
  return [value, bytes.toString("base64"), bytes.toString("base64url"), bytes.toString("hex")].map((form) =>
    form.length > 24 ? form.slice(4, -4) : form,
  );
}

/** Fails if any value shows up in any file under `dir`, in any of its encodings. */
async function expectNoValueIn(dir: string, values: string[]): Promise<void> {
  for (const file of await files(dir)) {
    const text = (await readFile(file)).toString("utf8");
    for (const value of values) {
      for (const form of encodings(value)) if (text.includes(form)) throw new Error(`a value appears in ${file}`);
    }
  }
}

async function project(extraConfig = "") {
  const dir = await tempDir();
  await writeFile(
    join(dir.path, "fw.config.json5"),
    `{\n  storage: { driver: "fs", path: "./storage" },\n${extraConfig}}\n`,
  );
  // The key file in the project folder, and no keychain: the developer's own is never touched.
  const env = cleanEnv({
    FW_SECRETS_KEY_PROVIDERS: "file",
    FW_SECRETS_KEY_FILE: join(dir.path, "keys", "master.key"),
  });
  const outputs: RunResult[] = [];
  const run = async (args: string[], options: { input?: string; env?: Record<string, string> } = {}) => {
    const result = await runFw(args, {
      cwd: dir.path,
      env: { ...env, ...options.env },
      ...(options.input !== undefined && { input: options.input }),
    });
    outputs.push(result);
    return result;
  };
  const fw = async (args: string[], input?: string) => {
    const result = await run(args, input === undefined ? {} : { input });
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  };
  const json = async (args: string[], input?: string) => JSON.parse(await fw([...args, "--json"], input)) as unknown;
  return { dir, env, run, fw, json, outputs };
}

describe("fw secrets", () => {
  it("keeps a versioned, encrypted history: init, set, get, rotate, versions, list, due, delete", async () => {
    const { dir, fw, json, run, outputs } = await project();
    await using _ = dir;
    expect(await json(["secrets", "init"])).toMatchObject({
      created: true,
      provider: "file",
      where: `key file ${join(dir.path, "keys", "master.key")}`,
      masterKeyId: expect.stringMatching(/^mk_/),
      vaultCreated: true,
    });
    expect(((await readdir(join(dir.path, "keys"))) as string[]).length).toBe(1);
    expect(await fw(["secrets", "init"])).toMatch(
      /^master key mk_\S+ is already in key file .*\nvault ready in fs \.\/storage\n$/,
    );

    expect(await fw(["secrets", "set", "uplinks/public/token", "--rotate-every", "30d"], `${VALUE}\n`)).toBe(
      "set uplinks/public/token v1\n",
    );
    // Only the value, byte for byte, for $(…) and redirects.
    expect(await fw(["secrets", "get", "uplinks/public/token"])).toBe(VALUE);
    expect(await json(["secrets", "rotate", "uplinks/public/token"], ROTATED)).toMatchObject({
      name: "uplinks/public/token",
      version: 2,
      op: "rotate",
      current: true,
    });
    expect(await fw(["secrets", "get", "uplinks/public/token"])).toBe(ROTATED);
    expect(await fw(["secrets", "get", "uplinks/public/token@1"])).toBe(VALUE);
    expect(await json(["secrets", "get", "uplinks/public/token@1"])).toEqual({
      name: "uplinks/public/token",
      version: 1,
      value: VALUE,
    });
    const generated = (await json(["secrets", "rotate", "uplinks/public/token", "--generate", "48"])) as {
      version: number;
      generated: boolean;
    };
    expect(generated).toMatchObject({ version: 3, generated: true });
    expect(await fw(["secrets", "get", "uplinks/public/token"])).toMatch(/^[A-Za-z0-9_-]{64}$/);

    const graph = await fw(["secrets", "versions", "uplinks/public/token"]);
    expect(graph.split("\n")[0]).toMatch(
      /^uplinks\/public\/token: 3 versions, current v3, rotate every 30d \(due \d{4}-\d\d-\d\d\)$/,
    );
    expect(graph).toMatch(/^\* v3 {2}current {2}\S+ \S+ {2}rotate by \S+/m);
    expect(graph).toMatch(/^o v1 {11}\S+ \S+ {2}set by \S+/m);
    expect(
      ((await json(["secrets", "versions", "uplinks/public/token"])) as Array<{ version: number }>).map(
        (v) => v.version,
      ),
    ).toEqual([1, 2, 3]);

    await fw(["secrets", "set", "storage/r2-secret-key"], `${R2_KEY}\n`);
    expect(((await json(["secrets", "list"])) as Array<{ name: string }>).map((s) => s.name)).toEqual([
      "storage/r2-secret-key",
      "uplinks/public/token",
    ]);
    expect(await fw(["secrets", "list", "--prefix", "uplinks/"])).toMatch(
      /^uplinks\/public\/token {2}v3 {5}updated \S+ {2}rotate every 30d\n$/,
    );
    expect(await json(["secrets", "due"])).toEqual([]);
    expect(await json(["secrets", "due", "--within", "31"])).toEqual([
      expect.objectContaining({ name: "uplinks/public/token", rotateEvery: "30d", schedule: "secret", overdue: false }),
    ]);

    expect(await fw(["secrets", "delete", "uplinks/public/token"])).toBe(
      "deleted uplinks/public/token (marker v4; history kept, `fw secrets set` brings it back)\n",
    );
    const gone = await run(["secrets", "get", "uplinks/public/token"]);
    expect([gone.code, gone.stdout, gone.stderr]).toEqual([
      1,
      "",
      "fw: secret uplinks/public/token was deleted (v4); its history is kept: fw secrets versions uplinks/public/token\n",
    ]);
    expect(await fw(["secrets", "get", "uplinks/public/token@2"])).toBe(ROTATED);
    expect(await json(["secrets", "list"])).toEqual([expect.objectContaining({ name: "storage/r2-secret-key" })]);

    const refused = await run(["secrets", "delete", "storage/r2-secret-key", "--purge"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      "fw: --purge destroys every version of storage/r2-secret-key: add --yes to do it from a script\n",
    );
    expect(await json(["secrets", "delete", "storage/r2-secret-key", "--purge", "--yes"])).toEqual({
      name: "storage/r2-secret-key",
      purged: true,
      removed: 2,
    });

    // Every read and write is in the registry's audit trail, with versions and without values.
    const events = (await json(["registry", "audit", "--action", "secret"])) as Array<{
      action: string;
      version?: string;
    }>;
    expect(events.map((e) => `${e.action}${e.version ? ` v${e.version}` : ""}`)).toEqual([
      "secret.set v1",
      "secret.read v1",
      "secret.rotate v2",
      "secret.read v2",
      "secret.read v1",
      "secret.read v1",
      "secret.rotate v3",
      "secret.read v3",
      "secret.set v1",
      "secret.delete v4",
      "secret.read v2",
      "secret.purge",
    ]);
    await expectNoValueIn(join(dir.path, "storage"), [VALUE, ROTATED, R2_KEY]);
    for (const result of outputs) for (const value of [VALUE, ROTATED]) expect(result.stderr).not.toContain(value);
  });

  it("rotates the master key and re-wraps the data keys, leaving the values readable", async () => {
    const { dir, fw, json, env } = await project();
    await using _ = dir;
    await fw(["secrets", "init"]);
    await fw(["secrets", "set", "a"], VALUE);
    await fw(["secrets", "rotate", "a"], ROTATED);
    const before = await readFile(env.FW_SECRETS_KEY_FILE as string, "utf8");
    const rotation = (await json(["secrets", "rotate-master"])) as { from: string; to: string; rewrapped: number };
    expect(rotation).toMatchObject({ rewrapped: 2 });
    expect(rotation.to).not.toBe(rotation.from);
    expect(await readFile(env.FW_SECRETS_KEY_FILE as string, "utf8")).not.toBe(before);
    expect(await fw(["secrets", "get", "a@1"])).toBe(VALUE);
    expect(await fw(["secrets", "get", "a"])).toBe(ROTATED);
  });

  it("takes the master key from FW_SECRETS_MASTER_KEY, and says clearly when it is the wrong one", async () => {
    const { dir, run, fw } = await project();
    await using _ = dir;
    const printed = await fw(["secrets", "init", "--provider", "env"]);
    const match = /^FW_SECRETS_MASTER_KEY=(fwmk1:[A-Za-z0-9_-]{43})\n$/.exec(printed);
    expect(match).not.toBeNull();
    const useEnv = { FW_SECRETS_KEY_PROVIDERS: "env", FW_SECRETS_MASTER_KEY: match?.[1] as string };
    expect((await run(["secrets", "set", "ci/token"], { input: VALUE, env: useEnv })).code).toBe(0);
    expect((await run(["secrets", "get", "ci/token"], { env: useEnv })).stdout).toBe(VALUE);

    const other = /=(\S+)/.exec(await fw(["secrets", "init", "--provider", "env"]))?.[1] as string;
    const wrong = await run(["secrets", "get", "ci/token", "--json"], {
      env: { ...useEnv, FW_SECRETS_MASTER_KEY: other },
    });
    expect(wrong.code).toBe(1);
    const error = (JSON.parse(wrong.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe("E_WRONG_MASTER_KEY");
    expect(error.message).toMatch(
      /^ci\/token v1 is encrypted under master key mk_\S+, but FW_SECRETS_MASTER_KEY holds mk_\S+: load the vault's master key$/,
    );
    expect(wrong.stdout + wrong.stderr).not.toContain(VALUE);

    const none = await run(["secrets", "get", "ci/token"], { env: { FW_SECRETS_KEY_PROVIDERS: "env" } });
    expect(none.stderr).toBe(
      "fw: no master key: FW_SECRETS_MASTER_KEY has none. Run `fw secrets init` to create one, or set FW_SECRETS_MASTER_KEY\n",
    );
  });

  it("refuses a vault in the storage whose credentials are secrets, and keeps those in --vault", async () => {
    const { dir, run, fw } = await project();
    await using _ = dir;
    await writeFile(
      join(dir.path, "fw.config.json5"),
      `{ storage: { driver: "s3", bucket: "npm", endpoint: "http://127.0.0.1:9", region: "auto",
         accessKeyId: "id", secretAccessKey: "secret:storage/r2-secret-key" } }\n`,
    );
    const refused = await run(["secrets", "list"]);
    expect(refused.stderr).toBe(
      "fw: storage.secretAccessKey in the config refers to secrets, and the vault would live in that same storage: keep those secrets in a vault folder of their own with --vault <dir>\n",
    );
    await fw(["secrets", "init", "--vault", "vault"]);
    await fw(["secrets", "set", "storage/r2-secret-key", "--vault", "vault"], `${R2_KEY}\n`);
    expect(await fw(["secrets", "get", "storage/r2-secret-key", "--vault", "vault"])).toBe(R2_KEY);
    await expectNoValueIn(join(dir.path, "vault"), [R2_KEY]);
  });

  it("asks for the value on a terminal without echoing it", async () => {
    const { dir, env, fw } = await project();
    await using _ = dir;
    await fw(["secrets", "init"]);
    // script(1) gives the command a real terminal; what it prints is everything the terminal showed.
    const quoted = [process.execPath, FW_BIN, "secrets", "set", "typed/secret"].map((a) => `'${a}'`).join(" ");
    const child = spawn("script", ["-qec", quoted, "/dev/null"], {
      cwd: dir.path,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let shown = "";
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        shown += chunk;
        if (shown.includes("value for typed/secret: ")) resolve();
      });
      child.once("exit", () => reject(new Error(`exited before asking; it showed: ${shown}`)));
    });
    child.stdin.write(`${VALUE}\r`);
    expect(await exited).toBe(0);
    child.stdin.end();
    expect(shown).toContain("set typed/secret v1");
    expect(shown).not.toContain(VALUE);
    expect(await fw(["secrets", "get", "typed/secret"])).toBe(VALUE);
  });
});

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

const keyringTools = ["dbus-run-session", "gnome-keyring-daemon"];
const keyringMissing =
  process.platform === "linux" ? (await Promise.all(keyringTools.map(onPath))).includes(false) : true;

// CI installs the Secret Service (tooling/scripts/test-deps.sh): there a missing one fails this test.
describe.skipIf(keyringMissing && !process.env.CI)("fw secrets with the OS keychain (Secret Service)", () => {
  it("creates the master key in the keychain and uses it from later processes", async () => {
    const { dir, env } = await project();
    await using _ = dir;
    // Each command in its own D-Bus session with GNOME Keyring unlocked, sharing one keyring folder.
    const wrapper = join(dir.path, "fw-in-session");
    await writeFile(
      wrapper,
      `#!/bin/sh\nexec dbus-run-session -- sh -c 'printf %s fw-test | gnome-keyring-daemon --unlock --components=secrets >/dev/null && exec "$0" "$@"' '${process.execPath}' '${FW_BIN}' "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    await mkdir(join(dir.path, "run"), { mode: 0o700 });
    const sessionEnv = {
      ...env,
      FW_SECRETS_KEY_PROVIDERS: "keychain,env,file",
      FW_SECRETS_KEYCHAIN_SERVICE: "fw-secrets-cli-test",
      HOME: dir.path,
      XDG_DATA_HOME: join(dir.path, "data"),
      XDG_RUNTIME_DIR: join(dir.path, "run"),
    };
    const fw = async (args: string[], input?: string) => {
      const result = await runFw(args, {
        cwd: dir.path,
        env: sessionEnv,
        bin: wrapper,
        ...(input !== undefined && { input }),
      });
      expect(result.code, result.stderr).toBe(0);
      return result.stdout;
    };
    expect(await fw(["secrets", "init"])).toMatch(
      /^created master key mk_\S+ in the OS keychain \(Secret Service, service "fw-secrets-cli-test"\)\nvault initialised in fs \.\/storage\n$/,
    );
    await fw(["secrets", "set", "uplinks/public/token"], VALUE);
    expect(await fw(["secrets", "get", "uplinks/public/token"])).toBe(VALUE);
    expect(await fw(["secrets", "init"])).toMatch(/^master key mk_\S+ is already in the OS keychain/);
    // Nothing fell back to the key file.
    await expect(readdir(join(dir.path, "keys"))).rejects.toMatchObject({ code: "ENOENT" });
    await expectNoValueIn(join(dir.path, "storage"), [VALUE]);
  });
});
