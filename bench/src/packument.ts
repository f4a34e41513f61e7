import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Corpus, type CorpusEntry, publishDocument, publishOrder, readPackedPackage } from "./corpus.ts";

/** Fields of a version in the abbreviated ("corgi") packument, as the public registry serves it. */
const INSTALL_FIELDS = [
  "name",
  "version",
  "deprecated",
  "dependencies",
  "optionalDependencies",
  "devDependencies",
  "bundleDependencies",
  "peerDependencies",
  "peerDependenciesMeta",
  "acceptDependencies",
  "bin",
  "directories",
  "dist",
  "engines",
  "cpu",
  "os",
  "libc",
  "funding",
  "license",
  "_hasShrinkwrap",
  "hasInstallScript",
];

export type Manifest = Record<string, unknown> & { name: string; version: string };

export interface FullPackument {
  _id: string;
  name: string;
  "dist-tags": Record<string, string>;
  versions: Record<string, Manifest>;
  time: Record<string, string>;
  [key: string]: unknown;
}

export function abbreviate(doc: FullPackument): Record<string, unknown> {
  const versions: Record<string, Record<string, unknown>> = {};
  for (const [version, manifest] of Object.entries(doc.versions)) {
    const slim: Record<string, unknown> = {};
    for (const field of INSTALL_FIELDS) if (manifest[field] !== undefined) slim[field] = manifest[field];
    versions[version] = slim;
  }
  return { name: doc.name, modified: doc.time.modified, "dist-tags": doc["dist-tags"], versions };
}

/**
 * Full packuments for corpus entries, as a registry would serve them after these publishes:
 * versions in publish order, `time` a minute apart ending now, tarball URLs from `tarballUrl`.
 */
export function corpusPackuments(
  corpus: Corpus,
  entries: CorpusEntry[],
  tarballUrl: (name: string, version: string) => string,
): { doc: FullPackument; files: { version: string; source: string }[] }[] {
  const byName = new Map<string, CorpusEntry[]>();
  for (const entry of entries) byName.set(entry.name, [...(byName.get(entry.name) ?? []), entry]);
  const now = Date.now();
  const out = [];
  for (const [name, list] of byName) {
    const order = publishOrder(list.map((e) => e.version));
    const versions: Record<string, Manifest> = {};
    const time: Record<string, string> = { created: new Date(now - order.length * 60_000).toISOString() };
    const files: { version: string; source: string }[] = [];
    let top: { readme?: string | undefined; readmeFilename?: string | undefined; manifest?: Manifest } = {};
    order.forEach((version, i) => {
      const entry = list.find((e) => e.version === version) as CorpusEntry;
      const source = join(corpus.dir, "tarballs", entry.file);
      const tgz = readFileSync(source);
      const { pkg, readme, readmeFilename } = readPackedPackage(tgz);
      const manifest = (
        publishDocument({ pkg, tgz, registry: "http://127.0.0.1", readme, readmeFilename }).versions as Record<
          string,
          Manifest
        >
      )[version] as Manifest;
      delete manifest.readme;
      delete manifest.readmeFilename;
      (manifest.dist as Record<string, unknown>).tarball = tarballUrl(name, version);
      versions[version] = manifest;
      time[version] = new Date(now - (order.length - i) * 60_000).toISOString();
      top = { readme, readmeFilename, manifest };
      files.push({ version, source });
    });
    const m: Record<string, unknown> = top.manifest ?? {};
    out.push({
      doc: {
        _id: name,
        name,
        description: m.description,
        "dist-tags": { latest: order.at(-1) as string },
        versions,
        time: { ...time, modified: new Date(now).toISOString() },
        maintainers: [{ name: "bench", email: "bench@example.com" }],
        license: m.license,
        repository: m.repository,
        readme: top.readme ?? "",
        readmeFilename: top.readmeFilename ?? "",
      },
      files,
    });
  }
  return out;
}
