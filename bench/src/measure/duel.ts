import { RegistryClient } from "../http.ts";
import type { Processes } from "../procs.ts";
import type { RunningServer } from "../servers/types.ts";
import { median } from "../stats.ts";
import { type GetCase, headersFor, runWrk } from "./http-load.ts";

export interface DuelRound {
  round: number;
  /** Which replica served the subject's load this round. */
  subjectOn: "a" | "b";
  subjectReqPerSec: number;
  anonymousReqPerSec: number;
  ratio: number;
}

export interface DuelResult {
  kind: RunningServer["kind"];
  case: GetCase;
  /** Both loads anonymous (the subject sends a dummy header as long as `Authorization`): how even a duel is. */
  control: boolean;
  path: string;
  connections: number;
  seconds: number;
  rounds: DuelRound[];
  /**
   * Each pair of rounds (the subject on one replica, then on the other) as one ratio, the geometric
   * mean of the two: whatever one replica has over the other (a warmer JIT, a bigger heap) multiplies
   * one round's ratio and divides the other's, and cancels here.
   */
  pairs: number[];
  /** The median pair. */
  median: number;
  min: number;
  max: number;
}

/** A header as long as `Authorization: Bearer <token>`, so both sides' requests are the same size. */
function dummyHeader(token: string): Record<string, string> {
  return { "x-not-a-token": "x".repeat(`Bearer ${token}`.length) };
}

export interface DuelOptions {
  /** The two replicas: same build, same runtime, same storage. */
  a: RunningServer;
  b: RunningServer;
  path: string;
  case: GetCase;
  token: string;
  control: boolean;
  /** Rounds, made even: the subject's load goes to each replica in turn. */
  rounds: number;
  seconds: number;
  /** Per side. */
  connections: number;
  onRound?: (round: DuelRound) => void;
}

/**
 * Authenticated against anonymous GETs, measured so that the machine's noise cannot decide it: two fw
 * replicas of one storage folder, bound to the same core, one under authenticated wrk and the other
 * under anonymous wrk at the same time, the loads swapped every round. The scheduler gives the two
 * servers equal shares of the core, so the requests each completes in the same seconds compare what a
 * request costs it; a machine that slows down slows both. Back-to-back rounds against one server (the
 * GET phase's pairs) compare seconds apart, and this machine's load drifts by a fifth between them.
 */
export async function duel(processes: Processes, options: DuelOptions): Promise<DuelResult> {
  const { a, b, path, connections, seconds } = options;
  const anonymous = { ...headersFor(options.case, undefined), ...dummyHeader(options.token) };
  const subject = options.control ? anonymous : headersFor(options.case, options.token);

  // Both replicas answer both loads before the rounds: caches filled, the token verified on each.
  for (const server of [a, b]) {
    for (const headers of [subject, anonymous]) {
      const client = new RegistryClient(server.url);
      const response = await client.request("GET", path, { headers });
      client.close();
      if (response.status !== 200) throw new Error(`GET ${path} on ${server.url} answered ${response.status}`);
    }
  }
  await Promise.all([
    runWrk(processes, a.url + path, subject, connections, 1),
    runWrk(processes, b.url + path, anonymous, connections, 1),
  ]);

  const rounds: DuelRound[] = [];
  const count = Math.max(2, options.rounds + (options.rounds % 2));
  for (let round = 1; round <= count; round++) {
    // The subject's load goes to each replica in turn, so a difference between the two cancels out.
    const [onSubject, onAnonymous] = round % 2 === 1 ? [a, b] : [b, a];
    const [s, n] = await Promise.all([
      runWrk(processes, onSubject.url + path, subject, connections, seconds),
      runWrk(processes, onAnonymous.url + path, anonymous, connections, seconds),
    ]);
    if (s.non2xx > 0 || n.non2xx > 0 || s.errors > 0 || n.errors > 0) {
      throw new Error(
        `duel round ${round}: ${s.non2xx + n.non2xx} answers that were not 2xx, ${s.errors + n.errors} socket errors`,
      );
    }
    const sample: DuelRound = {
      round,
      subjectOn: onSubject === a ? "a" : "b",
      subjectReqPerSec: s.reqPerSec,
      anonymousReqPerSec: n.reqPerSec,
      ratio: s.reqPerSec / n.reqPerSec,
    };
    rounds.push(sample);
    options.onRound?.(sample);
  }
  const pairs: number[] = [];
  for (let i = 0; i + 1 < rounds.length; i += 2) {
    pairs.push(Math.sqrt((rounds[i] as DuelRound).ratio * (rounds[i + 1] as DuelRound).ratio));
  }
  return {
    kind: a.kind,
    case: options.case,
    control: options.control,
    path,
    connections,
    seconds,
    rounds,
    pairs,
    median: median(pairs),
    min: Math.min(...pairs),
    max: Math.max(...pairs),
  };
}
