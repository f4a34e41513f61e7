import type { EdgeType, Lane, VersionGraph, VersionNode } from "./graph.js";

export interface ViewOptions {
  /** Show every version (`--all`). Default false: old runs of patches and pre-releases are collapsed. */
  all?: boolean;
  /** The most recently published versions that are never collapsed. Default 10. */
  keepRecent?: number;
  /** The shortest run worth collapsing. Default 3. */
  minRun?: number;
  /** Histories of at most this many versions are always shown whole. Default 40. */
  collapseAbove?: number;
}

export type ViewItem =
  | { kind: "version"; id: string; lane: string; node: VersionNode }
  | {
      kind: "collapsed";
      /** `first..last`. */
      id: string;
      lane: string;
      /** In semver order. */
      nodes: VersionNode[];
      first: string;
      last: string;
      /** How many of them are deprecated or unpublished, so hiding them hides no warning silently. */
      deprecated: number;
      unpublished: number;
    };

export interface ViewEdge {
  from: string;
  to: string;
  type: EdgeType;
}

export interface LaneView {
  lane: Lane;
  /** In semver order. */
  items: ViewItem[];
}

/** What renderers draw: the graph's lanes with runs of unremarkable versions folded into one item. */
export interface GraphView {
  graph: VersionGraph;
  lanes: LaneView[];
  edges: ViewEdge[];
  /** Item of every version (a collapsed version maps to its run). */
  itemOf: Map<string, ViewItem>;
  /** Items newest-published first. */
  chronological: ViewItem[];
  /** Versions hidden inside collapsed runs. */
  hidden: number;
}

/**
 * A run groups versions of one MAJOR.MINOR at or above the current major, of one MAJOR below it
 * (old majors fold to their first and last release), or of one pre-release line, inside one lane.
 */
function grouper(currentMajor: number): (node: VersionNode) => string {
  return (node) => {
    if (node.prerelease.length > 0) return `${node.major}.${node.minor}.${node.patch}-pre`;
    return node.major >= currentMajor ? `${node.major}.${node.minor}` : `${node.major}`;
  };
}

function publishOrder(graph: VersionGraph): VersionNode[] {
  const time = (node: VersionNode) => {
    const ms = node.published === null ? Number.NaN : Date.parse(node.published);
    return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
  };
  const index = new Map(graph.nodes.map((node, i) => [node.version, i]));
  return [...graph.nodes].sort(
    (a, b) => time(a) - time(b) || (index.get(a.version) as number) - (index.get(b.version) as number),
  );
}

/**
 * Folds the graph for drawing. A version stays visible when it is tagged, Current or Rollback
 * Ready, a point another lane grows from or into, among the `keepRecent` newest published, or the
 * first or last of its group in its lane — its MAJOR.MINOR from the current major up, its MAJOR
 * below that, its MAJOR.MINOR.PATCH for pre-releases. Runs of `minRun` or more other versions in a
 * row (same lane, same group) become one item.
 */
export function buildView(graph: VersionGraph, options: ViewOptions = {}): GraphView {
  const keepRecent = options.keepRecent ?? 10;
  const minRun = options.minRun ?? 3;
  const all = options.all === true || graph.nodes.length <= (options.collapseAbove ?? 40);
  const top = graph.current ?? graph.nodes.findLast((node) => node.prerelease.length === 0)?.version;
  const groupKey = grouper(top === undefined ? 0 : (graph.nodes.find((node) => node.version === top)?.major ?? 0));
  const byVersion = new Map(graph.nodes.map((node) => [node.version, node]));
  const chronologicalNodes = publishOrder(graph);
  const recent = new Set(chronologicalNodes.slice(-keepRecent).map((node) => node.version));
  const crossLane = new Set<string>();
  for (const edge of graph.edges) {
    const from = byVersion.get(edge.from);
    const to = byVersion.get(edge.to);
    if (from && to && from.lane !== to.lane) {
      crossLane.add(edge.from);
      crossLane.add(edge.to);
    }
  }

  const itemOf = new Map<string, ViewItem>();
  const lanes: LaneView[] = [];
  let hidden = 0;
  for (const lane of graph.lanes) {
    const nodes = lane.versions.map((version) => byVersion.get(version) as VersionNode);
    const keep = (node: VersionNode, index: number): boolean => {
      if (all) return true;
      if (node.tags.length > 0 || node.status === "current" || node.status === "rollback") return true;
      if (recent.has(node.version) || crossLane.has(node.version)) return true;
      const before = nodes[index - 1];
      const after = nodes[index + 1];
      return !before || !after || groupKey(before) !== groupKey(node) || groupKey(after) !== groupKey(node);
    };
    const items: ViewItem[] = [];
    let run: VersionNode[] = [];
    const flush = () => {
      if (run.length >= minRun) {
        const first = (run[0] as VersionNode).version;
        const last = (run.at(-1) as VersionNode).version;
        const item: ViewItem = {
          kind: "collapsed",
          id: `${first}..${last}`,
          lane: lane.id,
          nodes: run,
          first,
          last,
          deprecated: run.filter((node) => node.status === "deprecated").length,
          unpublished: run.filter((node) => node.status === "unpublished").length,
        };
        items.push(item);
        for (const node of run) itemOf.set(node.version, item);
        hidden += run.length;
      } else {
        for (const node of run) {
          const item: ViewItem = { kind: "version", id: node.version, lane: lane.id, node };
          items.push(item);
          itemOf.set(node.version, item);
        }
      }
      run = [];
    };
    nodes.forEach((node, index) => {
      if (run.length > 0 && groupKey(run[0] as VersionNode) !== groupKey(node)) flush();
      if (keep(node, index)) {
        flush();
        const item: ViewItem = { kind: "version", id: node.version, lane: lane.id, node };
        items.push(item);
        itemOf.set(node.version, item);
      } else {
        run.push(node);
      }
    });
    flush();
    lanes.push({ lane, items });
  }

  const edges: ViewEdge[] = [];
  const seen = new Set<string>();
  for (const edge of graph.edges) {
    const from = itemOf.get(edge.from);
    const to = itemOf.get(edge.to);
    if (!from || !to || from === to) continue;
    const key = `${from.id}\n${to.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    edges.push({ from: from.id, to: to.id, type: edge.type });
  }

  const chronological: ViewItem[] = [];
  const placed = new Set<ViewItem>();
  for (let index = chronologicalNodes.length - 1; index >= 0; index--) {
    const item = itemOf.get((chronologicalNodes[index] as VersionNode).version) as ViewItem;
    if (placed.has(item)) continue;
    placed.add(item);
    chronological.push(item);
  }
  return { graph, lanes, edges, itemOf, chronological, hidden };
}

/** `1.0.1 … 1.0.14` for a collapsed run, the version otherwise. */
export function itemTitle(item: ViewItem): string {
  return item.kind === "version" ? item.node.version : `${item.first} … ${item.last}`;
}

/** "14 versions, 2 deprecated" for a collapsed run. */
export function collapsedSummary(item: Extract<ViewItem, { kind: "collapsed" }>): string {
  const parts = [`${item.nodes.length} versions`];
  if (item.deprecated > 0) parts.push(`${item.deprecated} deprecated`);
  if (item.unpublished > 0) parts.push(`${item.unpublished} unpublished`);
  return parts.join(", ");
}
