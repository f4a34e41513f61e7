export {
  buildVersionGraph,
  DEFAULT_ROLLBACK_WINDOW,
  type EdgeType,
  edgeType,
  findNode,
  type GraphOptions,
  type Lane,
  type PackumentLike,
  type PackumentVersion,
  rollbackTargets,
  STATUS_LABELS,
  type VersionEdge,
  type VersionGraph,
  type VersionNode,
  type VersionStatus,
} from "./graph.js";
export { type AsciiOptions, renderAscii } from "./render/ascii.js";
export { type D3Graph, type D3Link, type D3Node, renderJson, toD3 } from "./render/json.js";
export { type MermaidOptions, renderMermaid } from "./render/mermaid.js";
export { renderSvg, type SvgOptions } from "./render/svg.js";
export { planRollback, type RollbackPlan, type RollbackProblem, type RollbackProblemCode } from "./rollback.js";
export {
  compareVersions,
  order,
  type ParsedVersion,
  type ParseResult,
  parseVersion,
  RELEASE_TYPES,
  type RecommendOptions,
  type ReleaseType,
  recommendAll,
  recommendNext,
  satisfies,
  versionDiff,
} from "./version.js";
export {
  buildView,
  type GraphView,
  type LaneView,
  type ViewEdge,
  type ViewItem,
  type ViewOptions,
} from "./view.js";
