import semver from "semver";
import { escapePackageName, RegistryClient } from "../../client.js";
import { print, printJson } from "../../output.js";
import { formatBytes } from "./pack.js";

export interface InfoOptions {
  registry?: string;
  token?: string;
  config?: string;
  /** `name`, `name@version`, `name@tag` or `name@range`; scoped names too. */
  pkg: string;
  json: boolean;
}

type Person = string | { name?: string; email?: string; url?: string };

interface VersionDoc {
  name?: string;
  version?: string;
  description?: string;
  license?: unknown;
  homepage?: string;
  keywords?: unknown;
  deprecated?: string;
  dependencies?: Record<string, string>;
  _npmUser?: Person;
  dist?: { tarball?: string; shasum?: string; integrity?: string; unpackedSize?: number; fileCount?: number };
}

interface PackumentDoc {
  name: string;
  description?: string;
  "dist-tags"?: Record<string, string>;
  versions?: Record<string, VersionDoc>;
  time?: Record<string, string>;
  maintainers?: Person[];
}

/** `@scope/name@1.2.3` → name `@scope/name`, spec `1.2.3`; the `@` of a scope is not a separator. */
export function splitSpec(pkg: string): { name: string; spec?: string } {
  const at = pkg.indexOf("@", 1);
  if (at === -1) return { name: pkg };
  const spec = pkg.slice(at + 1);
  return { name: pkg.slice(0, at), ...(spec !== "" && { spec }) };
}

function person(who: Person | undefined): string | undefined {
  if (who === undefined) return undefined;
  if (typeof who === "string") return who;
  if (!who.name) return who.email;
  return who.email ? `${who.name} <${who.email}>` : who.name;
}

function ago(iso: string, now = Date.now()): string {
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (!Number.isFinite(seconds)) return "";
  const units: [string, number][] = [
    ["year", 365 * 86_400],
    ["month", 30 * 86_400],
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  for (const [unit, size] of units) {
    const count = Math.floor(seconds / size);
    if (count >= 1) return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
  }
  return "just now";
}

/** The version `spec` names: a dist-tag, an exact version, else the highest in a range; latest without one. */
function pick(doc: PackumentDoc, spec: string | undefined): string | undefined {
  const tags = doc["dist-tags"] ?? {};
  const versions = Object.keys(doc.versions ?? {});
  if (spec === undefined) return tags.latest ?? semver.rsort(versions.filter((v) => semver.valid(v)))[0];
  if (tags[spec] !== undefined) return tags[spec];
  if (versions.includes(spec)) return spec;
  return semver.validRange(spec) ? (semver.maxSatisfying(versions, spec) ?? undefined) : undefined;
}

/** What `fw registry info` reports: `npm view`'s summary of one version and the package around it. */
export function summarize(doc: PackumentDoc, version: string) {
  const manifest = doc.versions?.[version] ?? {};
  const time = doc.time ?? {};
  const versions = semver.sort(Object.keys(doc.versions ?? {}).filter((v) => semver.valid(v)));
  const license = manifest.license;
  return {
    name: doc.name,
    version,
    description: manifest.description ?? doc.description ?? null,
    license: typeof license === "string" ? license : ((license as { type?: string } | undefined)?.type ?? null),
    homepage: manifest.homepage ?? null,
    keywords: Array.isArray(manifest.keywords) ? manifest.keywords.filter((k) => typeof k === "string") : [],
    deprecated: manifest.deprecated ?? null,
    distTags: doc["dist-tags"] ?? {},
    versions,
    versionCount: versions.length,
    dependencies: manifest.dependencies ?? {},
    maintainers: (doc.maintainers ?? []).map(person).filter((m): m is string => m !== undefined),
    dist: {
      tarball: manifest.dist?.tarball ?? null,
      shasum: manifest.dist?.shasum ?? null,
      integrity: manifest.dist?.integrity ?? null,
      ...(manifest.dist?.unpackedSize !== undefined && { unpackedSize: manifest.dist.unpackedSize }),
      ...(manifest.dist?.fileCount !== undefined && { fileCount: manifest.dist.fileCount }),
    },
    published: time[version] ?? null,
    publisher: person(manifest._npmUser) ?? null,
    created: time.created ?? null,
    modified: time.modified ?? null,
  };
}

function render(info: ReturnType<typeof summarize>): string {
  const deps = Object.entries(info.dependencies);
  const head = [`${info.name}@${info.version}`, info.license ?? "Proprietary", `deps: ${deps.length || "none"}`];
  const lines = [`${head.join(" | ")} | versions: ${info.versionCount}`];
  if (info.deprecated) lines.push(`DEPRECATED: ${info.deprecated}`);
  if (info.description) lines.push(info.description);
  if (info.homepage) lines.push(info.homepage);
  if (info.keywords.length > 0) lines.push("", `keywords: ${info.keywords.join(", ")}`);
  lines.push("", "dist", `.tarball: ${info.dist.tarball ?? "-"}`, `.shasum: ${info.dist.shasum ?? "-"}`);
  lines.push(`.integrity: ${info.dist.integrity ?? "-"}`);
  if (info.dist.unpackedSize !== undefined) lines.push(`.unpackedSize: ${formatBytes(info.dist.unpackedSize)}`);
  if (deps.length > 0) lines.push("", "dependencies:", ...deps.map(([dep, range]) => `${dep}: ${range}`));
  if (info.maintainers.length > 0) lines.push("", "maintainers:", ...info.maintainers.map((m) => `- ${m}`));
  lines.push("", "dist-tags:", ...Object.entries(info.distTags).map(([tag, v]) => `${tag}: ${v}`));
  if (info.published) {
    const by = info.publisher ? ` by ${info.publisher}` : "";
    lines.push("", `published ${info.published} (${ago(info.published)})${by}`);
  }
  return lines.join("\n");
}

/**
 * `fw registry info <pkg>[@version|tag|range] [--json]`: the full packument (the abbreviated one
 * has no maintainers, descriptions or times), summarised like `npm view`.
 */
export async function run(opts: InfoOptions): Promise<void> {
  const { name, spec } = splitSpec(opts.pkg);
  if (name === "") throw new Error(`"${opts.pkg}" is not a package name`);
  const client = await RegistryClient.create(opts);
  const doc = await client.getJson<PackumentDoc>(`/${escapePackageName(name)}`);
  if (doc === null || typeof doc !== "object" || typeof doc.name !== "string")
    throw new Error(`package "${name}" not found at ${client.registry.href}`);
  const version = pick(doc, spec);
  if (version === undefined || doc.versions?.[version] === undefined) {
    const tags = Object.entries(doc["dist-tags"] ?? {})
      .map(([tag, v]) => `${tag} ${v}`)
      .join(", ");
    throw new Error(`no version of ${name} matches "${spec ?? "latest"}" (dist-tags: ${tags || "none"})`);
  }
  const info = summarize(doc, version);
  if (opts.json) printJson(info);
  else print(render(info));
}
