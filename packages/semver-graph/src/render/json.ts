import type { EdgeType, VersionGraph, VersionStatus } from "../graph.js";
import { buildView, type ViewOptions } from "../view.js";

export interface D3Node {
  /** The version, or `first..last` for a collapsed run. */
  id: string;
  kind: "version" | "collapsed";
  status: VersionStatus | "collapsed";
  tags: string[];
  lane: string;
  published: string | null;
  publisher: string | null;
  deprecated: string | null;
  /** The versions a collapsed run holds (absent on versions). */
  versions?: string[];
}

export interface D3Link {
  source: string;
  target: string;
  type: EdgeType;
}

/** The design document's D3 shape (`name`, `current`, `nodes`, `links`) plus lanes and dist-tags. */
export interface D3Graph {
  name: string;
  current: string | null;
  distTags: Record<string, string>;
  lanes: { id: string; kind: string; label: string; branchFrom: string | null; versions: number }[];
  nodes: D3Node[];
  links: D3Link[];
}

/** The graph as plain data for D3's force and tree layouts; nodes newest-published first. */
export function toD3(graph: VersionGraph, options: ViewOptions = {}): D3Graph {
  const view = buildView(graph, options);
  const nodes: D3Node[] = view.chronological.map((item) =>
    item.kind === "version"
      ? {
          id: item.id,
          kind: "version",
          status: item.node.status,
          tags: item.node.tags,
          lane: item.lane,
          published: item.node.published,
          publisher: item.node.publisher,
          deprecated: item.node.deprecated,
        }
      : {
          id: item.id,
          kind: "collapsed",
          status: "collapsed",
          tags: [],
          lane: item.lane,
          published: item.nodes.at(-1)?.published ?? null,
          publisher: null,
          deprecated: null,
          versions: item.nodes.map((node) => node.version),
        },
  );
  return {
    name: graph.name,
    current: graph.current,
    distTags: graph.distTags,
    lanes: graph.lanes.map((lane) => ({
      id: lane.id,
      kind: lane.kind,
      label: lane.label,
      branchFrom: lane.branchFrom,
      versions: lane.versions.length,
    })),
    nodes,
    links: view.edges.map((edge) => ({ source: edge.from, target: edge.to, type: edge.type })),
  };
}

/** {@link toD3} as indented JSON text. */
export function renderJson(graph: VersionGraph, options: ViewOptions = {}): string {
  return `${JSON.stringify(toD3(graph, options), null, 2)}\n`;
}
