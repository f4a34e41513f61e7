import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * Every process the benchmark starts, so each is stopped by its PID at the end, also after a failure
 * or Ctrl-C. Servers run in their own process group; stopping one signals that group and nothing else.
 */
export class Processes {
  private readonly running = new Map<number, { name: string; child: ChildProcess; graceMs: number }>();

  /**
   * `serverCpus`: a CPU list for `taskset -c` that every server started with `startServer` is bound
   * to (undefined: servers run wherever the scheduler puts them).
   */
  readonly serverCpus: string | undefined;

  constructor(serverCpus?: string) {
    this.serverCpus = serverCpus;
  }

  /** `start` for a server: bound to `serverCpus` when set (taskset execs the command, so the PID is the server's). */
  startServer(
    name: string,
    command: string,
    args: string[],
    options: SpawnOptions & { graceMs?: number } = {},
  ): ChildProcess {
    if (this.serverCpus === undefined) return this.start(name, command, args, options);
    return this.start(name, "taskset", ["-c", this.serverCpus, command, ...args], options);
  }

  /** `graceMs`: how long `stopAll` waits after SIGTERM before SIGKILL. */
  start(
    name: string,
    command: string,
    args: string[],
    options: SpawnOptions & { graceMs?: number } = {},
  ): ChildProcess {
    const { graceMs, ...spawnOptions } = options;
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], ...spawnOptions, detached: true });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    const pid = child.pid;
    this.running.set(pid, { name, child, graceMs: graceMs ?? 10_000 });
    child.once("exit", () => this.running.delete(pid));
    return child;
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs` (default: the one given to `start`). */
  async stop(pid: number, graceMs?: number): Promise<void> {
    const entry = this.running.get(pid);
    if (!entry) return;
    const grace = graceMs ?? entry.graceMs;
    const exited = new Promise<void>((resolve) => {
      if (entry.child.exitCode !== null || entry.child.signalCode !== null) resolve();
      else entry.child.once("exit", () => resolve());
    });
    signalGroup(pid, "SIGTERM");
    const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), grace);
    await exited;
    clearTimeout(timer);
    this.running.delete(pid);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.running.keys()].map((pid) => this.stop(pid)));
  }

  /** Last resort from an exit handler, where nothing async runs any more. */
  killAllNow(): void {
    for (const pid of this.running.keys()) signalGroup(pid, "SIGKILL");
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
  timedOut: boolean;
}

/** Runs a short-lived command (an install, wrk) with a hard time limit; output is kept up to 1 MB. */
export function runCommand(
  processes: Processes,
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    let child: ChildProcess;
    try {
      child = processes.start(command, command, args, {
        ...(options.cwd !== undefined && { cwd: options.cwd }),
        ...(options.env !== undefined && { env: options.env }),
      });
    } catch (error) {
      reject(error);
      return;
    }
    let stdout = "";
    let stderr = "";
    const keep = (text: string, chunk: Buffer) =>
      (text.length > 1_000_000 ? text.slice(-500_000) : text) + chunk.toString();
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout = keep(stdout, chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = keep(stderr, chunk);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void processes.stop(child.pid as number, 2_000);
    }, options.timeoutMs);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (performance.now() - started) / 1000, timedOut });
    });
  });
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === "string") throw new Error("could not find a free port");
  return address.port;
}

export interface ProcSample {
  rssMB: number;
  /** VmHWM: the peak RSS since start or since the last `resetPeak`. */
  peakMB: number;
  cpuSeconds: number;
}

const CLOCK_TICKS = 100;

export function sample(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(status)?.[1] ?? 0);
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return {
      rssMB: kb("VmRSS") / 1024,
      peakMB: kb("VmHWM") / 1024,
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** Sums of `sample` over several PIDs (nginx's master and workers). */
export function sampleAll(pids: number[]): ProcSample | undefined {
  const samples = pids.map(sample).filter((s): s is ProcSample => s !== undefined);
  if (samples.length === 0) return undefined;
  return {
    rssMB: samples.reduce((t, s) => t + s.rssMB, 0),
    peakMB: samples.reduce((t, s) => t + s.peakMB, 0),
    cpuSeconds: samples.reduce((t, s) => t + s.cpuSeconds, 0),
  };
}

/**
 * Resets VmHWM to the current RSS (`echo 5 > /proc/PID/clear_refs`, Linux ≥ 4.0), so each phase gets
 * its own peak. Returns false where that is not allowed; the phase peak then includes earlier phases.
 */
export function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The environment for npm, pnpm and wrk: none of the variables a parent `pnpm run` sets leak into them. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm|pnpm)_/i.test(key) && !/^(NODE_OPTIONS|COREPACK_.*)$/.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

export interface CpuPlan {
  /** CPUs the servers run on (`taskset -c` list), the last one of the machine. */
  servers: string;
  /** CPUs of everything else: this process, so wrk, autocannon, npm and pnpm, which inherit them. */
  clients: string;
}

/**
 * Splits the machine: the servers get its last CPU, the load generators and installers the others,
 * so a server never shares its core with the client measuring it (which otherwise depends on where
 * the scheduler happens to put both, and halved a server's req/s from one wrk round to the next).
 * Binds this process (every thread) to the clients' CPUs. Undefined when there is one CPU or no
 * `taskset`.
 */
export function splitCpus(count: number): CpuPlan | undefined {
  if (count < 2) return undefined;
  const plan = { servers: String(count - 1), clients: count === 2 ? "0" : `0-${count - 2}` };
  const run = spawnSync("taskset", ["-a", "-p", "-c", plan.clients, String(process.pid)], { encoding: "utf8" });
  if (run.error || run.status !== 0) return undefined;
  return plan;
}
