import { stripVTControlCharacters } from "node:util";
import { Window } from "happy-dom";
import { beforeAll, describe, expect, it } from "vitest";
import {
  buildVersionGraph,
  buildView,
  renderAscii,
  renderJson,
  renderMermaid,
  renderSvg,
  toD3,
  type VersionGraph,
} from "../src/index.js";
import { fixture } from "./fixtures.js";
import { syntheticPackument } from "./synthetic.js";

const widget = buildVersionGraph(fixture("widget"));
const many = buildVersionGraph(fixture("many-versions"));
const big = buildVersionGraph(syntheticPackument("big", 3000));

/** Mermaid's own parser (the one mermaid.render runs first), under happy-dom since it needs a DOM for DOMPurify. */
let mermaidParse: (text: string) => Promise<unknown>;
const window = new Window();
beforeAll(async () => {
  Object.assign(globalThis, { window, document: window.document });
  const { default: mermaid } = await import("mermaid");
  mermaid.initialize({ startOnLoad: false });
  mermaidParse = (text) => mermaid.parse(text);
}, 60_000);

function parseSvg(svg: string): Element {
  const doc = new window.DOMParser().parseFromString(svg, "image/svg+xml");
  expect(doc.querySelector("parsererror")).toBeNull();
  return doc.documentElement as unknown as Element;
}

describe("renderAscii", () => {
  it("draws the design document's tree, lanes nested under where they started", async () => {
    await expect(renderAscii(widget)).toMatchFileSnapshot("__snapshots__/widget.ascii.txt");
    await expect(renderAscii(many)).toMatchFileSnapshot("__snapshots__/many-versions.ascii.txt");
    await expect(renderAscii(many, { all: true })).toMatchFileSnapshot("__snapshots__/many-versions.all.ascii.txt");
  });

  it("stacks entries that do not fit and cuts long text to the width", async () => {
    const narrow = renderAscii(widget, { width: 48 });
    await expect(narrow).toMatchFileSnapshot("__snapshots__/widget.48.ascii.txt");
    for (const line of narrow.trimEnd().split("\n")) expect([...line].length, line).toBeLessThanOrEqual(48);
    expect(narrow).toContain("│   deprecated: leaks file handles; use 2.2.1");
  });

  it("colours only when asked", async () => {
    expect(renderAscii(widget)).not.toContain("\u001b[");
    const coloured = renderAscii(widget, { color: true });
    await expect(coloured).toMatchFileSnapshot("__snapshots__/widget.color.ascii.txt");
    expect(coloured).toContain("\u001b[1m\u001b[32m[Current]");
    expect(stripVTControlCharacters(coloured)).toBe(renderAscii(widget));
  });

  it("keeps a 3,000-version history readable: collapsed by default, whole with all", () => {
    const folded = renderAscii(big, { width: 100 }).trimEnd().split("\n");
    expect(folded.length).toBeLessThan(300);
    expect(folded[2]).toMatch(
      /^3000 versions · latest \d+\.\d+\.\d+ · \d+ other lanes · \d+ collapsed \(--all shows them\)$/,
    );
    for (const line of folded) expect([...line].length).toBeLessThanOrEqual(100);
    const whole = renderAscii(big, { all: true, width: 100 });
    expect(whole.match(/\bv\d+\.\d+\.\d+\S*\s+\[/g)).toHaveLength(3000);
  });
});

describe("collapsing", () => {
  it("never hides a tagged, Current, Rollback Ready, recent or branching version", () => {
    for (const graph of [many, big]) {
      const view = buildView(graph);
      expect(view.hidden).toBeGreaterThan(0);
      const visible = new Set(
        [...view.itemOf.values()].flatMap((item) => (item.kind === "version" ? [item.node.version] : [])),
      );
      for (const node of graph.nodes) {
        if (node.tags.length > 0 || node.status === "current" || node.status === "rollback")
          expect(visible.has(node.version), node.version).toBe(true);
      }
      for (const lane of graph.lanes) if (lane.branchFrom) expect(visible.has(lane.branchFrom)).toBe(true);
    }
    expect(buildView(widget).hidden).toBe(0);
    expect(buildView(widget, { collapseAbove: 0 }).hidden).toBe(3);
  });
});

describe("renderMermaid", () => {
  it("writes a flowchart that Mermaid parses", async () => {
    const text = renderMermaid(widget);
    await expect(text).toMatchFileSnapshot("__snapshots__/widget.mmd");
    await expect(mermaidParse(text)).resolves.toMatchObject({ diagramType: "flowchart-v2" });
    for (const graph of [many, big]) await expect(mermaidParse(renderMermaid(graph))).resolves.toBeTruthy();
    await expect(mermaidParse(renderMermaid(many, { all: true, direction: "LR" }))).resolves.toBeTruthy();
    await expect(renderMermaid(many)).toMatchFileSnapshot("__snapshots__/many-versions.mmd");
  });

  it("stays under Mermaid's default 500 edges for 3,000 versions", () => {
    expect(renderMermaid(big).match(/-->/g)?.length).toBeLessThan(500);
  });

  it("is refused by the parser when broken, so the check above means something", async () => {
    // The design document's own example: a node with two shapes.
    await expect(mermaidParse('graph TD\n  v4_17_19["4.17.19"][[Archived]]\n')).rejects.toThrow(/Parse error/);
  });

  it("escapes what could end a label", async () => {
    const odd: VersionGraph = buildVersionGraph({
      name: "odd",
      "dist-tags": { latest: "1.0.0", 'we"ird<tag>': "1.0.0" },
      versions: { "1.0.0": {} },
    });
    const text = renderMermaid(odd);
    expect(text).toContain('[["we#quot;ird#lt;tag#gt;"]]');
    await expect(mermaidParse(text)).resolves.toBeTruthy();
  });
});

describe("renderJson / toD3", () => {
  it("gives D3 nodes and links in the design document's shape", async () => {
    await expect(renderJson(widget)).toMatchFileSnapshot("__snapshots__/widget.d3.generated.json");
    const d3 = toD3(widget);
    expect(d3).toMatchObject({ name: "@fixtures/widget", current: "2.3.2" });
    expect(d3.nodes[0]).toEqual({
      id: "2.3.2",
      kind: "version",
      status: "current",
      tags: ["latest"],
      lane: "main",
      published: "2023-01-25T03:00:00.000Z",
      publisher: "alice",
      deprecated: null,
    });
    const ids = new Set(d3.nodes.map((node) => node.id));
    for (const link of d3.links) expect(ids.has(link.source) && ids.has(link.target)).toBe(true);
  });

  it("keeps collapsed runs as one node that lists its versions", () => {
    const d3 = toD3(many);
    const run = d3.nodes.find((node) => node.kind === "collapsed");
    expect(run).toMatchObject({ status: "collapsed", lane: "main" });
    expect(run?.versions?.length).toBeGreaterThanOrEqual(3);
    const shown = d3.nodes.reduce((sum, node) => sum + (node.versions?.length ?? 1), 0);
    expect(shown).toBe(137);
  });
});

describe("renderSvg", () => {
  it("draws a well-formed SVG with one mark per version and one path per edge", async () => {
    const svg = renderSvg(widget);
    await expect(svg).toMatchFileSnapshot("__snapshots__/widget.svg");
    const root = parseSvg(svg);
    expect(root.tagName.toLowerCase()).toBe("svg");
    expect(root.querySelectorAll("circle > title")).toHaveLength(22);
    expect(root.querySelectorAll("path")).toHaveLength(21);
    expect(svg).not.toMatch(/<script|href=/);
    await expect(renderSvg(many)).toMatchFileSnapshot("__snapshots__/many-versions.svg");
  });

  it("escapes text and stays well-formed for 3,000 versions", () => {
    const odd = buildVersionGraph({
      name: "<odd & co>",
      "dist-tags": { latest: "1.0.0" },
      versions: { "1.0.0": { deprecated: 'use "2" & <more>' } },
    });
    expect(parseSvg(renderSvg(odd)).querySelector("title")?.textContent).toBe("<odd & co>: version graph");
    parseSvg(renderSvg(big));
  });
});
