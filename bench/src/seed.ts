import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Corpus, type CorpusEntry, tarballPath } from "./corpus.ts";
import { corpusPackuments, type FullPackument, type Manifest } from "./packument.ts";

// Writing documents straight into a server's storage, for what its API cannot do quickly (or at all).
// Both layouts are the servers' internals: for fw, the fs driver's files (key = path under the
// storage folder; files placed by hand are accepted, the driver computes their ETag); for Verdaccio,
// local-storage's <name>/package.json. A layout change shows up as a 404 in the checks that follow.

function withDist(doc: FullPackument, dist: (m: Manifest) => Record<string, unknown>): Record<string, Manifest> {
  const out: Record<string, Manifest> = {};
  for (const [v, m] of Object.entries(doc.versions)) out[v] = { ...m, dist: { ...(m.dist as object), ...dist(m) } };
  return out;
}

function rev(doc: FullPackument): string {
  return `1-${createHash("md5")
    .update(`${doc.name}/${Object.keys(doc.versions).length}`)
    .digest("hex")}`;
}

/** fw's stored packument (`packages/<name>/packument.json`): fw fills tarball URLs in when serving. */
export function writeFwPackument(storageDir: string, doc: FullPackument, maintainer: string): void {
  const dir = join(storageDir, "packages", ...doc.name.split("/"));
  mkdirSync(dir, { recursive: true });
  const stored = {
    ...doc,
    _rev: rev(doc),
    versions: withDist(doc, () => ({ tarball: "" })),
    maintainers: [{ name: maintainer }],
    _fwPublished: Object.keys(doc.versions),
  };
  writeFileSync(join(dir, "packument.json"), JSON.stringify(stored));
}

/** Verdaccio's local storage (`<name>/package.json`); it rewrites tarball URLs per request. */
export function writeVerdaccioPackument(storageDir: string, doc: FullPackument, url: string): void {
  const dir = join(storageDir, ...doc.name.split("/"));
  mkdirSync(dir, { recursive: true });
  const stored = {
    ...doc,
    _rev: rev(doc),
    versions: withDist(doc, (m) => ({ tarball: url + tarballPath(m.name, m.version) })),
    users: {},
    _uplinks: {},
    _distfiles: {},
    _attachments: {},
  };
  writeFileSync(join(dir, "package.json"), JSON.stringify(stored));
}

/** Corpus packages fw refused to publish, placed in its storage with their tarballs. */
export function writeFwCorpusPackages(
  storageDir: string,
  corpus: Corpus,
  entries: CorpusEntry[],
  maintainer: string,
): void {
  for (const { doc, files } of corpusPackuments(corpus, entries, () => "")) {
    writeFwPackument(storageDir, doc, maintainer);
    mkdirSync(join(storageDir, "packages", ...doc.name.split("/"), "-"), { recursive: true });
    for (const { version, source } of files) {
      copyFileSync(source, join(storageDir, "packages", ...tarballPath(doc.name, version).slice(1).split("/")));
    }
  }
}
