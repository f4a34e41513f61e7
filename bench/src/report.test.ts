import { describe, expect, it } from "vitest";
import type { DuelResult } from "./measure/duel.ts";
import type { GetResult } from "./measure/http-load.ts";
import { type BenchResult, evaluateGoals, renderMarkdown } from "./report.ts";
import { stats } from "./stats.ts";

function numbersOf(reqPerSec: number, MBps = 1) {
  return { reqPerSec, MBps, latencyMs: { p50: 1, p99: 2 }, non2xx: 0, errors: 0 };
}

function get(kind: GetResult["kind"], c: GetResult["case"], auth: boolean, reqPerSec: number, MBps = 1): GetResult {
  const numbers = { ...numbersOf(reqPerSec, MBps), serverCpuPct: 50 };
  return {
    registry: kind,
    kind,
    case: c,
    auth,
    path: "/x",
    probe: { status: 200, contentType: "", contentEncoding: "gzip", wireBytes: 1, bodyBytes: 1 },
    autocannon: numbers,
    wrk: numbers,
  };
}

function result(partial: Partial<BenchResult>): BenchResult {
  return {
    tool: "t",
    startedAt: "",
    machine: { loadAverageAtStart: [] },
    options: {},
    corpus: { dir: "", tarballs: 0, names: 0, MB: 0 },
    servers: [],
    corpusLoad: [],
    installs: [],
    gets: [],
    publish: [],
    popular: [],
    memory: [],
    warnings: [],
    errors: [],
    ...partial,
  };
}

describe("goals", () => {
  it("compares fw with nginx and Verdaccio by wrk req/s", () => {
    const goals = evaluateGoals(
      result({
        gets: [
          get("fw", "full", false, 30_000),
          get("nginx", "full", false, 100_000),
          get("verdaccio", "full", false, 1_000),
        ],
      }),
    );
    expect(goals.find((g) => g.what === "GET full packument, fw vs nginx (wrk req/s)")?.pass).toBe(false);
    expect(goals.find((g) => g.what === "GET full packument, fw vs Verdaccio (wrk req/s)")?.pass).toBe(true);
  });

  it("checks the same goals for fw on Bun when it ran, on its own numbers", () => {
    const gets = [
      get("fw", "full", false, 20_000),
      get("fw-bun", "full", false, 40_000),
      get("verdaccio", "full", false, 1_000),
    ];
    const without = evaluateGoals(result({ gets }));
    expect(without.some((g) => g.what.includes("fw on Bun"))).toBe(false);
    const servers = [{ kind: "fw-bun" as const, label: "fw on Bun", url: "", pid: 1 }];
    const goals = evaluateGoals(result({ gets, servers }));
    expect(goals.find((g) => g.what === "GET full packument, fw vs Verdaccio (wrk req/s)")?.pass).toBe(false);
    const bun = goals.find((g) => g.what === "GET full packument, fw on Bun vs Verdaccio (wrk req/s)");
    expect(bun).toMatchObject({ pass: true, measured: "40.00× (40,000 vs 1,000)" });
  });

  it("compares authenticated with anonymous GETs round by round, by the median of the rounds' ratios", () => {
    // The server's CPU at 90 % in every round: its CPU time per request is 90 % of a second over req/s.
    const rounds = (...perSecond: number[]) =>
      perSecond.map((reqPerSec) => ({ ...numbersOf(reqPerSec), serverCpuPct: 90 }));
    // Medians taken apart would say 0.80× (12,000 vs 15,000); the rounds, each run back to back, say 0.93×.
    const anon = {
      ...get("fw", "abbreviated", false, 15_000),
      wrkRounds: rounds(20_000, 15_000, 16_000, 10_000, 13_000),
    };
    const auth = {
      ...get("fw", "abbreviated", true, 12_000),
      wrkRounds: rounds(19_000, 14_000, 12_000, 9_500, 10_000),
    };
    const goals = evaluateGoals(result({ gets: [anon, auth] }));
    expect(goals.find((g) => g.what.startsWith("GET abbreviated, fw authenticated vs anonymous"))).toMatchObject({
      pass: true,
      measured: "0.93× (median of 5 rounds: 0.95, 0.93, 0.75, 0.95, 0.77; by server CPU per request 0.80×)",
    });
    // Without rounds (an older result), the median rounds are compared.
    const plain = evaluateGoals(result({ gets: [get("fw", "full", false, 15_000), get("fw", "full", true, 12_000)] }));
    expect(plain.find((g) => g.what.startsWith("GET full, fw authenticated vs anonymous"))).toMatchObject({
      pass: false,
      measured: "0.80× (12,000 vs 15,000)",
    });
  });

  it("judges authenticated against anonymous by the duel when it ran, with the control and the back-to-back rounds beside it", () => {
    const rounds = (...perSecond: number[]) =>
      perSecond.map((reqPerSec) => ({ ...numbersOf(reqPerSec), serverCpuPct: 90 }));
    const anon = { ...get("fw", "abbreviated", false, 15_000), wrkRounds: rounds(20_000, 15_000, 16_000) };
    const auth = { ...get("fw", "abbreviated", true, 12_000), wrkRounds: rounds(16_000, 12_000, 12_800) };
    const duel = (control: boolean, ...ratios: number[]): DuelResult => ({
      kind: "fw",
      case: "abbreviated",
      control,
      path: "/express",
      connections: 25,
      seconds: 4,
      rounds: ratios.map((ratio, i) => ({
        round: i + 1,
        subjectOn: i % 2 ? "b" : "a",
        subjectReqPerSec: 10_000 * ratio,
        anonymousReqPerSec: 10_000,
        ratio,
      })),
      pairs: ratios,
      median: [...ratios].sort((a, b) => a - b)[Math.floor(ratios.length / 2)] as number,
      min: Math.min(...ratios),
      max: Math.max(...ratios),
    });
    const goals = evaluateGoals(
      result({ gets: [anon, auth], duels: [duel(false, 0.94, 0.97, 0.95), duel(true, 0.99, 1.01, 0.98)] }),
    );
    expect(goals.find((g) => g.what.startsWith("GET abbreviated, fw authenticated vs anonymous"))).toEqual({
      what: "GET abbreviated, fw authenticated vs anonymous (wrk req/s, two replicas sharing a core)",
      target: "≥ 0.90×",
      measured:
        "0.95× (median of 3 pairs of rounds: 0.94, 0.97, 0.95; control, both anonymous (abbreviated): 0.99×; back-to-back rounds on one server: 0.80×)",
      pass: true,
    });
    // A duel below the goal misses it, whatever the back-to-back rounds say.
    const missed = evaluateGoals(result({ gets: [anon, anon], duels: [duel(false, 0.85, 0.88, 0.86)] }));
    expect(missed.find((g) => g.what.startsWith("GET abbreviated, fw authenticated"))?.pass).toBe(false);
    // Cases the duel did not measure keep the rounds' judgement.
    expect(goals.find((g) => g.what.startsWith("GET full, fw authenticated"))?.what).toContain("rounds paired");
  });

  it("reports goals whose phase did not run as not measured", () => {
    const goals = evaluateGoals(result({}));
    expect(goals.every((g) => g.pass === null && g.measured === "not measured")).toBe(true);
  });

  it("checks publish latency at each checkpoint and the peak RSS over all phases", () => {
    const goals = evaluateGoals(
      result({
        publish: [
          {
            kind: "fw",
            registry: "fw",
            name: "p",
            seconds: 1,
            seeding: [],
            points: [
              { existing: 1, latencyMs: stats([4, 4, 6]) },
              { existing: 500, latencyMs: stats([11, 12, 13]) },
            ],
          },
        ],
        memory: [
          { phase: "a", seconds: 1, resetOk: true, servers: { fw: { peakMB: 90, endMB: 80, sampledMaxMB: 85 } } },
          { phase: "b", seconds: 1, resetOk: true, servers: { fw: { peakMB: 170, endMB: 80, sampledMaxMB: 160 } } },
        ],
      }),
    );
    expect(goals.find((g) => g.what.startsWith("publish with 1 "))?.pass).toBe(true);
    expect(goals.find((g) => g.what.startsWith("publish with 500 "))?.pass).toBe(false);
    expect(goals.find((g) => g.what.startsWith("publish with 2,000 "))?.pass).toBe(null);
    const rss = goals.find((g) => g.what.startsWith("fw peak RSS"));
    expect(rss?.pass).toBe(false);
    expect(rss?.measured).toContain("(b)");
  });
});

describe("proxy table", () => {
  it("shows the cold-cache run and the median of the later runs for fw → fw and Verdaccio → fw", () => {
    const run = (seconds: number, ok = true) => ({ seconds, ok, installed: 418 });
    const markdown = renderMarkdown(
      result({
        proxy: [
          {
            kind: "fw",
            registry: "fw",
            upstream: "fw",
            runs: [run(8), run(5), run(6)],
            firstSeconds: 8,
            warmMedianSeconds: 5.5,
            medianSeconds: 6,
            failures: 0,
          },
          {
            kind: "verdaccio",
            registry: "Verdaccio",
            upstream: "fw",
            runs: [run(10, false)],
            firstSeconds: Number.NaN,
            warmMedianSeconds: Number.NaN,
            medianSeconds: Number.NaN,
            failures: 1,
          },
        ],
      }),
      { command: "x" },
    );
    expect(markdown).toContain("| run 1, proxy cache empty, s | **8.00** | fail |");
    expect(markdown).toContain("| runs 2…, proxy cache warm, s, median (runs) | **5.50** (5.00, 6.00) | – |");
    expect(markdown).toContain("| failures | 0 of 3 | 1 of 1 |");
  });

  it("leaves the table out when the phase did not run", () => {
    expect(renderMarkdown(result({}), { command: "x" })).not.toContain("Through a proxy");
  });
});
