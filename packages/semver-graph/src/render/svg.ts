import { type EdgeType, STATUS_LABELS, type VersionGraph, type VersionStatus } from "../graph.js";
import { buildView, collapsedSummary, type ViewItem, type ViewOptions } from "../view.js";

export interface SvgOptions extends ViewOptions {
  /** Row height in pixels (default 28). */
  rowHeight?: number;
  /** Lane column width in pixels (default 22). */
  laneWidth?: number;
}

const STATUS_FILL: Record<VersionStatus | "collapsed", string> = {
  current: "#059669",
  rollback: "#0284c7",
  archived: "#9ca3af",
  deprecated: "#d97706",
  prerelease: "#9333ea",
  unpublished: "#dc2626",
  collapsed: "#ffffff",
};

const EDGE_STROKE: Record<EdgeType, string> = {
  major: "#dc2626",
  minor: "#2563eb",
  patch: "#6b7280",
  prerelease: "#9333ea",
};

function xml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * A standalone SVG for the web UI: one row per version, newest published at the top, so a
 * maintenance release appears where it happened in time; one column per lane (columns are reused
 * once a lane ends); edges coloured by type. No scripts, no external fonts or images.
 */
export function renderSvg(graph: VersionGraph, options: SvgOptions = {}): string {
  const view = buildView(graph, options);
  const rowHeight = options.rowHeight ?? 28;
  const laneWidth = options.laneWidth ?? 22;
  const rows = view.chronological;
  const rowOf = new Map<ViewItem, number>(rows.map((item, index) => [item, index]));
  const age = (item: ViewItem) => rows.length - 1 - (rowOf.get(item) as number);

  // Column per lane: main at 0, others by interval colouring over time (oldest first).
  const column = new Map<string, number>([["main", 0]]);
  const spans = view.lanes
    .filter(({ lane }) => lane.id !== "main")
    .map(({ lane, items }) => {
      const ages = items.map(age);
      const from = lane.branchFrom === null ? undefined : view.itemOf.get(lane.branchFrom);
      return {
        id: lane.id,
        start: from ? age(from) : Math.min(...ages),
        end: Math.max(...ages),
      };
    })
    .sort((a, b) => a.start - b.start);
  const columnEnds: number[] = [Number.POSITIVE_INFINITY];
  for (const span of spans) {
    let col = columnEnds.findIndex((end, index) => index > 0 && end < span.start);
    if (col === -1) {
      col = columnEnds.length;
      columnEnds.push(span.end);
    } else columnEnds[col] = span.end;
    column.set(span.id, col);
  }
  const columns = columnEnds.length;

  const top = 74;
  const left = 20;
  const textX = left + columns * laneWidth + 14;
  const height = top + rows.length * rowHeight + 16;
  const x = (item: ViewItem) => left + (column.get(item.lane) ?? 0) * laneWidth + laneWidth / 2;
  const y = (item: ViewItem) => top + (rowOf.get(item) as number) * rowHeight + rowHeight / 2;

  // The legend first, so the picture is at least as wide as it.
  const legend: string[] = [];
  let legendX = left;
  for (const status of Object.keys(STATUS_LABELS) as VersionStatus[]) {
    legend.push(
      `<circle cx="${legendX + 5}" cy="46" r="5" fill="${STATUS_FILL[status]}"/><text x="${legendX + 14}" y="50" class="m">${STATUS_LABELS[status]}</text>`,
    );
    legendX += 24 + STATUS_LABELS[status].length * 7;
  }
  for (const type of Object.keys(EDGE_STROKE) as EdgeType[]) {
    legend.push(
      `<line x1="${legendX}" y1="46" x2="${legendX + 16}" y2="46" stroke="${EDGE_STROKE[type]}" stroke-width="2"/><text x="${legendX + 20}" y="50" class="m">${type}</text>`,
    );
    legendX += 30 + type.length * 7;
  }
  const width = Math.max(textX + 560, legendX + left);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-labelledby="title">`,
  );
  out.push(`<title id="title">${xml(`${graph.name}: version graph`)}</title>`);
  out.push(
    "<style>text{font-family:ui-sans-serif,system-ui,sans-serif;font-size:12px;fill:#111827}.v{font-family:ui-monospace,monospace;font-weight:600}.m{fill:#6b7280}.t{fill:#1e40af;font-weight:600}.h{font-size:16px;font-weight:700}</style>",
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text class="h" x="${left}" y="24">${xml(graph.name)}</text>`);
  out.push(...legend);

  const byId = new Map<string, ViewItem>();
  for (const item of view.itemOf.values()) byId.set(item.id, item);
  for (const edge of view.edges) {
    const from = byId.get(edge.from) as ViewItem;
    const to = byId.get(edge.to) as ViewItem;
    const [x1, y1, x2, y2] = [x(from), y(from), x(to), y(to)];
    const dash = edge.type === "prerelease" ? ' stroke-dasharray="4 3"' : "";
    let d: string;
    if (x1 === x2) d = `M${x1} ${y1}L${x2} ${y2}`;
    else {
      // Leave the parent's column within one row, then run straight up the child's column.
      const bend = y1 - rowHeight;
      d = `M${x1} ${y1}C${x1} ${round(y1 - rowHeight / 2)} ${x2} ${round(y1 - rowHeight / 2)} ${x2} ${bend}L${x2} ${y2}`;
    }
    out.push(`<path d="${d}" fill="none" stroke="${EDGE_STROKE[edge.type]}" stroke-width="2"${dash}/>`);
  }

  for (const item of rows) {
    const [cx, cy] = [x(item), y(item)];
    const textY = round(cy + 4);
    if (item.kind === "collapsed") {
      out.push(
        `<rect x="${cx - 6}" y="${cy - 6}" width="12" height="12" rx="3" fill="#ffffff" stroke="#6b7280" stroke-dasharray="2 2"/>`,
      );
      out.push(
        `<text x="${textX}" y="${textY}"><tspan class="v">${xml(`${item.first} … ${item.last}`)}</tspan><tspan class="m" dx="10">${xml(collapsedSummary(item))}</tspan></text>`,
      );
      continue;
    }
    const { node } = item;
    const ring =
      node.status === "current" ? ' stroke="#064e3b" stroke-width="3"' : ' stroke="#ffffff" stroke-width="1.5"';
    const tooltip = [
      `${node.version}: ${STATUS_LABELS[node.status]}`,
      node.published && `published ${node.published}`,
      node.publisher && `by ${node.publisher}`,
      node.deprecated && `deprecated: ${node.deprecated}`,
    ]
      .filter(Boolean)
      .join("\n");
    out.push(
      `<circle cx="${cx}" cy="${cy}" r="${node.status === "current" ? 7 : 5.5}" fill="${STATUS_FILL[node.status]}"${ring}><title>${xml(tooltip)}</title></circle>`,
    );
    const parts = [
      `<tspan class="v">${xml(node.version)}</tspan>`,
      `<tspan dx="10" fill="${STATUS_FILL[node.status] === "#9ca3af" ? "#6b7280" : STATUS_FILL[node.status]}">${STATUS_LABELS[node.status]}</tspan>`,
    ];
    if (node.tags.length > 0) parts.push(`<tspan class="t" dx="10">${xml(node.tags.join(" "))}</tspan>`);
    if (node.published) parts.push(`<tspan class="m" dx="10">${xml(node.published.slice(0, 10))}</tspan>`);
    if (node.publisher) parts.push(`<tspan class="m" dx="8">${xml(node.publisher)}</tspan>`);
    out.push(`<text x="${textX}" y="${textY}">${parts.join("")}</text>`);
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
