import { createColors } from "picocolors";
import { type Lane, STATUS_LABELS, type VersionGraph, type VersionStatus } from "../graph.js";
import { buildView, collapsedSummary, type ViewItem, type ViewOptions } from "../view.js";

export interface AsciiOptions extends ViewOptions {
  /** Columns available (default 80); entries that do not fit on one line are stacked, longer text is cut with "…". */
  width?: number;
  /** ANSI colours (default false). The CLI turns them on for a terminal unless NO_COLOR is set. */
  color?: boolean;
}

type Paint = (text: string) => string;

function statusPaint(colors: ReturnType<typeof createColors>): Record<VersionStatus | "collapsed", Paint> {
  return {
    current: (text) => colors.bold(colors.green(text)),
    rollback: colors.cyan,
    archived: colors.dim,
    deprecated: colors.yellow,
    prerelease: colors.magenta,
    unpublished: (text) => colors.red(colors.strikethrough(text)),
    collapsed: colors.dim,
  };
}

/** Cuts `text` to `width` characters, ending with "…" when cut. */
function fit(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 1 ? "…".slice(0, Math.max(0, width)) : `${chars.slice(0, width - 1).join("")}…`;
}

const visible = (text: string) => [...text].length;

/**
 * The graph as a tree for a terminal, newest first, as in the design document: the main line at the
 * top level, each maintenance or pre-release lane nested under the version it grew from. Old runs
 * of patches are collapsed unless `all` is set.
 */
export function renderAscii(graph: VersionGraph, options: AsciiOptions = {}): string {
  const width = Math.max(40, options.width ?? 80);
  const colors = createColors(options.color ?? false);
  const paint = statusPaint(colors);
  const view = buildView(graph, options);

  const lanesFrom = new Map<string, Lane[]>();
  const roots: Lane[] = [];
  for (const { lane } of view.lanes) {
    if (lane.id === "main") continue;
    const from = lane.branchFrom === null ? undefined : view.itemOf.get(lane.branchFrom);
    if (!from) {
      roots.push(lane);
      continue;
    }
    const list = lanesFrom.get(from.id) ?? [];
    list.push(lane);
    lanesFrom.set(from.id, list);
  }
  const itemsOf = new Map(view.lanes.map((laneView) => [laneView.lane.id, laneView.items]));

  const title = (item: ViewItem) =>
    item.kind === "version" ? `v${item.node.version}` : `v${item.first} … v${item.last}`;
  // Columns line up across versions; a collapsed run's longer title just takes the room it needs.
  const shown = graph.nodes.filter((node) => view.itemOf.get(node.version)?.kind === "version");
  const titleWidth = Math.max(...shown.map((node) => node.version.length + 1), 0);
  const badgeWidth = Math.max(...shown.map((node) => STATUS_LABELS[node.status].length + 2), 0);
  const publisherWidth = Math.max(...shown.map((node) => (node.publisher ?? "").length), 0);

  const lines: string[] = [];
  const header = graph.name;
  lines.push(colors.bold(fit(header, width)));
  lines.push("=".repeat(Math.min(50, width)));
  const summary = [`${graph.nodes.length} version${graph.nodes.length === 1 ? "" : "s"}`];
  if (graph.current) summary.push(`latest ${graph.current}`);
  const otherLanes = graph.lanes.filter((lane) => lane.id !== "main").length;
  if (otherLanes > 0) summary.push(`${otherLanes} other lane${otherLanes === 1 ? "" : "s"}`);
  if (view.hidden > 0) summary.push(`${view.hidden} collapsed (--all shows them)`);
  lines.push(colors.dim(fit(summary.join(" · "), width)));
  lines.push("");

  const entry = (item: ViewItem, branch: string, cont: string) => {
    const date = item.kind === "version" ? (item.node.published?.slice(0, 10) ?? "") : "";
    const publisher = item.kind === "version" ? (item.node.publisher ?? "") : "";
    const tags = item.kind === "version" ? item.node.tags : [];
    const status = item.kind === "version" ? item.node.status : "collapsed";
    const badge = item.kind === "version" ? `[${STATUS_LABELS[item.node.status]}]` : `(${collapsedSummary(item)})`;
    const name = title(item);
    const tagText = tags.join(" ");
    const oneLine = [
      branch,
      name.padEnd(titleWidth),
      "  ",
      badge.padEnd(badgeWidth),
      date ? `  ${date}` : "",
      publisher ? `  ${publisher.padEnd(publisherWidth)}` : "",
      tagText ? `  ${tagText}` : "",
    ].join("");
    const paintName = (text: string) => (status === "current" ? colors.bold(text) : text);
    if (visible(oneLine.trimEnd()) <= width) {
      lines.push(
        [
          branch,
          paintName(name.padEnd(titleWidth)),
          "  ",
          paint[status](badge.padEnd(badgeWidth)),
          date ? `  ${colors.dim(date)}` : "",
          publisher ? `  ${publisher.padEnd(publisherWidth)}` : "",
          tagText ? `  ${colors.blue(tagText)}` : "",
        ]
          .join("")
          .trimEnd(),
      );
    } else {
      // The design document's stacked layout: name, status and tags; then date and publisher.
      const first = `${name}  ${badge}${tagText ? ` ${tagText}` : ""}`;
      const room = width - visible(branch);
      const cut = fit(first, room);
      lines.push(
        cut === first
          ? `${branch}${paintName(name)}  ${paint[status](badge)}${tagText ? ` ${colors.blue(tagText)}` : ""}`
          : `${branch}${cut}`,
      );
      if (date) lines.push(`${cont}${colors.dim(fit(date, width - visible(cont)))}`);
      if (publisher) lines.push(`${cont}${fit(publisher, width - visible(cont))}`);
    }
    if (item.kind === "version" && item.node.deprecated !== null) {
      lines.push(`${cont}${colors.yellow(fit(`deprecated: ${item.node.deprecated}`, width - visible(cont)))}`);
    }
  };

  const renderItems = (items: ViewItem[], prefix: string, moreAfter = false) => {
    const newestFirst = [...items].reverse();
    newestFirst.forEach((item, index) => {
      const last = index === newestFirst.length - 1 && !moreAfter;
      const cont = prefix + (last ? "    " : "│   ");
      entry(item, prefix + (last ? "└── " : "├── "), cont);
      const branches = lanesFrom.get(item.id) ?? [];
      for (const [laneIndex, lane] of branches.entries()) renderLane(lane, cont, laneIndex === branches.length - 1);
    });
  };

  const renderLane = (lane: Lane, prefix: string, last: boolean) => {
    const count = lane.versions.length;
    lines.push(
      `${prefix}${last ? "└── " : "├── "}${colors.bold(fit(`${lane.label} · ${count} version${count === 1 ? "" : "s"}`, width - visible(prefix) - 4))}`,
    );
    renderItems(itemsOf.get(lane.id) ?? [], prefix + (last ? "    " : "│   "));
  };

  const main = itemsOf.get("main") ?? [];
  renderItems(main, "", roots.length > 0);
  for (const [index, lane] of roots.entries()) renderLane(lane, "", index === roots.length - 1);
  return `${lines.join("\n")}\n`;
}
