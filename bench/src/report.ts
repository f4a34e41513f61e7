import type { DuelResult } from "./measure/duel.ts";
import type { GetCase, GetResult } from "./measure/http-load.ts";
import type { Installer, InstallRun } from "./measure/installs.ts";
import type { PopularResult } from "./measure/popular.ts";
import type { GrowthResult } from "./measure/publish.ts";
import type { LoadSummary } from "./registry-api.ts";
import type { RegistryKind } from "./servers/types.ts";
import { median } from "./stats.ts";

export interface Goal {
  what: string;
  target: string;
  measured: string;
  /** null when the inputs are missing (phase skipped or failed). */
  pass: boolean | null;
}

/** Cold `npm ci` through a proxy registry whose uplink is the bench's fw with the corpus loaded. */
export interface ProxyInstalls {
  /** The proxy's implementation: "fw" (fw → fw) or "verdaccio" (Verdaccio → fw). */
  kind: RegistryKind;
  registry: string;
  upstream: string;
  runs: InstallRun[];
  /** Run 1: the proxy's cache is empty, every packument and tarball comes from the upstream. */
  firstSeconds: number;
  /** Runs 2…: the proxy has cached what run 1 fetched (NaN with --runs 1). */
  warmMedianSeconds: number;
  /** Median of every successful run. */
  medianSeconds: number;
  failures: number;
}

export interface BenchResult {
  tool: string;
  startedAt: string;
  finishedAt?: string;
  seconds?: number;
  machine: Record<string, unknown> & {
    loadAverageAtStart: number[];
    loadAverageAtEnd?: number[];
    cpuPlan?: { servers: string; clients: string };
  };
  options: Record<string, unknown>;
  corpus: { dir: string; tarballs: number; names: number; MB: number };
  servers: { kind: RegistryKind; label: string; url: string; pid: number }[];
  corpusLoad: ({ kind: RegistryKind; registry: string } & Omit<LoadSummary, "rejected">)[];
  installs: {
    installer: Installer;
    kind: RegistryKind;
    registry: string;
    runs: InstallRun[];
    medianSeconds: number;
    failures: number;
  }[];
  gets: GetResult[];
  /** Optional so results written before the duel phase existed still render. */
  duels?: DuelResult[];
  publish: ({ kind: RegistryKind; registry: string } & GrowthResult)[];
  popular: PopularResult[];
  /** Optional so results written before the proxy phase existed still render. */
  proxy?: ProxyInstalls[];
  memory: {
    phase: string;
    seconds: number;
    resetOk: boolean;
    servers: Partial<Record<RegistryKind, { peakMB: number; endMB: number; sampledMaxMB: number }>>;
  }[];
  fwCpuSeconds?: number;
  /** The servers' CPU profiles (`--cpu-profile`), fw on Node and fw on Bun. */
  cpuProfiles?: string[];
  goals?: Goal[];
  warnings: string[];
  errors: string[];
}

const KINDS: RegistryKind[] = ["nginx", "verdaccio", "fw", "fw-bun"];

function fmt(value: number | undefined, digits = 0): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function findGet(r: BenchResult, kind: RegistryKind, getCase: GetCase, auth: boolean): GetResult | undefined {
  return r.gets.find((g) => g.kind === kind && g.case === getCase && g.auth === auth);
}

function ratioGoal(
  what: string,
  target: string,
  numerator: number | undefined,
  denominator: number | undefined,
  min: number,
): Goal {
  if (
    numerator === undefined ||
    denominator === undefined ||
    !Number.isFinite(numerator) ||
    !Number.isFinite(denominator) ||
    denominator === 0
  ) {
    return { what, target, measured: "not measured", pass: null };
  }
  const ratio = numerator / denominator;
  return { what, target, measured: `${fmt(ratio, 2)}× (${fmt(numerator)} vs ${fmt(denominator)})`, pass: ratio >= min };
}

/**
 * Authenticated against anonymous GETs, one wrk round at a time: a round runs the two back to back, so
 * its ratio compares them under the same machine load, and the median of the rounds' ratios counts.
 * The median rounds of each, taken apart, may come from rounds minutes apart (on this machine two
 * rounds of one target differ by up to ±20 %).
 */
function pairedGoal(
  what: string,
  target: string,
  auth: GetResult | undefined,
  anon: GetResult | undefined,
  min: number,
): Goal {
  const a = auth?.wrkRounds ?? [];
  const b = anon?.wrkRounds ?? [];
  const ratios = a.slice(0, b.length).map((x, i) => x.reqPerSec / (b[i]?.reqPerSec ?? Number.NaN));
  if (ratios.length === 0 || !ratios.every(Number.isFinite)) {
    return ratioGoal(what, target, auth?.wrk?.reqPerSec, anon?.wrk?.reqPerSec, min);
  }
  const ratio = median(ratios);
  // Shown beside it, not judged: the server's CPU time per request, median of the rounds, anonymous over
  // authenticated (so it reads like the req/s ratio). Rounds where the machine took the server's core
  // away lower its req/s but not this.
  const cost = (rounds: { reqPerSec: number; serverCpuPct: number }[]) =>
    median(rounds.map((x) => (x.serverCpuPct * 1e4) / x.reqPerSec).filter(Number.isFinite));
  const cpu = cost(b) / cost(a);
  const byCpu = Number.isFinite(cpu) ? `; by server CPU per request ${fmt(cpu, 2)}×` : "";
  return {
    what,
    target,
    measured: `${fmt(ratio, 2)}× (median of ${ratios.length} rounds: ${ratios.map((x) => fmt(x, 2)).join(", ")}${byCpu})`,
    pass: ratio >= min,
  };
}

/**
 * The same goal judged by the duel phase (two replicas sharing the server core, one under each load at
 * once, see measure/duel.ts) when it ran; the control duel of the runtime and the GET phase's
 * back-to-back rounds are shown beside it.
 */
function duelGoal(fwName: string, measured: DuelResult, duels: DuelResult[], paired: Goal): Goal {
  const control = duels.find((d) => d.kind === measured.kind && d.control);
  const shown = control ? `; control, both anonymous (${control.case}): ${fmt(control.median, 2)}×` : "";
  const pairs = measured.pairs.map((x) => fmt(x, 2)).join(", ");
  const back = paired.pass === null ? "" : `; back-to-back rounds on one server: ${paired.measured.split(" (")[0]}`;
  return {
    what: `GET ${measured.case}, ${fwName} authenticated vs anonymous (wrk req/s, two replicas sharing a core)`,
    target: "≥ 0.90×",
    measured: `${fmt(measured.median, 2)}× (median of ${measured.pairs.length} pairs of rounds: ${pairs}${shown}${back})`,
    pass: measured.median >= 0.9,
  };
}

function maxGoal(what: string, target: string, value: number | undefined, max: number, unit: string, digits = 1): Goal {
  if (value === undefined || !Number.isFinite(value)) return { what, target, measured: "not measured", pass: null };
  return { what, target, measured: `${fmt(value, digits)} ${unit}`, pass: value <= max };
}

/**
 * The goals of the "Performance" part of the server issue, checked against one run: for fw on Node,
 * then (when it ran) the same goals for fw on Bun.
 */
export function evaluateGoals(r: BenchResult): Goal[] {
  const kinds = (["fw", "fw-bun"] as const).filter((k) => k === "fw" || r.servers.some((s) => s.kind === k));
  return kinds.flatMap((kind) => goalsFor(r, kind));
}

function goalsFor(r: BenchResult, fwKind: "fw" | "fw-bun"): Goal[] {
  const goals: Goal[] = [];
  const fwName = fwKind === "fw" ? "fw" : "fw on Bun";
  const wrk = (kind: RegistryKind, c: GetCase, auth = false) => findGet(r, kind, c, auth)?.wrk?.reqPerSec;
  for (const c of ["full", "abbreviated"] as GetCase[]) {
    goals.push(
      ratioGoal(`GET ${c} packument, ${fwName} vs nginx (wrk req/s)`, "≥ 0.35×", wrk(fwKind, c), wrk("nginx", c), 0.35),
    );
    goals.push(
      ratioGoal(
        `GET ${c} packument, ${fwName} vs Verdaccio (wrk req/s)`,
        "≥ 25×",
        wrk(fwKind, c),
        wrk("verdaccio", c),
        25,
      ),
    );
  }
  for (const c of ["full", "abbreviated", "tarball"] as GetCase[]) {
    const paired = pairedGoal(
      `GET ${c}, ${fwName} authenticated vs anonymous (wrk req/s, rounds paired)`,
      "≥ 0.90×",
      findGet(r, fwKind, c, true),
      findGet(r, fwKind, c, false),
      0.9,
    );
    const measured = r.duels?.find((d) => d.kind === fwKind && d.case === c && !d.control);
    goals.push(measured ? duelGoal(fwName, measured, r.duels ?? [], paired) : paired);
  }
  const mbps = (kind: RegistryKind) => findGet(r, kind, "tarball", false)?.wrk?.MBps;
  goals.push(ratioGoal(`GET tarball, ${fwName} vs nginx (wrk MB/s)`, "≥ 0.3×", mbps(fwKind), mbps("nginx"), 0.3));
  const install = (installer: Installer, kind: RegistryKind) =>
    r.installs.find((i) => i.installer === installer && i.kind === kind)?.medianSeconds;
  for (const [installer, limit] of [
    ["npm", 1.05],
    ["pnpm", 1.1],
  ] as const) {
    const fw = install(installer, fwKind);
    const nginx = install(installer, "nginx");
    const label = installer === "npm" ? "cold npm ci" : "cold pnpm install --frozen-lockfile";
    if (fw === undefined || nginx === undefined || !Number.isFinite(fw) || !Number.isFinite(nginx)) {
      goals.push({
        what: `${label}, ${fwName} vs nginx (median s)`,
        target: `≤ ${limit}×`,
        measured: "not measured",
        pass: null,
      });
    } else {
      goals.push({
        what: `${label}, ${fwName} vs nginx (median s)`,
        target: `≤ ${limit}×`,
        measured: `${fmt(fw / nginx, 2)}× (${fmt(fw, 2)} s vs ${fmt(nginx, 2)} s)`,
        pass: fw / nginx <= limit,
      });
    }
  }
  const growth = r.publish.find((p) => p.kind === fwKind);
  for (const [existing, limit] of [
    [1, 5],
    [500, 10],
    [2000, 20],
  ] as const) {
    const point = growth?.points.find((p) => p.existing === existing);
    goals.push(
      maxGoal(
        `${fwName === "fw" ? "" : "fw on Bun: "}publish with ${existing.toLocaleString("en-US")} existing version${existing === 1 ? "" : "s"} (p50)`,
        `≤ ${limit} ms`,
        point?.latencyMs.p50,
        limit,
        "ms",
      ),
    );
  }
  const peaks = r.memory.map((m) => m.servers[fwKind]?.peakMB).filter((x): x is number => x !== undefined);
  const peakPhase = r.memory.reduce<{ phase: string; mb: number } | undefined>((best, m) => {
    const mb = m.servers[fwKind]?.peakMB;
    return mb !== undefined && (!best || mb > best.mb) ? { phase: m.phase, mb } : best;
  }, undefined);
  const peakGoal = maxGoal(
    `${fwName} peak RSS, any phase`,
    "≤ 150 MB",
    peaks.length > 0 ? Math.max(...peaks) : undefined,
    150,
    "MB",
    0,
  );
  if (peakPhase) peakGoal.measured += ` (${peakPhase.phase})`;
  goals.push(peakGoal);
  return goals;
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The README section: goals, the three-way table, the popular package, memory per phase. */
export function renderMarkdown(r: BenchResult, context: { command: string }): string {
  const present = KINDS.filter((k) => r.servers.some((s) => s.kind === k));
  const label = (k: RegistryKind) => r.servers.find((s) => s.kind === k)?.label ?? k;
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `Run of ${r.startedAt.slice(0, 16).replace("T", " ")} UTC, ${fmt(r.seconds)} s, \`${context.command}\`. ` +
      `Machine: ${m.cpus} × ${m.cpuModel}, ${m.memGB} GB, Linux ${m.kernel}; Node ${m.node}, npm ${m.npm}, pnpm ${m.pnpm}, ${m.wrk}, autocannon ${m.autocannon}. ` +
      (m.cpuPlan
        ? `Servers bound to CPU ${m.cpuPlan.servers}, wrk, autocannon and installers to CPU ${m.cpuPlan.clients} (taskset). `
        : "CPUs not split (--no-pin). ") +
      `Load average (1/5/15 min) at start ${m.loadAverageAtStart.join(" / ")}, at end ${m.loadAverageAtEnd?.join(" / ") ?? "–"}. ` +
      `Corpus: ${r.corpus.tarballs} tarballs of ${r.corpus.names} packages, ${fmt(r.corpus.MB, 1)} MB.`,
  );
  out.push("");
  out.push("**Goals** (pass/miss is shown, not asserted)");
  out.push("");
  const mark = (pass: boolean | null) => (pass === null ? "–" : pass ? "pass" : "**miss**");
  out.push(
    table(
      ["goal", "target", "measured", ""],
      (r.goals ?? []).map((g) => [g.what, g.target, g.measured, mark(g.pass)]),
    ),
  );
  out.push("");
  out.push("**Side by side**");
  out.push("");
  const rows: string[][] = [];
  const o = r.options as {
    runs?: number;
    connections?: number;
    seconds?: number;
    wrkSeconds?: number;
    wrkRounds?: number;
    packument?: string;
  };
  for (const installer of ["npm", "pnpm"] as Installer[]) {
    const cells = present.map((k) => {
      const i = r.installs.find((x) => x.installer === installer && x.kind === k);
      if (!i) return "–";
      const runs = i.runs.map((x) => (x.ok ? fmt(x.seconds, 2) : "fail")).join(", ");
      return `**${fmt(i.medianSeconds, 2)}** (${runs})`;
    });
    if (cells.some((c) => c !== "–")) {
      const what = installer === "npm" ? "cold `npm ci`" : "cold `pnpm install --frozen-lockfile`";
      rows.push([`${what}, s, median (runs)`, ...cells]);
    }
  }
  const getRow = (c: GetCase, auth: boolean) => {
    const cells = present.map((k) => {
      const g = findGet(r, k, c, auth);
      if (!g) return "–";
      if (!g.autocannon) return `HTTP ${g.probe.status}`;
      const w = g.wrk;
      const rounds = (g.wrkRounds ?? []).map((x) => (c === "tarball" ? x.MBps : x.reqPerSec));
      const spread = rounds.length > 1 ? ` (${fmt(Math.min(...rounds))}–${fmt(Math.max(...rounds))})` : "";
      const latency = `p50/p99 ${fmt(w?.latencyMs.p50, 1)}/${fmt(w?.latencyMs.p99, 1)} ms`;
      const main =
        c === "tarball"
          ? `**${fmt(w?.MBps)} MB/s**${spread} (${fmt(w?.reqPerSec)} req/s, ${latency})`
          : `**${fmt(w?.reqPerSec)}**${spread}, ${latency}`;
      const ac = `autocannon ${fmt(g.autocannon.reqPerSec)}${c === "tarball" ? ` req/s, ${fmt(g.autocannon.MBps)} MB/s` : ""}, p99 ${fmt(g.autocannon.latencyMs.p99)} ms`;
      const errors = (w?.non2xx ?? 0) + (w?.errors ?? 0) + g.autocannon.non2xx + g.autocannon.errors;
      return `${main}; ${ac}; server CPU ${fmt(w?.serverCpuPct)} %${errors ? `; ${errors} errors/non-2xx` : ""}`;
    });
    if (cells.every((x) => x === "–")) return;
    const sample = present.map((k) => findGet(r, k, c, auth)).find(Boolean);
    const what =
      c === "tarball"
        ? `GET tarball ${sample?.path.split("/-/")[1] ?? ""} (${fmt((sample?.probe.bodyBytes ?? 0) / 1024)} KB), wrk MB/s`
        : `GET ${c} packument \`${o.packument}\`, wrk req/s`;
    rows.push([`${what}, ${auth ? "**authenticated**" : "anonymous"}`, ...cells]);
  };
  for (const c of ["full", "abbreviated", "tarball"] as GetCase[]) {
    getRow(c, false);
    getRow(c, true);
  }
  const sizes = (c: GetCase) =>
    present.map((k) => {
      const g = findGet(r, k, c, false);
      return g ? `${fmt(g.probe.bodyBytes)} B, ${g.probe.contentEncoding} ${fmt(g.probe.wireBytes)} B` : "–";
    });
  if (r.gets.length > 0) {
    rows.push([`… full packument body (on the wire)`, ...sizes("full")]);
    rows.push([`… abbreviated packument body (on the wire)`, ...sizes("abbreviated")]);
  }
  for (const checkpoint of [...new Set(r.publish.flatMap((p) => p.points.map((x) => x.existing)))].sort(
    (a, b) => a - b,
  )) {
    rows.push([
      `publish with ${checkpoint.toLocaleString("en-US")} existing version${checkpoint === 1 ? "" : "s"}, ms p50 (p99)`,
      ...present.map((k) => {
        const point = r.publish.find((p) => p.kind === k)?.points.find((x) => x.existing === checkpoint);
        return point
          ? `**${fmt(point.latencyMs.p50, 1)}** (${fmt(point.latencyMs.p99, 1)})`
          : k === "nginx"
            ? "n/a"
            : "–";
      }),
    ]);
  }
  if (r.publish.length > 0) {
    rows.push([
      "publish growth: total time; mean ms per publish over 250 publishes ending near 250 / 1,000 / 2,000 versions",
      ...present.map((k) => {
        const p = r.publish.find((x) => x.kind === k);
        if (!p) return k === "nginx" ? "n/a" : "–";
        const near = (n: number) => {
          const best = [...p.seeding].sort((a, b) => Math.abs(a.versions - n) - Math.abs(b.versions - n))[0];
          return best && Math.abs(best.versions - n) <= 250 ? fmt(best.meanMs, 1) : "–";
        };
        const warm = p.warmupMs
          ? `; ${p.warmupMs.n} warm-up publishes before (another package) p50 ${fmt(p.warmupMs.p50, 1)} ms`
          : "";
        return `${fmt(p.seconds)} s; ${near(250)} / ${near(1000)} / ${near(2000)}${warm}${p.stoppedEarly ? `; stopped: ${p.stoppedEarly}` : ""}`;
      }),
    ]);
  }
  if (r.corpusLoad.length > 0) {
    rows.push([
      `load the corpus (${r.corpus.tarballs} publishes, 8 in parallel), s (p50 ms per publish)`,
      ...present.map((k) => {
        const l = r.corpusLoad.find((x) => x.kind === k);
        return l ? `${fmt(l.seconds, 1)} (${fmt(l.latencyMs.p50, 1)})` : k === "nginx" ? "n/a" : "–";
      }),
    ]);
  }
  out.push(table(["test", ...present.map(label)], rows));
  out.push("");
  out.push(
    `GETs: ${o.connections} keep-alive connections, npm's headers (\`Accept-Encoding: gzip,deflate\`; abbreviated = npm's \`Accept\`); ` +
      `wrk (1 thread) ${o.wrkSeconds} s per round, ${o.wrkRounds} rounds over all targets in turn, the median round shown with the range of rounds ` +
      "(an anonymous target and its authenticated twin back to back, swapping places every other round); " +
      `autocannon ${o.seconds} s after a warm-up, once per target; server CPU is during wrk, % of one core; "authenticated" adds \`Authorization: Bearer <token>\`. ` +
      `Installs: fresh project, empty cache/store and HOME each run, registry and token in the project's .npmrc, runs interleaved across registries, each round starting with the next one.`,
  );
  const duels = r.duels ?? [];
  if (duels.length > 0) {
    const d0 = duels[0] as DuelResult;
    out.push("");
    out.push(
      `Authenticated against anonymous (the goals' "two replicas sharing a core"): a second fw of the same build started on the same storage folder, both bound to the server CPU; ` +
        `each round one takes authenticated and the other anonymous wrk (${d0.connections} connections each, ${d0.seconds} s, at the same time), swapping every round; a pair of rounds counts as the geometric mean of its two ratios of requests completed (which cancels any difference between the replicas), and the median pair is shown. ` +
        `The anonymous side sends a dummy header as long as \`Authorization\`. The control gives both anonymous loads. ` +
        duels
          .map(
            (d) =>
              `${d.kind} ${d.case}${d.control ? " control" : ""}: ${fmt(d.median, 3)} (pairs ${fmt(d.min, 3)}–${fmt(d.max, 3)}; rounds ${d.rounds.map((x) => fmt(x.ratio, 2)).join(", ")})`,
          )
          .join("; ") +
        ".",
    );
  }
  if (r.popular.length > 0) {
    out.push("");
    const p0 = r.popular[0] as PopularResult;
    out.push(
      `**Popular package**: ${fmt(p0.versions)} versions, full packument ${fmt(p0.fullBytes / 1e6, 1)} MB (seeded into each server's storage)`,
    );
    out.push("");
    const prow = (what: string, f: (p: PopularResult) => string) => [
      what,
      ...present.map((k) => {
        const p = r.popular.find((x) => x.kind === k);
        return p ? (p.error && !Number.isFinite(p.coldGetMs) ? `error: ${p.error.slice(0, 80)}` : f(p)) : "–";
      }),
    ];
    out.push(
      table(
        ["test", ...present.map(label)],
        [
          prow("first GET (full, gzip), ms", (p) => fmt(p.coldGetMs)),
          prow("GET full, gzip, ms p50 (max) of 10", (p) => `${fmt(p.fullGetMs.p50)} (${fmt(p.fullGetMs.max)})`),
          prow(
            "GET abbreviated, gzip, ms p50 (max) of 10",
            (p) => `${fmt(p.abbreviatedGetMs.p50)} (${fmt(p.abbreviatedGetMs.max)})`,
          ),
          prow(
            "… bodies: full / abbreviated, MB (gzip on the wire)",
            (p) =>
              `${fmt(p.fullBytes / 1e6, 1)} (${fmt(p.fullWireBytes / 1e6, 2)}) / ${fmt(p.abbreviatedBytes / 1e6, 1)} (${fmt(p.abbreviatedWireBytes / 1e6, 2)})`,
          ),
          prow("GET abbreviated under load (autocannon, 10 connections, 5 s), req/s, p99 ms", (p) =>
            p.load
              ? p.load.reqPerSec === 0
                ? "none completed within the 5 s"
                : `${fmt(p.load.reqPerSec, 1)}, ${fmt(p.load.p99Ms)}${p.load.errors + p.load.non2xx ? ` (${p.load.errors + p.load.non2xx} errors)` : ""}`
              : "–",
          ),
          prow("publish a version, ms p50 (max) of 10", (p) =>
            p.publishMs ? `**${fmt(p.publishMs.p50)}** (${fmt(p.publishMs.max)})` : "n/a",
          ),
          prow("first abbreviated GET after each publish, ms p50 (max)", (p) =>
            p.getAfterPublishMs ? `${fmt(p.getAfterPublishMs.p50)} (${fmt(p.getAfterPublishMs.max)})` : "n/a",
          ),
          prow("server peak RSS in this phase, MB", (p) => {
            const mem = r.memory.find((x) => x.phase === `popular package (${p.kind})`)?.servers[p.kind];
            return mem ? fmt(mem.peakMB) : "–";
          }),
        ],
      ),
    );
  }
  const proxies = r.proxy ?? [];
  if (proxies.length > 0) {
    out.push("");
    out.push(
      "**Through a proxy**: cold `npm ci` via fw → fw vs Verdaccio → fw (a second fw and a second Verdaccio, fresh and empty, each with the bench's fw as its only uplink; the lockfile's `resolved` URLs point at the proxy)",
    );
    out.push("");
    const cell = (p: ProxyInstalls | undefined, f: (p: ProxyInstalls) => string) => (p ? f(p) : "–");
    const fwProxy = proxies.find((p) => p.kind === "fw");
    const vProxy = proxies.find((p) => p.kind === "verdaccio");
    const prow = (what: string, f: (p: ProxyInstalls) => string) => [what, cell(fwProxy, f), cell(vProxy, f)];
    const runText = (x: InstallRun) => (x.ok ? fmt(x.seconds, 2) : "fail");
    out.push(
      table(
        ["test", "fw → fw", "Verdaccio → fw"],
        [
          prow("run 1, proxy cache empty, s", (p) => {
            const first = p.runs[0];
            return first ? (first.ok ? `**${fmt(first.seconds, 2)}**` : "fail") : "–";
          }),
          prow("runs 2…, proxy cache warm, s, median (runs)", (p) =>
            p.runs.length > 1 ? `**${fmt(p.warmMedianSeconds, 2)}** (${p.runs.slice(1).map(runText).join(", ")})` : "–",
          ),
          prow("packages installed (run 1)", (p) => fmt(p.runs[0]?.installed ?? undefined)),
          prow("failures", (p) => `${p.failures} of ${p.runs.length}`),
        ],
      ),
    );
  }
  if (r.memory.length > 0) {
    out.push("");
    out.push("**Server memory per phase**: peak RSS (VmHWM, reset at the start of each phase) → RSS at its end, MB");
    out.push("");
    out.push(
      table(
        ["phase", "s", ...present.map(label)],
        r.memory.map((mem) => [
          mem.phase,
          fmt(mem.seconds),
          ...present.map((k) => {
            const s = mem.servers[k];
            return s ? `${fmt(s.peakMB)} → ${fmt(s.endMB)}` : "–";
          }),
        ]),
      ),
    );
    if (r.memory.some((mem) => !mem.resetOk))
      out.push("\n(VmHWM could not be reset here, so each peak includes the phases before it.)");
  }
  if (r.warnings.length > 0) out.push(`\nWarnings: ${r.warnings.join("; ")}`);
  if (r.errors.length > 0) out.push(`\nErrors:\n\n${r.errors.map((e) => `- ${e.split("\n")[0]}`).join("\n")}`);
  return out.join("\n");
}
