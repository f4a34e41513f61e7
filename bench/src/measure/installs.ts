import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tarballPath } from "../corpus.ts";
import { cleanEnv, type Processes, runCommand } from "../procs.ts";

export interface InstallRun {
  seconds: number;
  ok: boolean;
  installed: number | null;
  error?: string;
}

export type Installer = "npm" | "pnpm";

interface LockPackage {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  inBundle?: boolean;
}

/**
 * The corpus lockfile with every registry `resolved` pointing at the registry under test. With a
 * complete lockfile `npm ci` then fetches only tarballs, from exactly these URLs.
 */
export function rewriteNpmLock(lock: { packages?: Record<string, LockPackage> }, registry: string): unknown {
  const copy = structuredClone(lock);
  for (const [key, entry] of Object.entries(copy.packages ?? {})) {
    if (!key || entry.link || entry.inBundle || !entry.version || !entry.integrity) continue;
    if (entry.resolved && !/^https?:\/\//.test(entry.resolved)) continue;
    const name = entry.name ?? key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    entry.resolved = registry.replace(/\/$/, "") + tarballPath(name, entry.version);
  }
  return copy;
}

function installedCount(project: string, installer: Installer): number | null {
  try {
    if (installer === "npm") {
      const hidden = JSON.parse(readFileSync(join(project, "node_modules", ".package-lock.json"), "utf8")) as {
        packages: Record<string, unknown>;
      };
      return Object.keys(hidden.packages).filter(Boolean).length;
    }
    return readdirSync(join(project, "node_modules", ".pnpm")).filter((d) => d.includes("@") && d !== "node_modules")
      .length;
  } catch {
    return null;
  }
}

/**
 * One cold install in a fresh folder: empty cache, empty store, and a HOME of its own so no user-level
 * config or cache can help. The registry and its token come from the project's .npmrc, as in CI.
 */
export async function coldInstall(
  processes: Processes,
  installer: Installer,
  options: {
    registry: string;
    token?: string | undefined;
    corpusDir: string;
    tmpDir: string;
    timeoutMs: number;
    pnpmBin: string;
  },
): Promise<InstallRun> {
  const dir = mkdtempSync(join(options.tmpDir, `${installer}-`));
  try {
    const project = join(dir, "project");
    const home = join(dir, "home");
    for (const d of [project, home]) mkdirSync(d, { recursive: true });
    copyFileSync(join(options.corpusDir, "package.json"), join(project, "package.json"));
    const registry = `${options.registry.replace(/\/$/, "")}/`;
    const host = new URL(registry);
    const npmrc = [`registry=${registry}`, "update-notifier=false", "fund=false", "audit=false"];
    if (options.token) npmrc.push(`//${host.host}${host.pathname}:_authToken=${options.token}`);
    writeFileSync(join(project, ".npmrc"), `${npmrc.join("\n")}\n`);
    const env = cleanEnv({
      HOME: home,
      XDG_CONFIG_HOME: join(home, ".config"),
      XDG_CACHE_HOME: join(home, ".cache"),
      XDG_DATA_HOME: join(home, ".local", "share"),
      XDG_STATE_HOME: join(home, ".local", "state"),
      CI: "true",
    });
    let command: string;
    let args: string[];
    if (installer === "npm") {
      const lock = JSON.parse(readFileSync(join(options.corpusDir, "package-lock.json"), "utf8"));
      writeFileSync(
        join(project, "package-lock.json"),
        JSON.stringify(rewriteNpmLock(lock, options.registry), null, 2),
      );
      command = "npm";
      args = [
        "ci",
        "--ignore-scripts",
        "--no-audit",
        "--no-fund",
        "--prefer-online",
        "--loglevel=error",
        `--cache=${join(dir, "cache")}`,
      ];
    } else {
      // The pnpm lockfile names no registry (integrity only), so pnpm builds tarball URLs from .npmrc.
      copyFileSync(join(options.corpusDir, "pnpm-lock.yaml"), join(project, "pnpm-lock.yaml"));
      command = options.pnpmBin;
      args = [
        "install",
        "--frozen-lockfile",
        "--ignore-scripts",
        "--reporter=silent",
        // pnpm 11+ refuses versions younger than a day by default and fetches every packument to check
        // their publish times; the corpus was published seconds ago, so the check is switched off.
        "--config.minimum-release-age=0",
        `--store-dir=${join(dir, "store")}`,
        `--cache-dir=${join(dir, "cache")}`,
      ];
    }
    const run = await runCommand(processes, command, args, { cwd: project, env, timeoutMs: options.timeoutMs });
    const ok = run.code === 0 && !run.timedOut;
    return {
      seconds: run.seconds,
      ok,
      installed: installedCount(project, installer),
      ...(!ok && {
        error: `${run.timedOut ? "timed out; " : ""}exit ${run.code ?? run.signal}: ${(run.stderr + run.stdout).slice(-800)}`,
      }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
