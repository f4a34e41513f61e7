import autocannon from "autocannon";
import { type CorpusEntry, packumentPath, tarballPath } from "../corpus.ts";
import { bearer, decodedBody, RegistryClient } from "../http.ts";
import { cleanEnv, type Processes, runCommand, sampleAll } from "../procs.ts";
import type { RunningServer } from "../servers/types.ts";

export type GetCase = "full" | "abbreviated" | "tarball";

/** What npm 11 sends for a packument during `npm install` (npm-registry-fetch + pacote). */
export const ABBREVIATED_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*";

export interface LoadNumbers {
  reqPerSec: number;
  MBps: number;
  latencyMs: { p50: number; p99: number };
  non2xx: number;
  errors: number;
}

export interface GetResult {
  registry: string;
  kind: RunningServer["kind"];
  case: GetCase;
  auth: boolean;
  path: string;
  probe: { status: number; contentType: string; contentEncoding: string; wireBytes: number; bodyBytes: number };
  autocannon?: LoadNumbers;
  /** The median wrk round by req/s. */
  wrk?: LoadNumbers & { serverCpuPct: number };
  wrkRounds?: (LoadNumbers & { serverCpuPct: number })[];
  /** Server CPU during the autocannon run, % of one core. */
  serverCpuPct?: number;
}

export interface LoadOptions {
  connections: number;
  warmupSeconds: number;
  seconds: number;
  wrkSeconds: number;
}

/** npm's request headers for a GET of this kind, with the token when given. */
export function headersFor(kind: GetCase, token: string | undefined): Record<string, string> {
  return {
    ...bearer(token),
    "accept-encoding": "gzip,deflate",
    "user-agent": "npm/11.6.0 node/v24.0.0 linux x64 workspaces/false",
    "npm-command": "install",
    accept: kind === "abbreviated" ? ABBREVIATED_ACCEPT : kind === "full" ? "application/json" : "*/*",
  };
}

async function runAutocannon(url: string, headers: Record<string, string>, connections: number, seconds: number) {
  const result = await autocannon({ url, headers, connections, duration: seconds, timeout: 10 });
  return {
    reqPerSec: result.requests.average,
    MBps: result.throughput.average / 1e6,
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

function parseDuration(text: string | undefined): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? "");
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
  return Number(m[1]) * (scale[m[2] as string] ?? Number.NaN);
}

/** wrk: one thread, C and epoll; on 2 cores it leaves the server a whole core, which autocannon does not. */
export async function runWrk(
  processes: Processes,
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
) {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "--timeout", "10s"];
  for (const [name, value] of Object.entries(headers)) args.push("-H", `${name}: ${value}`);
  args.push(url);
  const run = await runCommand(processes, "wrk", args, { env: cleanEnv(), timeoutMs: (seconds + 30) * 1000 });
  if (run.code !== 0) throw new Error(`wrk failed (${run.code ?? run.signal}): ${run.stderr.slice(-300)}`);
  const out = run.stdout;
  const transfer = /Transfer\/sec:\s+([\d.]+)([KMG]?B)/.exec(out);
  const unit = ({ B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 } as Record<string, number>)[transfer?.[2] ?? "B"] ?? 1;
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    reqPerSec: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN),
    MBps: transfer ? (Number(transfer[1]) * unit) / 1e6 : Number.NaN,
    latencyMs: {
      p50: parseDuration(/^\s+50%\s+(\S+)/m.exec(out)?.[1]),
      p99: parseDuration(/^\s+99%\s+(\S+)/m.exec(out)?.[1]),
    },
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    errors: socketErrors ? socketErrors.slice(1).reduce((t, n) => t + Number(n), 0) : 0,
  };
}

/** The corpus tarball closest to 100 KB: a typical dependency, big enough that bytes dominate. */
export function typicalTarball(packages: CorpusEntry[]): CorpusEntry {
  return [...packages].sort((a, b) => Math.abs(a.size - 100_000) - Math.abs(b.size - 100_000))[0] as CorpusEntry;
}

/** A GET target: the probe (what comes back), then autocannon after a warm-up. wrk runs in `wrkRound`. */
export async function measureGet(
  server: RunningServer,
  target: { case: GetCase; packument: string; tarball: CorpusEntry; token?: string | undefined },
  options: LoadOptions,
): Promise<{ result: GetResult; url: string; headers: Record<string, string> }> {
  const path =
    target.case === "tarball"
      ? tarballPath(target.tarball.name, target.tarball.version)
      : packumentPath(target.packument);
  const headers = headersFor(target.case, target.token);
  const client = new RegistryClient(server.url);
  const response = await client.request("GET", path, { headers });
  client.close();
  const result: GetResult = {
    registry: server.label,
    kind: server.kind,
    case: target.case,
    auth: Boolean(target.token),
    path,
    probe: {
      status: response.status,
      contentType: String(response.headers["content-type"] ?? ""),
      contentEncoding: String(response.headers["content-encoding"] ?? "identity"),
      wireBytes: response.body.length,
      bodyBytes: decodedBody(response).length,
    },
  };
  const url = server.url + path;
  if (response.status !== 200) return { result, url, headers };
  if (options.warmupSeconds > 0) await runAutocannon(url, headers, options.connections, options.warmupSeconds);
  const before = sampleAll(server.pids());
  const started = performance.now();
  result.autocannon = await runAutocannon(url, headers, options.connections, options.seconds);
  const after = sampleAll(server.pids());
  if (before && after) {
    result.serverCpuPct = ((after.cpuSeconds - before.cpuSeconds) / ((performance.now() - started) / 1000)) * 100;
  }
  return { result, url, headers };
}

/**
 * One wrk run for a target. Rounds go over all targets in turn, and the median round counts: on a
 * shared machine a neighbour's burst then spoils one round of one target, not the comparison.
 */
export async function wrkRound(
  processes: Processes,
  server: RunningServer,
  target: { result: GetResult; url: string; headers: Record<string, string> },
  options: LoadOptions,
): Promise<void> {
  const { result } = target;
  const before = sampleAll(server.pids());
  const started = performance.now();
  const numbers = await runWrk(processes, target.url, target.headers, options.connections, options.wrkSeconds);
  const after = sampleAll(server.pids());
  const cpu =
    before && after
      ? ((after.cpuSeconds - before.cpuSeconds) / ((performance.now() - started) / 1000)) * 100
      : Number.NaN;
  result.wrkRounds = [...(result.wrkRounds ?? []), { ...numbers, serverCpuPct: cpu }];
  const sorted = [...result.wrkRounds].sort((a, b) => a.reqPerSec - b.reqPerSec);
  result.wrk = sorted[Math.floor((sorted.length - 1) / 2)];
}
