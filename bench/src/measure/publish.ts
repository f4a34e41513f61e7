import { RegistryClient } from "../http.ts";
import { publishOk } from "../registry-api.ts";
import { type Stats, stats } from "../stats.ts";
import { smallPublishDoc } from "../synthetic.ts";

export interface GrowthPoint {
  /** Versions the package had before the measured publishes. */
  existing: number;
  latencyMs: Stats;
}

export interface GrowthResult {
  name: string;
  points: GrowthPoint[];
  /** Mean ms of the last 250 growing publishes when the package reached `versions`: how cost scales. */
  seeding: { versions: number; meanMs: number }[];
  seconds: number;
  /** Publishes to another package before the growth, not counted in any point (their times kept here). */
  warmupMs?: Stats;
  stoppedEarly?: string;
}

/**
 * Grows one package by sequential publishes (one in flight, as a CI pipeline does) and, each time it
 * reaches a checkpoint, times `probe` more publishes: "publish latency at N existing versions".
 * `warmup` publishes to another package come first, counted in no point: the phases before this one only read, and
 * a server's first publishes after minutes of reads run colder code (on Bun the first 20 to a new package
 * took 5 ms at the median, the next package's 1.9 ms), which is not what the version count costs.
 */
export async function publishGrowth(
  registry: string,
  token: string,
  options: {
    checkpoints: number[];
    probe: number;
    deadline: number;
    name: string;
    warmup?: number;
    onProgress?: (msg: string) => void;
  },
): Promise<GrowthResult> {
  const client = new RegistryClient(registry, { maxSockets: 1, timeoutMs: 60_000 });
  const result: GrowthResult = { name: options.name, points: [], seeding: [], seconds: 0 };
  const started = performance.now();
  let count = 0;
  let slice: number[] = [];
  const publishNext = async () => {
    const ms = await publishOk(
      client,
      token,
      smallPublishDoc(options.name, `1.${Math.floor(count / 1000)}.${count % 1000}`, registry),
    );
    count++;
    return ms;
  };
  try {
    const warmup: number[] = [];
    for (let i = 0; i < (options.warmup ?? 0); i++) {
      warmup.push(await publishOk(client, token, smallPublishDoc(`${options.name}-warmup`, `1.0.${i}`, registry)));
    }
    if (warmup.length > 0) result.warmupMs = stats(warmup);
    for (const checkpoint of [...options.checkpoints].sort((a, b) => a - b)) {
      while (count < checkpoint) {
        if (Date.now() > options.deadline) throw new Error(`time limit reached at ${count} versions`);
        slice.push(await publishNext());
        if (slice.length === 250) {
          const meanMs = slice.reduce((t, x) => t + x, 0) / slice.length;
          result.seeding.push({ versions: count, meanMs });
          options.onProgress?.(`${options.name}: ${count} versions, last 250 publishes ${meanMs.toFixed(1)} ms each`);
          slice = [];
        }
      }
      const existing = count;
      const samples: number[] = [];
      for (let i = 0; i < options.probe; i++) samples.push(await publishNext());
      result.points.push({ existing, latencyMs: stats(samples) });
      options.onProgress?.(`${options.name}: at ${existing} versions, publish p50 ${stats(samples).p50.toFixed(1)} ms`);
    }
  } catch (error) {
    result.stoppedEarly = (error as Error).message;
  } finally {
    client.close();
    result.seconds = (performance.now() - started) / 1000;
  }
  return result;
}
