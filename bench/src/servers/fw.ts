import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Processes } from "../procs.ts";
import type { RunningServer } from "./types.ts";
import { tail, waitForUrlLine } from "./wait.ts";

const here = dirname(fileURLToPath(import.meta.url));
const serverPackage = join(here, "..", "..", "..", "apps", "server");
const cliEntry = join(here, "..", "..", "..", "apps", "cli", "dist", "fw.js");

/** How fw is started: `fw registry start` as users run it, or the bench's own entry (any server build). */
export type FwLaunch = "cli" | "entry";

export function defaultLaunch(serverModule: string | undefined): FwLaunch {
  return serverModule === undefined && existsSync(cliEntry) ? "cli" : "entry";
}

/** What was benchmarked: the package version and the commit, marked when the work tree differs. */
export function fwVersion(): { label: string; commit: string } {
  const version = (JSON.parse(readFileSync(join(serverPackage, "package.json"), "utf8")) as { version: string })
    .version;
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: serverPackage, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "."], {
      cwd: serverPackage,
      encoding: "utf8",
    }).trim();
    if (dirty) commit += "+changes";
  } catch {
    // not a git checkout
  }
  return { label: `fw ${version} (${commit})`, commit };
}

/** The `bun` package the workspace installs (apps/server's e2e tests run on it too). */
export function bunBinary(): string {
  return join(
    dirname(createRequire(join(serverPackage, "package.json")).resolve("bun/package.json")),
    "bin",
    "bun.exe",
  );
}

function bunVersion(): string {
  return execFileSync(bunBinary(), ["--version"], { encoding: "utf8" }).trim();
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * The benchmark runs the built server (dist/), as users do. A dist older than its sources would
 * measure yesterday's code, so that is an error unless `allowStale`.
 */
export function checkBuild(allowStale: boolean): string | undefined {
  const dist = join(serverPackage, "dist", "node.js");
  if (!existsSync(dist)) {
    throw new Error(`${dist} is missing: build the server first (pnpm turbo run build --filter @fw/server)`);
  }
  const stale = newestMtime(join(serverPackage, "src")) > statSync(dist).mtimeMs;
  const message = "apps/server/src is newer than apps/server/dist: rebuild (pnpm turbo run build --filter @fw/server)";
  if (stale && !allowStale) throw new Error(message);
  return stale ? message : undefined;
}

export async function startFw(
  processes: Processes,
  options: {
    workDir: string;
    cpuProfileDir?: string | undefined;
    maxBodyMB: number;
    serverModule?: string | undefined;
    launch: FwLaunch;
    /** Extra top-level config keys, e.g. `uplinks` and `packages` for a proxy. */
    extraConfig?: Record<string, unknown>;
    /** "bun": run by Bun (which serves with `Bun.serve`) instead of this Node. Default "node". */
    runtime?: "node" | "bun";
    /** Flags for the runtime, before the script (e.g. Bun's `--smol`). */
    runtimeArgs?: string[];
    /** Name of the process in the bench's logs (default "fw", or "fw-bun"). */
    name?: string;
  },
): Promise<RunningServer> {
  const storage = join(options.workDir, "fw-storage");
  mkdirSync(storage, { recursive: true });
  const configFile = join(options.workDir, "fw-config.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      listen: { host: "127.0.0.1", port: 0 },
      storage: { driver: "fs", path: storage },
      auth: { signup: true },
      limits: { maxBodySize: options.maxBodyMB * 1024 * 1024 },
      log: { level: "warn", format: "json" },
      ...options.extraConfig,
    }),
  );
  const bun = options.runtime === "bun";
  // Bun takes the same profiler flags as Node.
  const nodeArgs = [
    ...(options.runtimeArgs ?? []),
    ...(options.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`] : []),
  ];
  const script =
    options.launch === "cli"
      ? [cliEntry, "registry", "start", "--config", configFile, "--json"]
      : [join(here, "fw-entry.ts"), configFile];
  const name = options.name ?? (bun ? "fw-bun" : "fw");
  const child = processes.startServer(name, bun ? bunBinary() : process.execPath, [...nodeArgs, ...script], {
    cwd: options.workDir,
    // fw waits for open connections for up to 30 s before it exits; the CPU profile is written then
    graceMs: 40_000,
    env: {
      ...process.env,
      NODE_ENV: "production",
      ...(options.serverModule !== undefined && { FW_BENCH_SERVER_MODULE: options.serverModule }),
    },
  });
  const logTail = tail(child.stderr);
  const url = await waitForUrlLine(child, 30_000, name, logTail);
  tail(child.stdout);
  const pid = child.pid as number;
  const label = `${options.serverModule ? `fw (${options.serverModule})` : fwVersion().label}${options.launch === "cli" ? ", fw registry start" : ""}${bun ? ` on Bun ${bunVersion()}` : ""}${options.runtimeArgs?.length ? ` ${options.runtimeArgs.join(" ")}` : ""}`;
  return { kind: bun ? "fw-bun" : "fw", label, url, pid, pids: () => [pid], storageDir: storage, logTail };
}
