import { parseArgs } from "node:util";
import type { RegistryKind } from "./servers/types.ts";

export interface BenchOptions {
  corpus: string;
  /** Where temp dirs go (storage, mirrors, install projects); a tmpfs keeps the machine's disk out of the numbers. */
  tmpDir: string;
  out: string;
  only: Set<Phase>;
  runs: number;
  /** Cold pnpm installs per registry (they take ~1.5 s, so more of them steady the median cheaply). */
  pnpmRuns: number;
  connections: number;
  warmupSeconds: number;
  seconds: number;
  wrkSeconds: number;
  wrkRounds: number;
  /** Rounds and seconds per round of each duel (authenticated against anonymous on two replicas). */
  duelRounds: number;
  duelSeconds: number;
  packument: string;
  checkpoints: number[];
  probe: number;
  publishMaxSeconds: number;
  verdaccioPublishMaxSeconds: number;
  popularVersions: number;
  popularMB: number;
  installTimeoutSeconds: number;
  maxSeconds: number;
  cpuProfile: boolean;
  /** Flags for the Bun binary that runs fw-bun, before the script (e.g. `--smol`). */
  bunArgs: string[];
  /** Another build of `@fw/server/node` to benchmark instead of apps/server/dist. */
  fwModule?: string | undefined;
  /** "cli" = `fw registry start` (the default once apps/cli is built), "entry" = bench's own entry script. */
  fwLaunch?: "cli" | "entry" | undefined;
  allowStale: boolean;
  waitIdleSeconds: number;
  updateReadme: boolean;
  registries: Set<RegistryKind>;
  /** Servers on the machine's last CPU, everything else on the others (`--no-pin`: off). */
  pin: boolean;
}

const REGISTRIES: RegistryKind[] = ["fw", "fw-bun", "verdaccio", "nginx"];

export const PHASES = ["load", "install", "get", "duel", "publish", "popular", "proxy"] as const;
export type Phase = (typeof PHASES)[number];

const HELP = `usage: node bench.ts [options]

Starts fw, Verdaccio and nginx (static mirror), loads the corpus, and measures installs, GETs under
load, publish latency, a ~20 MB packument, fw's memory and cold installs through a proxy (fw → fw
vs Verdaccio → fw). Writes <out>/<date>.json and .md.

  --corpus DIR              corpus folder (default /work/shared/corpus/A)
  --tmp DIR                 scratch folder (default /dev/shm when it exists)
  --out DIR                 where results go (default bench/.runs)
  --only LIST               phases to run: ${PHASES.join(",")} (corpus loading always runs)
  --registries LIST         ${REGISTRIES.join(",")} (default all four; fw-bun is fw run by Bun,
                            serving with Bun.serve, in every phase but the proxy one)
  --runs N                  cold npm installs per registry, and per proxy (default 5)
  --pnpm-runs N             cold pnpm installs per registry (default 9: ~1.5 s each, ±20 % apart)
  --connections N           keep-alive connections for autocannon and wrk (default 50)
  --warmup S / --seconds S  autocannon warm-up and measured seconds (default 2 / 8)
  --wrk-seconds S           wrk seconds per target and round, 0 to skip wrk (default 5)
  --wrk-rounds N            wrk rounds over all targets; the median round counts (default 5)
  --duel-rounds N           rounds of each duel phase measurement: fw authenticated against anonymous,
                            as two replicas sharing the server core under both loads at once; made
                            even, the median pair of rounds counts (default 10)
  --duel-seconds S          wrk seconds per duel round (default 4)
  --packument NAME          package for the packument GETs (default express)
  --checkpoints LIST        publish latency at these version counts (default 1,500,2000)
  --probe N                 timed publishes per checkpoint (default 20)
  --publish-max-seconds S   time limit for fw's publish growth (default 600)
  --verdaccio-publish-max-seconds S   same for Verdaccio, 0 to skip it there (default 300)
  --popular-versions N      versions of the synthetic popular package (default 3000)
  --popular-mb N            its full packument size in MB (default 20)
  --install-timeout S       per install (default 300)
  --max-seconds S           whole run; phases left are skipped after it (default 3600)
  --cpu-profile             run fw (and fw-bun) with --cpu-prof; the profiles land in the results folder
  --bun-args=ARGS           flags for Bun when it runs fw-bun, space-separated (e.g. --bun-args=--smol;
                            with the "=", as the value starts with a dash)
  --fw-launch cli|entry     start fw with \`fw registry start\` (default when apps/cli/dist exists)
                            or with bench's own entry script
  --fw-module FILE          benchmark this build of @fw/server/node instead of apps/server/dist
  --allow-stale             benchmark apps/server/dist even if src is newer
  --wait-idle S             wait up to S seconds for the 1-minute load average to fall below 0.5 first
  --update-readme           put the results table into README.md
  --no-pin                  do not split the CPUs (by default every server is bound to the last CPU
                            and wrk, autocannon, npm and pnpm to the others, with taskset)
`;

function parseLaunch(value: string | undefined): "cli" | "entry" | undefined {
  if (value === undefined || value === "cli" || value === "entry") return value;
  throw new Error(`--fw-launch must be "cli" or "entry", got "${value}"`);
}

export function parseOptions(argv: string[], defaults: { corpus: string; out: string; tmpDir: string }): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      corpus: { type: "string", default: defaults.corpus },
      tmp: { type: "string", default: defaults.tmpDir },
      out: { type: "string", default: defaults.out },
      only: { type: "string", default: PHASES.join(",") },
      registries: { type: "string", default: REGISTRIES.join(",") },
      runs: { type: "string", default: "5" },
      "pnpm-runs": { type: "string", default: "9" },
      connections: { type: "string", default: "50" },
      warmup: { type: "string", default: "2" },
      seconds: { type: "string", default: "8" },
      "wrk-seconds": { type: "string", default: "5" },
      "wrk-rounds": { type: "string", default: "5" },
      "duel-rounds": { type: "string", default: "10" },
      "duel-seconds": { type: "string", default: "4" },
      packument: { type: "string", default: "express" },
      checkpoints: { type: "string", default: "1,500,2000" },
      probe: { type: "string", default: "20" },
      "publish-max-seconds": { type: "string", default: "600" },
      "verdaccio-publish-max-seconds": { type: "string", default: "300" },
      "popular-versions": { type: "string", default: "3000" },
      "popular-mb": { type: "string", default: "20" },
      "install-timeout": { type: "string", default: "300" },
      "max-seconds": { type: "string", default: "3600" },
      "cpu-profile": { type: "boolean", default: false },
      "bun-args": { type: "string", default: "" },
      "allow-stale": { type: "boolean", default: false },
      "fw-module": { type: "string" },
      "fw-launch": { type: "string" },
      "wait-idle": { type: "string", default: "0" },
      "update-readme": { type: "boolean", default: false },
      "no-pin": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const number = (name: string, value: string, min = 0) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number ≥ ${min}, got "${value}"`);
    return n;
  };
  const list = (value: string) =>
    value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const only = new Set(list(values.only));
  for (const phase of only)
    if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`--only: unknown phase "${phase}"`);
  const registries = new Set(list(values.registries));
  for (const r of registries)
    if (!REGISTRIES.includes(r as RegistryKind)) throw new Error(`--registries: unknown "${r}"`);
  return {
    corpus: values.corpus,
    tmpDir: values.tmp,
    out: values.out,
    only: only as Set<Phase>,
    registries: registries as Set<RegistryKind>,
    runs: number("runs", values.runs, 1),
    pnpmRuns: number("pnpm-runs", values["pnpm-runs"], 1),
    connections: number("connections", values.connections, 1),
    warmupSeconds: number("warmup", values.warmup),
    seconds: number("seconds", values.seconds, 1),
    wrkSeconds: number("wrk-seconds", values["wrk-seconds"]),
    wrkRounds: number("wrk-rounds", values["wrk-rounds"], 1),
    duelRounds: number("duel-rounds", values["duel-rounds"], 1),
    duelSeconds: number("duel-seconds", values["duel-seconds"], 1),
    packument: values.packument,
    checkpoints: list(values.checkpoints).map((c) => number("checkpoints", c)),
    probe: number("probe", values.probe, 1),
    publishMaxSeconds: number("publish-max-seconds", values["publish-max-seconds"]),
    verdaccioPublishMaxSeconds: number("verdaccio-publish-max-seconds", values["verdaccio-publish-max-seconds"]),
    popularVersions: number("popular-versions", values["popular-versions"], 1),
    popularMB: number("popular-mb", values["popular-mb"], 0.1),
    installTimeoutSeconds: number("install-timeout", values["install-timeout"], 1),
    maxSeconds: number("max-seconds", values["max-seconds"], 1),
    cpuProfile: values["cpu-profile"],
    bunArgs: values["bun-args"].split(/\s+/).filter(Boolean),
    allowStale: values["allow-stale"],
    fwModule: values["fw-module"],
    fwLaunch: parseLaunch(values["fw-launch"]),
    waitIdleSeconds: number("wait-idle", values["wait-idle"]),
    updateReadme: values["update-readme"],
    pin: !values["no-pin"],
  };
}
