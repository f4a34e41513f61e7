/**
 * `pnpm --filter @fw/semver-graph bench` (after `build`): how long a 3,000-version history takes to
 * graph and draw. Prints a table; asserts nothing.
 */
import { performance } from "node:perf_hooks";
import { buildVersionGraph, renderAscii, renderMermaid, renderSvg, toD3 } from "../dist/index.js";
import { syntheticPackument } from "../test/synthetic.ts";

const versions = Number(process.argv[2] ?? 3000);
const packument = syntheticPackument("big", versions);
const graph = buildVersionGraph(packument);

const cases: [string, () => unknown][] = [
  ["buildVersionGraph", () => buildVersionGraph(packument)],
  ["build + ASCII (collapsed)", () => renderAscii(buildVersionGraph(packument), { width: 120 })],
  ["build + SVG (collapsed)", () => renderSvg(buildVersionGraph(packument))],
  ["ASCII (collapsed)", () => renderAscii(graph, { width: 120 })],
  ["ASCII --all", () => renderAscii(graph, { width: 120, all: true })],
  ["SVG (collapsed)", () => renderSvg(graph)],
  ["SVG --all", () => renderSvg(graph, { all: true })],
  ["Mermaid (collapsed)", () => renderMermaid(graph)],
  ["D3 JSON (collapsed)", () => toD3(graph)],
];

function measure(run: () => unknown): { runs: number; median: number; p95: number } {
  for (let i = 0; i < 3; i++) run();
  const times: number[] = [];
  const until = performance.now() + 1_000;
  while (times.length < 5 || (performance.now() < until && times.length < 200)) {
    const start = performance.now();
    run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
  return { runs: times.length, median: at(0.5), p95: at(0.95) };
}

console.log(`${versions} versions, ${graph.lanes.length} lanes; Node ${process.version}`);
console.log(`${"case".padEnd(28)}${"median ms".padStart(11)}${"p95 ms".padStart(10)}${"runs".padStart(7)}`);
for (const [name, run] of cases) {
  const { runs, median, p95 } = measure(run);
  console.log(
    `${name.padEnd(28)}${median.toFixed(2).padStart(11)}${p95.toFixed(2).padStart(10)}${String(runs).padStart(7)}`,
  );
}
const sizes = {
  "ASCII lines (collapsed)": renderAscii(graph, { width: 120 }).split("\n").length - 1,
  "ASCII lines (--all)": renderAscii(graph, { width: 120, all: true }).split("\n").length - 1,
  "SVG KiB (collapsed)": Math.round(renderSvg(graph).length / 1024),
  "SVG KiB (--all)": Math.round(renderSvg(graph, { all: true }).length / 1024),
  "Mermaid edges (collapsed)": renderMermaid(graph).match(/-->/g)?.length ?? 0,
};
for (const [name, value] of Object.entries(sizes)) console.log(`${name.padEnd(28)}${String(value).padStart(11)}`);
