import { describe, expect, it } from "vitest";
import type { GetResult } from "./measure/http-load.ts";
import { type BenchResult, evaluateGoals } from "./report.ts";
import { stats } from "./stats.ts";

function get(kind: GetResult["kind"], c: GetResult["case"], auth: boolean, reqPerSec: number, MBps = 1): GetResult {
  const numbers = { reqPerSec, MBps, latencyMs: { p50: 1, p99: 2 }, non2xx: 0, errors: 0, serverCpuPct: 50 };
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
