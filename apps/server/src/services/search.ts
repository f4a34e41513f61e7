import MiniSearch from "minisearch";
import type { Packument, Person } from "../npm/packument.js";

interface SearchDoc {
  id: string;
  name: string;
  scope: string;
  version: string;
  description: string;
  keywords: string[];
  maintainers: Person[];
  publisher?: Person;
  date: string;
  links: Record<string, string>;
  stars: string[];
}

/** A person in a search result, as npm's `/-/v1/search` writes them. */
export interface SearchPerson {
  username: string;
  email?: string;
}

/** One result of npm's `/-/v1/search` (npm reads `package`; `score` and `searchScore` with `--json --long`). */
export interface SearchObject {
  package: {
    name: string;
    scope: string;
    version: string;
    description: string;
    keywords: string[];
    /** ISO 8601; npm prints "prehistoric" without it. */
    date?: string;
    links: Record<string, string>;
    publisher?: SearchPerson;
    maintainers: SearchPerson[];
  };
  score: { final: number; detail: { quality: number; popularity: number; maintenance: number } };
  searchScore: number;
  flags?: { insecure?: number; unstable?: boolean; deprecated?: string };
}

/** npm's `/-/v1/search` response body. */
export interface SearchResults {
  objects: SearchObject[];
  total: number;
  time: string;
}

/** A search result's `scope`: `acme` for `@acme/lib`, `unscoped` for `lib` (as npm's registry writes it). */
export function scopeOf(name: string): string {
  return name.startsWith("@") ? name.slice(1, name.indexOf("/")) : "unscoped";
}

/** An in-process full-text index over package names, descriptions, keywords and maintainers. */
export class SearchIndex {
  private readonly index = new MiniSearch<SearchDoc>({
    fields: ["name", "description", "keywordText", "maintainerText"],
    storeFields: [],
    extractField: (doc, field) => {
      if (field === "keywordText") return doc.keywords.join(" ");
      if (field === "maintainerText") return doc.maintainers.map((m) => m.name).join(" ");
      return (doc as unknown as Record<string, unknown>)[field] as string;
    },
    searchOptions: { boost: { name: 4, keywordText: 2 }, prefix: true, fuzzy: 0.15 },
  });
  private readonly docs = new Map<string, SearchDoc>();

  /** Adds, replaces or (for unpublished packages) removes a package's entry. */
  update(doc: Packument): void {
    const existing = this.docs.get(doc.name);
    const latest = doc["dist-tags"].latest;
    const manifest = latest ? doc.versions[latest] : undefined;
    if (existing && !manifest) {
      this.index.discard(existing.id);
      this.docs.delete(doc.name);
    }
    if (!manifest) return;
    const entry: SearchDoc = {
      id: doc.name,
      name: doc.name,
      scope: scopeOf(doc.name),
      version: manifest.version,
      description: typeof manifest.description === "string" ? manifest.description : (doc.description ?? ""),
      keywords: Array.isArray(manifest.keywords)
        ? manifest.keywords.filter((k): k is string => typeof k === "string")
        : [],
      maintainers: doc.maintainers ?? [],
      date: doc.time[manifest.version] ?? doc.time.modified ?? new Date(0).toISOString(),
      links: links(manifest),
      stars: Object.keys(doc.users ?? {}),
    };
    const npmUser = manifest._npmUser as Person | undefined;
    if (npmUser?.name) entry.publisher = { name: npmUser.name, ...(npmUser.email && { email: npmUser.email }) };
    this.docs.set(doc.name, entry);
    // Most publishes change only the version and date: the indexed text stays, and re-indexing it would
    // leave a discarded copy for MiniSearch to vacuum (a walk over the whole index) every few publishes.
    if (existing && sameText(existing, entry)) return;
    if (existing) this.index.discard(existing.id);
    this.index.add(entry);
  }

  remove(name: string): void {
    const existing = this.docs.get(name);
    if (existing) {
      this.index.discard(existing.id);
      this.docs.delete(name);
    }
  }

  get size(): number {
    return this.docs.size;
  }

  starredBy(user: string, visible: (name: string) => boolean = () => true): string[] {
    return [...this.docs.values()].filter((d) => d.stars.includes(user) && visible(d.name)).map((d) => d.name);
  }

  /**
   * npm's `/-/v1/search` response body. `visible` drops packages the caller may not read before
   * paging, so neither the results nor `total` reveal private names.
   */
  search(text: string, size: number, from: number, visible: (name: string) => boolean = () => true): SearchResults {
    const started = Date.now();
    const terms = text.trim();
    const all = terms ? this.index.search(terms) : [...this.docs.keys()].sort().map((id) => ({ id, score: 1 }));
    const hits = all.filter((hit) => visible(hit.id as string));
    const max = hits[0]?.score ?? 1;
    const objects = hits.slice(from, from + size).flatMap((hit): SearchObject[] => {
      const doc = this.docs.get(hit.id as string);
      if (!doc) return [];
      const final = Math.min(1, hit.score / max);
      return [
        {
          package: {
            name: doc.name,
            scope: doc.scope,
            version: doc.version,
            description: doc.description,
            keywords: doc.keywords,
            date: doc.date,
            links: doc.links,
            ...(doc.publisher && { publisher: person(doc.publisher) }),
            maintainers: doc.maintainers.map(person),
          },
          score: { final, detail: { quality: final, popularity: final, maintenance: final } },
          searchScore: hit.score,
          flags: { insecure: 0 },
        },
      ];
    });
    return { objects, total: hits.length, time: new Date(started).toUTCString() };
  }
}

function person(who: Person): SearchPerson {
  return { username: who.name, ...(who.email !== undefined && { email: who.email }) };
}

/** Whether two entries have the same indexed fields (see the index's `fields` and `extractField`). */
function sameText(a: SearchDoc, b: SearchDoc): boolean {
  return (
    a.name === b.name &&
    a.description === b.description &&
    a.keywords.join(" ") === b.keywords.join(" ") &&
    a.maintainers.map((m) => m.name).join(" ") === b.maintainers.map((m) => m.name).join(" ")
  );
}

function links(manifest: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof manifest.homepage === "string") out.homepage = manifest.homepage;
  const repo = manifest.repository;
  const url = typeof repo === "string" ? repo : (repo as { url?: unknown } | undefined)?.url;
  if (typeof url === "string") out.repository = url;
  const bugs = manifest.bugs;
  const bugsUrl = typeof bugs === "string" ? bugs : (bugs as { url?: unknown } | undefined)?.url;
  if (typeof bugsUrl === "string") out.bugs = bugsUrl;
  return out;
}
