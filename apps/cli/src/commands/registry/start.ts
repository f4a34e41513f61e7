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
  tuneMemory();
  const { config } = await loadConfig({ file: opts.config, overrides: opts.overrides });
  await startRegistry(config, {
    onListening(url) {
      if (opts.json) printJson({ url, storage: redactConfig(config).storage });
      else print(`fw registry listening on ${url} (storage: ${describeStorage(config.storage)})`);
    },
  });
}

/**
 * Settings for the runtime's memory that only work when set before the process starts, so
 * `fw registry start` replaces itself once (same PID, same arguments, `process.execve`) with them set.
 * Each is left alone when set already (to any value: that is the operator's choice); nothing happens
 * under a debugger or where `process.execve` is missing (Windows, Node before 22.15). Setting them in the
 * service's environment (systemd, the container image) saves the second start. docs/deploy.md has the
 * measurements.
 *
 * - Node on glibc Linux: `MALLOC_ARENA_MAX=2`. glibc gives each thread that allocates (libuv's pool
 *   running zlib, fs and crypto; V8's compiler and GC threads) a malloc arena of its own and keeps freed
 *   memory in each, so a long-running server's RSS creeps up by tens of MB that nothing uses; with two
 *   arenas the bench's peak RSS was 5–8 MB lower at no measurable cost.
 * - And `MALLOC_MMAP_THRESHOLD_=131072`: blocks of 128 KB and more (request bodies, serialized
 *   documents, tarballs read, gzip output) are mapped apart and go back to the kernel when freed. By
 *   default glibc raises that threshold to the size of each large block freed (up to 32 MB), after which
 *   such blocks come from the arenas and their memory stays there: the freed but kept part of the heap
 *   varied from 17 to 35 MB between runs of the same bench work, and the peak was 6–8 MB lower with the
 *   threshold fixed, publishes as fast.
 * - Bun: `BUN_JSC_forceRAMSize=134217728`. JavaScriptCore paces its collections by the machine's RAM (not
 *   a container's limit): until the heap is a quarter of it, the heap may double between collections.
 *   Told of 128 MiB, it collects once a heap past 32 MB has grown by half, past 64 MB by a quarter. The
 *   bench's peak RSS fell from 240–257 to 130–144 MB while a package grew to 2,000 versions; publishes to
 *   that package took a few ms longer (collections run during them). It is pacing, not a limit. Bun
 *   hands `BUN_JSC_*` variables to JavaScriptCore's options.
 */
function tuneMemory(): void {
  const wanted = process.versions.bun ? bunSettings() : nodeSettings();
  if (!wanted || typeof process.execve !== "function") return;
  // A debugger would stop in both starts.
  if (process.execArgv.some((arg) => arg.startsWith("--inspect"))) return;
  try {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      ...wanted,
    });
  } catch {
    // Refused (a sandbox without execve): run as is.
  }
}

/** glibc's malloc settings, each unless already set. */
const GLIBC_MALLOC: Record<string, string> = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: String(128 * 1024) };

function nodeSettings(): Record<string, string> | undefined {
  if (process.platform !== "linux") return undefined;
  const unset = Object.entries(GLIBC_MALLOC).filter(([name]) => process.env[name] === undefined);
  if (unset.length === 0) return undefined;
  // musl (Alpine) has neither setting: no second start for nothing.
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ? Object.fromEntries(unset) : undefined;
}

function bunSettings(): Record<string, string> | undefined {
  return process.env.BUN_JSC_forceRAMSize === undefined
    ? { BUN_JSC_forceRAMSize: String(128 * 1024 * 1024) }
    : undefined;
}
