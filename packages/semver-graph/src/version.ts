import semver from "semver";

/** A version split into its parts, as `semver` reads it (a leading `v` or `=` and surrounding spaces are dropped). */
export interface ParsedVersion {
  major: number;
  minor: number;
  patch: number;
  /** `1.0.0-beta.2` → `["beta", 2]`; numeric identifiers are numbers. */
  prerelease: (string | number)[];
  /** `1.0.0+linux.x64` → `["linux", "x64"]`. Build metadata never takes part in ordering. */
  build: string[];
}

export type ParseResult =
  | { valid: true; version: string; parsed: ParsedVersion }
  | { valid: false; version: null; parsed: null; error: string };

/** Reads a version without throwing: `{ valid: false, error }` says why it is not semver. */
export function parseVersion(input: string): ParseResult {
  const parsed = semver.parse(input);
  if (!parsed) {
    return {
      valid: false,
      version: null,
      parsed: null,
      error: `"${input}" is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-beta.1)`,
    };
  }
  return {
    valid: true,
    version: parsed.version,
    parsed: {
      major: parsed.major,
      minor: parsed.minor,
      patch: parsed.patch,
      prerelease: [...parsed.prerelease],
      build: [...parsed.build],
    },
  };
}

function requireVersion(input: string): string {
  const result = parseVersion(input);
  if (!result.valid) throw new TypeError(result.error);
  return result.version;
}

/**
 * -1, 0 or 1 as `a` is lower than, equal to or higher than `b` in semver precedence (pre-releases
 * sort before their release; build metadata is ignored, so `1.0.0+a` equals `1.0.0+b`). Throws a
 * `TypeError` naming the argument that is not a version.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  return semver.compare(requireVersion(a), requireVersion(b));
}

/**
 * `Bun.semver.order`'s name and contract on node-semver: -1, 0 or 1, throwing on an invalid version.
 * The same as {@link compareVersions}; see the README for the inputs Bun accepts that this refuses.
 */
export function order(a: string, b: string): -1 | 0 | 1 {
  return compareVersions(a, b);
}

/**
 * Whether `version` is in `range` (npm's range syntax: `^1.2.0`, `~1.2`, `1.x`, `>=1 <3`, `a - b`,
 * `||`). Pre-releases match only ranges that name a pre-release of the same MAJOR.MINOR.PATCH.
 * An invalid version or range is `false`; Bun.semver.satisfies treats a range it cannot read as
 * matching everything, which this deliberately does not (a typo would match every version).
 */
export function satisfies(version: string, range: string): boolean {
  return semver.satisfies(version, range);
}

/** How far apart two versions are: the part that differs (`major`, `preminor`, …), or null when equal. */
export function versionDiff(a: string, b: string): semver.ReleaseType | null {
  return semver.diff(requireVersion(a), requireVersion(b));
}

/** The bumps `recommendNext` knows: npm version's, without `from-git`. */
export const RELEASE_TYPES = [
  "major",
  "minor",
  "patch",
  "premajor",
  "preminor",
  "prepatch",
  "prerelease",
  "release",
] as const;
export type ReleaseType = (typeof RELEASE_TYPES)[number];

export interface RecommendOptions {
  /** Pre-release identifier for the `pre*` types: `beta` gives `2.0.0-beta.0`. Default: none (`2.0.0-0`). */
  preid?: string;
  /** The first pre-release number, `"0"` (default) or `"1"`; `false` leaves it out (`2.0.0-beta`). */
  identifierBase?: "0" | "1" | false;
}

/**
 * The next version for a bump, as `npm version <type>` computes it: `patch` of `1.2.3-rc.1` is
 * `1.2.3` (the pre-release is released), `prerelease` of `1.2.3` is `1.2.4-0`, and `prerelease
 * --preid rc` of `2.0.0-beta.3` is `2.0.0-rc.0`. Throws on an invalid version or type.
 */
export function recommendNext(version: string, type: ReleaseType | string, options: RecommendOptions = {}): string {
  const current = requireVersion(version);
  if (!(RELEASE_TYPES as readonly string[]).includes(type)) {
    throw new TypeError(`"${type}" is not a release type; use one of ${RELEASE_TYPES.join(", ")}`);
  }
  if (options.preid !== undefined && !/^[0-9A-Za-z-]+$/.test(options.preid)) {
    throw new TypeError(`"${options.preid}" is not a pre-release identifier (letters, digits and hyphens)`);
  }
  const next = semver.inc(current, type as semver.ReleaseType, undefined, options.preid, options.identifierBase);
  if (next === null) throw new TypeError(`cannot compute a ${type} release after ${current}`);
  return next;
}

/** Every bump of `version` at once (`{ major: "2.0.0", …, prerelease: "1.2.4-beta.0" }`). */
export function recommendAll(version: string, options: RecommendOptions = {}): Record<ReleaseType, string> {
  const out = {} as Record<ReleaseType, string>;
  for (const type of RELEASE_TYPES) {
    if (type === "release" && (parseVersion(version).parsed?.prerelease.length ?? 0) === 0) continue;
    out[type] = recommendNext(version, type, options);
  }
  return out;
}
