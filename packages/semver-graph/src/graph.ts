import semver from "semver";

/** One version's manifest as a packument holds it; only these fields are read. */
export interface PackumentVersion {
  version?: string;
  /** npm deprecate's message; an empty string means not deprecated. */
  deprecated?: string;
  /** Who published it (set by the registry on publish). */
  _npmUser?: { name?: string; email?: string };
  [key: string]: unknown;
}

/**
 * A package document as a registry serves it (`GET /<name>`, full or abbreviated). `time` holds the
 * publish time of every version ever published, including unpublished ones, which is how
 * unpublished versions are told apart from versions that never existed.
 */
export interface PackumentLike {
  name: string;
  "dist-tags"?: Record<string, string>;
  versions?: Record<string, PackumentVersion>;
  time?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * - `current`: the version the `latest` tag points to.
 * - `rollback` (Rollback Ready): a version `latest` may be rolled back to — see {@link rollbackTargets}.
 * - `archived`: any other published stable version (older than the rollback window, or newer than
 *   `latest`, such as the version a rollback moved away from).
 * - `deprecated`: has a deprecation message (and is not `latest`).
 * - `prerelease`: has a pre-release part (and is not `latest` or deprecated).
 * - `unpublished`: in `time` but no longer in `versions`.
 */
export type VersionStatus = "current" | "rollback" | "archived" | "deprecated" | "prerelease" | "unpublished";

export const STATUS_LABELS: Record<VersionStatus, string> = {
  current: "Current",
  rollback: "Rollback Ready",
  archived: "Archived",
  deprecated: "Deprecated",
  prerelease: "Pre-release",
  unpublished: "Unpublished",
};

/** What changed from the parent: a pre-release, or the part a release bumps. */
export type EdgeType = "major" | "minor" | "patch" | "prerelease";

export interface VersionNode {
  version: string;
  major: number;
  minor: number;
  patch: number;
  prerelease: (string | number)[];
  /** ISO publish time, or null when the packument has none (abbreviated documents). */
  published: string | null;
  publisher: string | null;
  /** Dist-tags pointing here, `latest` first. */
  tags: string[];
  deprecated: string | null;
  status: VersionStatus;
  /** Id of the {@link Lane} this version is drawn in. */
  lane: string;
  /** The version this one grew from (see the README's rule), or null for the first. */
  parent: string | null;
  /** Type of the edge from `parent`. */
  edge: EdgeType | null;
}

export interface VersionEdge {
  from: string;
  to: string;
  type: EdgeType;
}

export interface Lane {
  /** `main`, a maintenance line (`3.x`, `4.1.x`), or a pre-release line (`5.0.0-pre`). */
  id: string;
  kind: "main" | "maintenance" | "prerelease";
  label: string;
  /** Its versions in semver order. */
  versions: string[];
  /** The version its first version grew from, in another lane; null for a lane that starts the history. */
  branchFrom: string | null;
}

export interface VersionGraph {
  name: string;
  /** What `latest` points to, if anything. */
  current: string | null;
  distTags: Record<string, string>;
  /** Every version, published or unpublished, in semver order. */
  nodes: VersionNode[];
  /** One edge per node with a parent, in the order of `nodes`. */
  edges: VersionEdge[];
  /** `main` first, then the others in the order they started. */
  lanes: Lane[];
  /** Keys of `versions`/`time` that are not semver, left out of the graph. */
  ignored: string[];
  rollbackWindow: number;
}

export interface GraphOptions {
  /**
   * How many versions below `latest` are Rollback Ready (default 3): the highest published, stable,
   * undeprecated ones. A bigger window offers older targets without `--force`.
   */
  rollbackWindow?: number;
}

export const DEFAULT_ROLLBACK_WINDOW = 3;

function timeOf(value: string | undefined): number {
  const ms = value === undefined ? Number.NaN : Date.parse(value);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/** The edge type from `parent` to `child`; a pre-release's release is typed by what it releases. */
export function edgeType(parent: semver.SemVer | null, child: semver.SemVer): EdgeType {
  if (child.prerelease.length > 0) return "prerelease";
  if (parent && (parent.major !== child.major || parent.minor !== child.minor || parent.patch !== child.patch)) {
    if (parent.major !== child.major) return "major";
    if (parent.minor !== child.minor) return "minor";
    return "patch";
  }
  if (child.minor === 0 && child.patch === 0) return "major";
  return child.patch === 0 ? "minor" : "patch";
}

function laneLabel(id: string, kind: Lane["kind"]): string {
  if (kind === "main") return "main";
  if (kind === "maintenance") return `${id} maintenance`;
  return `${id.slice(0, -"-pre".length)} pre-releases`;
}

/**
 * The highest published, undeprecated versions below `from`, at most `window` of them, highest
 * first: what a tag at `from` may be rolled back to. Stable versions only, unless `from` is itself
 * a pre-release (then pre-releases qualify too, for tags such as `next`).
 */
export function rollbackTargets(graph: VersionGraph, from: string, window = graph.rollbackWindow): VersionNode[] {
  const fromVersion = semver.parse(from);
  if (!fromVersion) return [];
  const allowPre = fromVersion.prerelease.length > 0;
  const out: VersionNode[] = [];
  for (let index = graph.nodes.length - 1; index >= 0 && out.length < window; index--) {
    const node = graph.nodes[index] as VersionNode;
    if (node.status === "unpublished" || node.deprecated !== null) continue;
    if (node.prerelease.length > 0 && !allowPre) continue;
    if (semver.compare(node.version, fromVersion) >= 0) continue;
    out.push(node);
  }
  return out;
}

/**
 * One node per version with its status, tags and publish facts; a parent edge per node; and lanes
 * that keep maintenance lines and pre-release lines apart from the main line. Pure: the packument
 * in, a plain object out.
 */
export function buildVersionGraph(packument: PackumentLike, options: GraphOptions = {}): VersionGraph {
  const rollbackWindow = options.rollbackWindow ?? DEFAULT_ROLLBACK_WINDOW;
  const manifests = packument.versions ?? {};
  const times = packument.time ?? {};
  const distTags: Record<string, string> = {};
  for (const [tag, target] of Object.entries(packument["dist-tags"] ?? {}))
    if (typeof target === "string") distTags[tag] = target;

  const ignored: string[] = [];
  const parsed = new Map<string, semver.SemVer>();
  const consider = (key: string) => {
    if (parsed.has(key)) return;
    const version = semver.parse(key);
    // Keys must already be the normalised form; "v1.0.0" in a document is not a version npm can install.
    if (version && version.version === key) parsed.set(key, version);
    else if (!ignored.includes(key)) ignored.push(key);
  };
  for (const key of Object.keys(manifests)) consider(key);
  for (const key of Object.keys(times)) if (key !== "created" && key !== "modified") consider(key);

  const sorted = [...parsed.values()].sort((a, b) => semver.compareBuild(a, b));
  const rank = new Map(sorted.map((version, index) => [version.version, index]));
  const current = distTags.latest !== undefined && manifests[distTags.latest] ? distTags.latest : null;

  const tagsOf = new Map<string, string[]>();
  for (const [tag, target] of Object.entries(distTags)) {
    const list = tagsOf.get(target) ?? [];
    if (tag === "latest") list.unshift(tag);
    else list.push(tag);
    tagsOf.set(target, list);
  }

  // Publish order: by time, versions without one first in semver order; ties by semver.
  const published = [...sorted].sort(
    (a, b) => timeOf(times[a.version]) - timeOf(times[b.version]) || semver.compareBuild(a, b),
  );

  // Parent: the highest lower version published before it (a sorted list of ranks seen so far).
  const seen: number[] = [];
  const parentOf = new Map<string, string | null>();
  const laneOf = new Map<string, string>();
  const lanes = new Map<string, Lane>();
  let highestStable = -1;
  for (const version of published) {
    const r = rank.get(version.version) as number;
    let lo = 0;
    let hi = seen.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((seen[mid] as number) < r) lo = mid + 1;
      else hi = mid;
    }
    const parent = lo > 0 ? (sorted[seen[lo - 1] as number] as semver.SemVer).version : null;
    seen.splice(lo, 0, r);
    parentOf.set(version.version, parent);

    let laneId: string;
    let kind: Lane["kind"];
    if (version.prerelease.length > 0) {
      laneId = `${version.major}.${version.minor}.${version.patch}-pre`;
      kind = "prerelease";
    } else if (r > highestStable) {
      laneId = "main";
      kind = "main";
      highestStable = r;
    } else {
      kind = "maintenance";
      const minorLine = `${version.major}.${version.minor}.x`;
      const majorLine = `${version.major}.x`;
      const top = sorted[highestStable] as semver.SemVer;
      if (lanes.has(minorLine)) laneId = minorLine;
      else if (lanes.has(majorLine)) laneId = majorLine;
      else laneId = top.major > version.major ? majorLine : minorLine;
    }
    let lane = lanes.get(laneId);
    if (!lane) {
      lane = { id: laneId, kind, label: laneLabel(laneId, kind), versions: [], branchFrom: parent };
      lanes.set(laneId, lane);
    }
    lane.versions.push(version.version);
    laneOf.set(version.version, laneId);
  }
  for (const lane of lanes.values()) lane.versions.sort((a, b) => (rank.get(a) as number) - (rank.get(b) as number));
  const orderedLanes = [...lanes.values()].sort((a, b) => (a.id === "main" ? -1 : b.id === "main" ? 1 : 0));

  const nodes: VersionNode[] = [];
  const edges: VersionEdge[] = [];
  for (const version of sorted) {
    const key = version.version;
    const manifest = manifests[key];
    const parent = parentOf.get(key) ?? null;
    const deprecated =
      manifest && typeof manifest.deprecated === "string" && manifest.deprecated !== "" ? manifest.deprecated : null;
    const publisher = manifest?._npmUser?.name;
    let status: VersionStatus;
    if (!manifest) status = "unpublished";
    else if (key === current) status = "current";
    else if (deprecated !== null) status = "deprecated";
    else if (version.prerelease.length > 0) status = "prerelease";
    else status = "archived";
    const edge = parent === null ? null : edgeType(parsed.get(parent) as semver.SemVer, version);
    nodes.push({
      version: key,
      major: version.major,
      minor: version.minor,
      patch: version.patch,
      prerelease: [...version.prerelease],
      published: times[key] ?? null,
      publisher: typeof publisher === "string" && publisher !== "" ? publisher : null,
      tags: tagsOf.get(key) ?? [],
      deprecated,
      status,
      lane: laneOf.get(key) as string,
      parent,
      edge,
    });
    if (parent !== null && edge !== null) edges.push({ from: parent, to: key, type: edge });
  }

  const graph: VersionGraph = {
    name: packument.name,
    current,
    distTags,
    nodes,
    edges,
    lanes: orderedLanes,
    ignored,
    rollbackWindow,
  };
  if (current !== null) for (const node of rollbackTargets(graph, current)) node.status = "rollback";
  return graph;
}

/** The node of `version` in `graph`, if there is one. */
export function findNode(graph: VersionGraph, version: string): VersionNode | undefined {
  return graph.nodes.find((node) => node.version === version);
}
