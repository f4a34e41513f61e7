import { type ConfigOverrides, loadConfig, redactConfig } from "@fw/server";
import { startRegistry } from "@fw/server/node";
import { describeStorage, print, printJson } from "../../output.js";

export interface StartOptions {
  /** `--config FILE`. */
  config?: string;
  overrides: ConfigOverrides;
  json: boolean;
}

/**
 * `fw registry start`: loads the config, listens, prints where. Resolves once listening; the server
 * keeps the process alive and `startRegistry` stops it on SIGINT/SIGTERM.
 */
export async function run(opts: StartOptions): Promise<void> {
  limitMallocArenas();
  const { config } = await loadConfig({ file: opts.config, overrides: opts.overrides });
  await startRegistry(config, {
    onListening(url) {
      if (opts.json) printJson({ url, storage: redactConfig(config).storage });
      else print(`fw registry listening on ${url} (storage: ${describeStorage(config.storage)})`);
    },
  });
}

/**
 * glibc gives each thread that allocates (libuv's pool running zlib, fs and crypto; V8's compiler and
 * GC threads) a malloc arena of its own and keeps freed memory in each, so a long-running server's RSS
 * creeps up by tens of MB that nothing uses. With `MALLOC_ARENA_MAX=2` the bench's peak RSS was 5–8 MB
 * lower with no measurable cost (docs/deploy.md). The variable must be set before the process starts,
 * so `fw registry start` replaces itself once (same PID, same arguments) with it set — unless it is set
 * already (to any value: that is the operator's choice), off glibc Linux, under a debugger, or where
 * `process.execve` is missing (Bun, Node before 22.15). Setting it in the service's environment (systemd,
 * the container image) saves the second start.
 */
function limitMallocArenas(): void {
  if (process.platform !== "linux" || process.env.MALLOC_ARENA_MAX !== undefined) return;
  if (process.versions.bun || typeof process.execve !== "function") return;
  // A debugger would stop in both starts.
  if (process.execArgv.some((arg) => arg.startsWith("--inspect"))) return;
  // musl (Alpine) has no arenas to limit: no second start for nothing.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  if (!header?.glibcVersionRuntime) return;
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      MALLOC_ARENA_MAX: "2",
    });
  } catch {
    // Refused (a sandbox without execve): run as is.
  }
}
