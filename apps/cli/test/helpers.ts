import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The built bin, run as a user would. */
export const FW_BIN = fileURLToPath(new URL("../dist/fw.js", import.meta.url));

/** The Bun binary of the `bun` dev dependency, for running the built bin under Bun. */
export const BUN = join(dirname(createRequire(import.meta.url).resolve("bun/package.json")), "bin", "bun.exe");

export function requireBuilt(): void {
  if (!existsSync(FW_BIN))
    throw new Error(`${FW_BIN} is missing: run \`pnpm build\` (or \`pnpm --filter @fw/cli... build\`) first`);
}

/** This process's environment without fw's own variables, so the developer's shell cannot change results. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(FW_|R2_)/.test(name)) env[name] = value;
  }
  return { ...env, ...extra };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  return { stdout: () => stdout, stderr: () => stderr };
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

export interface RunOptions {
  cwd: string;
  env?: Record<string, string>;
  /** An installed `fw` executable instead of `node dist/fw.js`. */
  bin?: string;
  /** Run `dist/fw.js` with Bun instead of this Node. */
  bun?: boolean;
  /** Written to stdin, which is then closed; without it stdin is ignored. */
  input?: string;
}

function spawnFw(args: readonly string[], options: RunOptions): ChildProcess {
  const [command, argv] = options.bin
    ? [options.bin, [...args]]
    : [options.bun ? BUN : process.execPath, [FW_BIN, ...args]];
  const child = spawn(command, argv, {
    cwd: options.cwd,
    env: options.env ?? cleanEnv(),
    stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  return child;
}

/** Runs `fw args…` to completion. */
export async function runFw(args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = spawnFw(args, options);
  const output = collect(child);
  const { code, signal } = await exited(child);
  return { code, signal, stdout: output.stdout(), stderr: output.stderr() };
}

export interface RunningFw {
  /** The line printed once listening. */
  line: string;
  url: string;
  pid: number;
  /** Sends SIGTERM and waits for the exit. */
  stop(): Promise<RunResult>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `fw registry start …` and resolves once it prints where it listens (or fails if it exits first). */
export async function startFw(args: readonly string[], options: RunOptions, timeoutMs = 60_000): Promise<RunningFw> {
  const child = spawnFw(args, options);
  const output = collect(child);
  const done = exited(child);
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`fw did not print its address in ${timeoutMs} ms; stderr: ${output.stderr()}`)),
      timeoutMs,
    );
    const check = () => {
      const found = output.stdout().split("\n").slice(0, -1)[0];
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    child.stdout?.on("data", check);
    void done.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(
          `fw exited (${code ?? signal}) before listening; stdout: ${output.stdout()} stderr: ${output.stderr()}`,
        ),
      );
    });
  });
  const url = line.match(/https?:\/\/\S+?(?=[\s"]|$)/)?.[0] ?? "";
  const stop = async (): Promise<RunResult> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const { code, signal } = await done;
    return { code, signal, stdout: output.stdout(), stderr: output.stderr() };
  };
  return {
    line,
    url,
    pid: child.pid as number,
    stop,
    async [Symbol.asyncDispose]() {
      await stop();
    },
  };
}
