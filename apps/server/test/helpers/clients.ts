import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** The clients under test. npm and pnpm come from PATH (npm 11, pnpm 12); yarn and bun are dev dependencies. */
export const YARN_JS = require.resolve("@yarnpkg/cli-dist/bin/yarn.js");
export const BUN = join(dirname(require.resolve("bun/package.json")), "bin", "bun.exe");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for "the user saw this" assertions. */
  output: string;
}

export interface RunOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Default 120 s; the process group is killed after it. */
  timeoutMs?: number;
  /** Called with each chunk of output; lets a test react to what the client prints (e.g. a login URL). */
  onOutput?(chunk: string, write: (text: string) => void): void;
  /** Run under a pseudo-terminal (util-linux `script`), for prompts that insist on a TTY. */
  terminal?: boolean;
}

export function run(command: string, args: string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    if (options.terminal) {
      const line = [command, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
      [command, args] = ["script", ["-qefc", line, "/dev/null"]];
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    let stdout = "";
    let stderr = "";
    let output = "";
    const write = (text: string) => child.stdin.write(text);
    const timer = setTimeout(() => {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    }, options.timeoutMs ?? 120_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      output += chunk;
      options.onOutput?.(chunk, write);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      output += chunk;
      options.onOutput?.(chunk, write);
    });
    if (!options.onOutput) child.stdin.end();
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL") output += `\n[killed after ${options.timeoutMs ?? 120_000} ms]`;
      resolve({ code, stdout, stderr, output });
    });
  });
}

/** `//host:port/path/`: the key npm, pnpm and bun use for per-registry settings in .npmrc. */
export function nerfDart(registry: string): string {
  const url = new URL(registry.endsWith("/") ? registry : `${registry}/`);
  return `//${url.host}${url.pathname}`;
}

/**
 * A private HOME, caches and configs for the clients, so nothing leaks between tests or into the
 * machine's own config. Each client is pointed at `registry` only.
 */
export class Sandbox implements AsyncDisposable {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  private token: string | undefined;

  private constructor(
    readonly root: string,
    /** Registry URL without a trailing slash. */
    readonly registry: string,
  ) {
    this.home = join(root, "home");
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      // Variables pnpm/vitest/CI set for the test process would change how the clients behave.
      if (/^(npm_|pnpm_|yarn_|bun_|vitest|node_options$|ci$|node_env$)/i.test(key)) continue;
      env[key] = value;
    }
    Object.assign(env, {
      HOME: this.home,
      XDG_CONFIG_HOME: join(this.home, ".config"),
      XDG_CACHE_HOME: join(this.home, ".cache"),
      XDG_DATA_HOME: join(this.home, ".local/share"),
      XDG_STATE_HOME: join(this.home, ".local/state"),
      npm_config_userconfig: join(this.home, ".npmrc"),
      npm_config_globalconfig: join(root, "global-npmrc"),
      npm_config_cache: join(root, "npm-cache"),
      npm_config_registry: `${registry}/`,
      npm_config_prefer_offline: "false",
      npm_config_audit: "false",
      npm_config_fund: "false",
      npm_config_update_notifier: "false",
      npm_config_color: "false",
      BUN_INSTALL_CACHE_DIR: join(root, "bun-cache"),
      YARN_ENABLE_TELEMETRY: "0",
      YARN_GLOBAL_FOLDER: join(root, "yarn-global"),
      NO_COLOR: "1",
      NO_UPDATE_NOTIFIER: "1",
    });
    this.env = env;
  }

  static async create(registry: string): Promise<Sandbox> {
    const root = await mkdtemp(join(tmpdir(), "fw-e2e-client-"));
    const sandbox = new Sandbox(root, registry.replace(/\/+$/, ""));
    await mkdir(join(sandbox.home, ".config", "pnpm"), { recursive: true });
    await sandbox.writeNpmrc();
    await writeFile(join(sandbox.home, ".config", "pnpm", "config.yaml"), "minimumReleaseAge: 0\n");
    return sandbox;
  }

  get authToken(): string | undefined {
    return this.token;
  }

  /** Logs the clients in with `token` (or out, with undefined), through the user's ~/.npmrc. */
  async setToken(token: string | undefined): Promise<void> {
    this.token = token;
    await this.writeNpmrc();
  }

  private async writeNpmrc(): Promise<void> {
    const lines = [`registry=${this.registry}/`];
    if (this.token) lines.push(`${nerfDart(this.registry)}:_authToken=${this.token}`);
    await writeFile(join(this.home, ".npmrc"), `${lines.join("\n")}\n`);
  }

  /** A new empty folder under the sandbox. */
  async dir(name: string): Promise<string> {
    const path = join(this.root, name);
    await mkdir(path, { recursive: true });
    return path;
  }

  /** A project folder with a package.json depending on `dependencies`. */
  async project(name: string, dependencies: Record<string, string> = {}): Promise<string> {
    const path = await this.dir(name);
    await writeFile(
      join(path, "package.json"),
      `${JSON.stringify({ name, version: "1.0.0", private: true, dependencies }, null, 2)}\n`,
    );
    return path;
  }

  npm(args: string[], cwd: string = this.root, extra: Partial<RunOptions> = {}): Promise<RunResult> {
    return run("npm", args, { cwd, env: this.env, ...extra });
  }

  /** pnpm 12 keeps its store and cache under the sandbox's XDG folders. */
  pnpm(args: string[], cwd: string = this.root): Promise<RunResult> {
    return run("pnpm", args, { cwd, env: this.env });
  }

  /** yarn 4 (berry), configured per project by `writeYarnrc`. */
  yarn(args: string[], cwd: string, extra: Partial<RunOptions> = {}): Promise<RunResult> {
    return run(process.execPath, [YARN_JS, ...args], { cwd, env: this.env, ...extra });
  }

  bun(args: string[], cwd: string, extra: Partial<RunOptions> = {}): Promise<RunResult> {
    return run(BUN, args, { cwd, env: this.env, ...extra });
  }

  /**
   * The environment of a machine that never installed anything: empty npm, yarn and bun caches, so a
   * client has to fetch every document and tarball from the registry (e.g. a CI job with a lockfile).
   */
  async freshCachesEnv(name: string): Promise<NodeJS.ProcessEnv> {
    const root = await this.dir(name);
    return {
      ...this.env,
      npm_config_cache: join(root, "npm-cache"),
      BUN_INSTALL_CACHE_DIR: join(root, "bun-cache"),
      YARN_GLOBAL_FOLDER: join(root, "yarn-global"),
    };
  }

  /**
   * yarn 4's project settings. `npmMinimalAgeGate: 0` because yarn refuses versions younger than a
   * day by default, and every version in these tests is seconds old.
   */
  async writeYarnrc(project: string): Promise<void> {
    const lines = [
      `npmRegistryServer: "${this.registry}"`,
      ...(this.token ? [`npmAuthToken: "${this.token}"`] : []),
      'unsafeHttpWhitelist: ["127.0.0.1"]',
      "enableGlobalCache: false",
      "enableTelemetry: false",
      "enableImmutableInstalls: false",
      "nodeLinker: node-modules",
      "npmMinimalAgeGate: 0",
    ];
    await writeFile(join(project, ".yarnrc.yml"), `${lines.join("\n")}\n`);
    await writeFile(join(project, "yarn.lock"), "");
  }

  /** bun's project settings: the registry and token, as bunfig.toml. */
  async writeBunfig(project: string): Promise<void> {
    const token = this.token ? `, token = "${this.token}"` : "";
    await writeFile(join(project, "bunfig.toml"), `[install]\nregistry = { url = "${this.registry}/"${token} }\n`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}

/** Creates an account with the couch endpoint `npm adduser` uses, and returns its token. */
export async function addUser(
  registry: string,
  name: string,
  password = "correct horse battery",
  email = `${name}@example.com`,
) {
  const response = await fetch(`${registry}/-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      _id: `org.couchdb.user:${name}`,
      name,
      password,
      email,
      type: "user",
      roles: [],
      date: new Date().toISOString(),
    }),
  });
  const body = (await response.json()) as { token?: string; error?: string };
  if (response.status !== 201 || !body.token)
    throw new Error(`adduser ${name} failed: ${response.status} ${JSON.stringify(body)}`);
  return body.token;
}

/** A fresh sandbox logged in as a new user. */
export async function userSandbox(registry: string, name: string): Promise<Sandbox> {
  const sandbox = await Sandbox.create(registry);
  await sandbox.setToken(await addUser(registry, name));
  return sandbox;
}
