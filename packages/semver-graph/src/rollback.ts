import semver from "semver";
import { findNode, rollbackTargets, type VersionGraph, type VersionNode } from "./graph.js";

export type RollbackProblemCode =
  | "E_INVALID_VERSION"
  | "E_NOT_FOUND"
  | "E_UNPUBLISHED"
  | "E_NO_TAG"
  | "E_DEPRECATED"
  | "E_PRERELEASE"
  | "E_NOT_EARLIER"
  | "E_OUTSIDE_WINDOW";

export interface RollbackProblem {
  code: RollbackProblemCode;
  message: string;
  /** Whether `--force` may override it. A version that is not published can never be tagged. */
  forceable: boolean;
}

export interface RollbackPlan {
  name: string;
  tag: string;
  /** Where the tag points now, or null when it does not exist. */
  from: string | null;
  to: string;
  /** False when the tag already points at `to`. */
  changed: boolean;
  target: VersionNode | null;
  /** The Rollback Ready versions for this tag, highest first. */
  targets: string[];
  /** Reasons to refuse; empty means go ahead. */
  problems: RollbackProblem[];
}

/**
 * Checks moving `tag` (default `latest`) of a package back to `version`, as `fw version rollback`
 * does before it writes. The rule: the target must be published (always) and — unless forced — not
 * deprecated, not a pre-release when the tag points at a stable version, lower than the tag's
 * version, and among its Rollback Ready versions ({@link rollbackTargets}).
 */
export function planRollback(graph: VersionGraph, version: string, options: { tag?: string } = {}): RollbackPlan {
  const tag = options.tag ?? "latest";
  const from = graph.distTags[tag] ?? null;
  const problems: RollbackProblem[] = [];
  const fromNode = from === null ? undefined : findNode(graph, from);
  const targets = fromNode ? rollbackTargets(graph, fromNode.version).map((node) => node.version) : [];
  const plan = (target: VersionNode | null): RollbackPlan => ({
    name: graph.name,
    tag,
    from,
    to: target?.version ?? version,
    changed: from !== (target?.version ?? version),
    target,
    targets,
    problems,
  });

  const valid = semver.valid(version);
  if (valid === null || valid !== version) {
    problems.push({
      code: "E_INVALID_VERSION",
      message: `"${version}" is not a version (give an exact one such as 1.2.3, not a range or tag)`,
      forceable: false,
    });
    return plan(null);
  }
  const target = findNode(graph, version);
  if (!target) {
    problems.push({ code: "E_NOT_FOUND", message: `${graph.name}@${version} was never published`, forceable: false });
    return plan(null);
  }
  if (target.status === "unpublished") {
    problems.push({
      code: "E_UNPUBLISHED",
      message: `${graph.name}@${version} was unpublished, so no install could use it; pick a published version`,
      forceable: false,
    });
    return plan(target);
  }
  if (from === null) {
    problems.push({
      code: "E_NO_TAG",
      message: `${graph.name} has no "${tag}" tag to roll back; --force creates it at ${version}`,
      forceable: true,
    });
    return plan(target);
  }
  if (from === version) return plan(target);

  if (target.deprecated !== null) {
    problems.push({
      code: "E_DEPRECATED",
      message: `${graph.name}@${version} is deprecated ("${target.deprecated}")`,
      forceable: true,
    });
  }
  const fromIsPre = (semver.prerelease(from)?.length ?? 0) > 0;
  if (target.prerelease.length > 0 && !fromIsPre) {
    problems.push({
      code: "E_PRERELEASE",
      message: `${version} is a pre-release and "${tag}" points at the stable ${from}`,
      forceable: true,
    });
  }
  if (semver.valid(from) !== null && semver.gte(version, from)) {
    problems.push({
      code: "E_NOT_EARLIER",
      message: `${version} is not earlier than ${from}, where "${tag}" points now: that is not a rollback`,
      forceable: true,
    });
  } else if (problems.length === 0 && !targets.includes(version)) {
    problems.push({
      code: "E_OUTSIDE_WINDOW",
      message: `${version} is not Rollback Ready for "${tag}" (the ${graph.rollbackWindow} highest published, undeprecated versions below ${from}: ${targets.join(", ") || "none"})`,
      forceable: true,
    });
  }
  return plan(target);
}
