import { STATUS_LABELS, type VersionGraph, type VersionStatus } from "../graph.js";
import { buildView, collapsedSummary, type ViewItem, type ViewOptions } from "../view.js";

export interface MermaidOptions extends ViewOptions {
  /** `TD` (default, newest at the bottom) or `LR`. */
  direction?: "TD" | "LR";
}

const CLASS_DEFS: Record<VersionStatus | "collapsed" | "tag", string> = {
  current: "fill:#d1fae5,stroke:#047857,stroke-width:3px,color:#064e3b",
  rollback: "fill:#e0f2fe,stroke:#0369a1,color:#0c4a6e",
  archived: "fill:#f3f4f6,stroke:#9ca3af,color:#374151",
  deprecated: "fill:#fef3c7,stroke:#b45309,color:#78350f",
  prerelease: "fill:#f3e8ff,stroke:#7e22ce,color:#581c87",
  unpublished: "fill:#fee2e2,stroke:#b91c1c,color:#7f1d1d,stroke-dasharray:4 3",
  collapsed: "fill:#ffffff,stroke:#9ca3af,stroke-dasharray:2 2,color:#6b7280",
  tag: "fill:#1e3a8a,stroke:#1e3a8a,color:#ffffff",
};

/** Node shape by status, so the picture reads without colour too. */
function shape(status: VersionStatus | "collapsed", label: string): string {
  switch (status) {
    case "current":
      return `(["${label}"])`;
    case "rollback":
      return `("${label}")`;
    case "prerelease":
      return `{{"${label}"}}`;
    case "deprecated":
      return `[/"${label}"/]`;
    case "collapsed":
      return `[["${label}"]]`;
    default:
      return `["${label}"]`;
  }
}

/** Text inside a quoted Mermaid label: quotes and angle brackets as entity codes. */
function escapeLabel(text: string): string {
  return text.replace(/"/g, "#quot;").replace(/</g, "#lt;").replace(/>/g, "#gt;");
}

/** Ids Mermaid accepts anywhere: letters, digits and underscores, unique. */
function idMaker(): (prefix: string, text: string) => string {
  const used = new Set<string>();
  return (prefix, text) => {
    const base = `${prefix}${text.replace(/[^A-Za-z0-9]/g, "_")}`;
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
    used.add(id);
    return id;
  };
}

/**
 * A Mermaid flowchart: one subgraph per lane, nodes shaped and coloured by status, edges labelled
 * with their type, and each dist-tag as a node pointing at its version. Checked with `mermaid.parse`
 * in the tests. Mermaid draws at most 500 edges unless the page raises `maxEdges`: keep the default
 * collapsing for long histories.
 */
export function renderMermaid(graph: VersionGraph, options: MermaidOptions = {}): string {
  const view = buildView(graph, options);
  const makeId = idMaker();
  const ids = new Map<string, string>();
  for (const item of view.itemOf.values()) if (!ids.has(item.id)) ids.set(item.id, makeId("v", item.id));

  const lines = [`flowchart ${options.direction ?? "TD"}`];
  const byStatus = new Map<string, string[]>();
  // Two lines: what it is, then its status (or how many versions a collapsed run holds).
  const label = (item: ViewItem): { status: VersionStatus | "collapsed"; text: string } => {
    if (item.kind === "collapsed") {
      return {
        status: "collapsed",
        text: `${escapeLabel(`${item.first} … ${item.last}`)}<br/>${escapeLabel(collapsedSummary(item))}`,
      };
    }
    const { node } = item;
    return { status: node.status, text: `${escapeLabel(node.version)}<br/>${STATUS_LABELS[node.status]}` };
  };
  for (const { lane, items } of view.lanes) {
    lines.push(`  subgraph ${makeId("lane_", lane.id)} ["${escapeLabel(lane.label)}"]`);
    for (const item of items) {
      const { status, text } = label(item);
      const id = ids.get(item.id) as string;
      lines.push(`    ${id}${shape(status, text)}`);
      const list = byStatus.get(status) ?? [];
      list.push(id);
      byStatus.set(status, list);
    }
    lines.push("  end");
  }
  for (const edge of view.edges) {
    lines.push(`  ${ids.get(edge.from)} -->|${edge.type}| ${ids.get(edge.to)}`);
  }
  const tagIds: string[] = [];
  for (const [tag, version] of Object.entries(graph.distTags)) {
    const item = view.itemOf.get(version);
    if (!item) continue;
    const id = makeId("tag_", tag);
    tagIds.push(id);
    lines.push(`  ${id}[["${escapeLabel(tag)}"]] -.-> ${ids.get(item.id)}`);
  }
  for (const [name, style] of Object.entries(CLASS_DEFS)) lines.push(`  classDef ${name} ${style}`);
  for (const [status, list] of byStatus) lines.push(`  class ${list.join(",")} ${status}`);
  if (tagIds.length > 0) lines.push(`  class ${tagIds.join(",")} tag`);
  return `${lines.join("\n")}\n`;
}
