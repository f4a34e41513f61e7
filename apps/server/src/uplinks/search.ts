import semver from "semver";
import type { Logger } from "../context.js";
import { assertReadableName } from "../npm/names.js";
import type { SearchObject, SearchPerson, SearchResults } from "../services/search.js";
import { hostedNames } from "./audit.js";
import { type UpstreamClient, UpstreamFailure } from "./client.js";

/** npm's search endpoint (libnpmsearch), on fw and on every uplink. */
export const SEARCH_PATH = "/-/v1/search";
/** Largest search answer taken from an uplink: 250 results of a few KB each fit many times over. */
const MAX_SEARCH_BYTES = 8 * 1024 * 1024;
/** npm's registry answers at most 250 results a page, and so does fw. */
const MAX_OBJECTS = 250;
/** Totals above this are not believed (and sums of them stay exact). */
const MAX_TOTAL = 2 ** 31;
/** The ranking weights npm sends (libnpmsearch), forwarded when they look like numbers. */
const WEIGHTS = ["quality", "popularity", "maintenance"] as const;
const WEIGHT = /^(?:\d{1,3}(?:\.\d{1,10})?|\.\d{1,10})$/;
/** Search words npm's registry reads as qualifiers (`scope:acme`, `keywords:a,b`), not as names. */
const QUALIFIER = /^([a-z-]+):(.*)$/;

export interface UplinkSearchQuery {
  /** The caller's search text, as sent to fw. */
  text: string;
  /** Where the uplinks' part of the page starts in their combined results (see `uplinkWindow`). */
  from: number;
  /** How many of the uplinks' combined results the page has room for (0 when hosted ones fill it). */
  size: number;
  /** Other npm search parameters, forwarded unchanged (see `forwardedParams`). */
  params?: Readonly<Record<string, string>>;
}

/** The uplinks' part of a search page: filtered results in page order, and the uplinks' totals summed. */
export interface UplinkSearchResults {
  objects: SearchObject[];
  total: number;
}

/** One uplink's validated search page: a hole (`null`) where a result was unusable, so ranks stay put. */
export interface UplinkSearchPage {
  objects: (SearchObject | null)[];
  total: number;
}

/** Which results of one uplink a page covers: `count` of them from its result `from` on. */
export interface UplinkShare {
  from: number;
  count: number;
}

export interface SearchForwarderOptions {
  /** Uplinks that take searches (`search: true`), in config order. */
  clients: readonly UpstreamClient[];
  proxyFor(name: string): readonly string[];
  isHosted(name: string): Promise<boolean>;
  logger: Logger;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isReadableName(name: string): boolean {
  try {
    assertReadableName(name);
    return true;
  } catch {
    return false;
  }
}

function text(value: unknown, max: number): string | undefined {
  return typeof value === "string" && value.length <= max ? value : undefined;
}

function finite(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function person(value: unknown): SearchPerson | undefined {
  if (!isObject(value)) return undefined;
  const username = text(value.username, 256);
  if (!username) return undefined;
  const email = text(value.email, 256);
  return { username, ...(email && { email }) };
}

/** Only http(s) links of the kinds npm's registry gives; anything else is dropped. */
function links(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const key of ["npm", "homepage", "repository", "bugs"]) {
    const link = text(value[key], 2048);
    if (!link || !URL.canParse(link)) continue;
    const { protocol } = new URL(link);
    if (protocol === "http:" || protocol === "https:") out[key] = link;
  }
  return out;
}

function isoDate(value: unknown): string | undefined {
  const date = text(value, 64);
  const ms = date === undefined ? Number.NaN : Date.parse(date);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}

/**
 * One upstream search result rebuilt from the fields npm's result shape has, each checked for its type
 * and size; `null` without a readable package name and an exact semver version. The scope is derived
 * from the name, never taken from upstream.
 */
export function normaliseResult(raw: unknown): SearchObject | null {
  if (!isObject(raw) || !isObject(raw.package)) return null;
  const pkg = raw.package;
  const name = text(pkg.name, 214);
  const version = text(pkg.version, 256);
  if (!name || !isReadableName(name) || !version || semver.valid(version) !== version) return null;
  const keywords = Array.isArray(pkg.keywords)
    ? pkg.keywords.filter((k): k is string => typeof k === "string" && k.length <= 256).slice(0, 64)
    : [];
  const maintainers = Array.isArray(pkg.maintainers)
    ? pkg.maintainers
        .slice(0, 64)
        .map(person)
        .filter((p) => p !== undefined)
    : [];
  const publisher = person(pkg.publisher);
  const date = isoDate(pkg.date);
  const score = isObject(raw.score) ? raw.score : {};
  const detail = isObject(score.detail) ? score.detail : {};
  const flags = isObject(raw.flags) ? raw.flags : {};
  const deprecated = text(flags.deprecated, 1024);
  const kept = {
    ...(typeof flags.insecure === "number" && Number.isFinite(flags.insecure) && { insecure: flags.insecure }),
    ...(typeof flags.unstable === "boolean" && { unstable: flags.unstable }),
    ...(deprecated !== undefined && { deprecated }),
  };
  return {
    package: {
      name,
      scope: name.startsWith("@") ? name.slice(1, name.indexOf("/")) : "unscoped",
      version,
      description: typeof pkg.description === "string" ? pkg.description.slice(0, 4096) : "",
      keywords,
      ...(date && { date }),
      links: links(pkg.links),
      ...(publisher && { publisher }),
      maintainers,
    },
    score: {
      final: finite(score.final),
      detail: {
        quality: finite(detail.quality),
        popularity: finite(detail.popularity),
        maintenance: finite(detail.maintenance),
      },
    },
    searchScore: finite(raw.searchScore),
    ...(Object.keys(kept).length > 0 && { flags: kept }),
  };
}

/** An uplink's search answer, validated; `null` when it is not npm's search shape at all. */
export function parseSearchPage(raw: unknown): UplinkSearchPage | null {
  if (!isObject(raw) || !Array.isArray(raw.objects)) return null;
  const objects = raw.objects.slice(0, MAX_OBJECTS).map(normaliseResult);
  const total = typeof raw.total === "number" && raw.total >= 0 ? Math.floor(Math.min(raw.total, MAX_TOTAL)) : 0;
  return { objects, total: Math.max(total, raw.objects.length) };
}

/**
 * Where a page's uplink part starts and how much room it has: the combined list is the hosted matches
 * (`local.total` of them) followed by the uplinks' results, so `from` past the hosted matches continues
 * into the uplinks'.
 */
export function uplinkWindow(local: SearchResults, from: number, size: number): { from: number; size: number } {
  return { from: Math.max(0, from - local.total), size: Math.max(0, size - local.objects.length) };
}

/**
 * Each uplink's share of the positions `from … from + size - 1` of the uplinks' combined list, in which
 * the uplinks take turns: the first result of each (in config order), then the second of each, and so on
 * — position `p` is result `⌊p / n⌋` of uplink `p mod n`. So one busy uplink does not push the others'
 * best matches off the first page, and every uplink is asked at once for exactly its part.
 */
export function uplinkShares(from: number, size: number, uplinks: number): UplinkShare[] {
  return Array.from({ length: uplinks }, (_, i) => {
    const first = Math.max(0, Math.ceil((from - i) / uplinks));
    const end = Math.max(first, Math.ceil((from + size - i) / uplinks));
    return { from: first, count: end - first };
  });
}

/** npm's ranking weights from a search request's query, for forwarding. */
export function forwardedParams(query: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of WEIGHTS) {
    const value = query[key];
    if (value !== undefined && WEIGHT.test(value)) out[key] = value;
  }
  return out;
}

/** Package names and scopes that the words of a search text name (`@acme/lib`, `@acme`, `scope:acme`, `lib`). */
export function namesInText(query: string): { names: string[]; scopes: string[] } {
  const names = new Set<string>();
  const scopes = new Set<string>();
  for (const word of query.split(/\s+/)) {
    if (!word) continue;
    const qualifier = QUALIFIER.exec(word);
    if (qualifier) {
      if (qualifier[1] === "scope" && qualifier[2]) scopes.add(qualifier[2].replace(/^@/, ""));
      continue;
    }
    const slash = word.indexOf("/");
    if (word.startsWith("@")) scopes.add(word.slice(1, slash < 0 ? undefined : slash));
    if (!word.startsWith("@") || slash > 0) names.add(word);
  }
  return { names: [...names].filter(isReadableName), scopes: [...scopes].filter(Boolean) };
}

/** The hosted page and the uplinks' part together, in npm's response shape. */
export function mergeSearch(local: SearchResults, upstream: UplinkSearchResults): SearchResults {
  return {
    objects: [...local.objects, ...upstream.objects],
    total: local.total + upstream.total,
    time: local.time,
  };
}

interface Candidate {
  position: number;
  uplink: string;
  object: SearchObject;
}

/**
 * Forwards npm search to the uplinks that take it, all at once, and keeps only results fw would serve
 * from that uplink: a readable package name, a `packages` rule that proxies it to that uplink, a name
 * the caller may read and that is not hosted in fw. A name several uplinks return is kept from the one
 * its rule lists first. An uplink that fails, times out or rests contributes nothing (logged); the
 * search text is not sent to an uplink when it names a package or scope that must not reach it.
 */
export class SearchForwarder {
  constructor(private readonly options: SearchForwarderOptions) {}

  async search(query: UplinkSearchQuery, visible: (name: string) => boolean): Promise<UplinkSearchResults> {
    const { clients, proxyFor } = this.options;
    if (clients.length === 0 || !query.text.trim()) return { objects: [], total: 0 };
    const withheld = await this.withheld(query.text);
    const shares = uplinkShares(query.from, query.size, clients.length);
    const pages = await Promise.all(
      clients.map((client, i) =>
        withheld.has(client.name) ? null : this.ask(client, query, shares[i] ?? { from: 0, count: 0 }),
      ),
    );

    let total = 0;
    const best = new Map<string, Candidate>();
    const rank = (candidate: Candidate) => proxyFor(candidate.object.package.name).indexOf(candidate.uplink);
    pages.forEach((page, i) => {
      const client = clients[i];
      const share = shares[i];
      if (!page || !client || !share) return;
      total += page.total;
      page.objects.slice(0, share.count).forEach((object, k) => {
        if (!object) return;
        const { name } = object.package;
        if (!proxyFor(name).includes(client.name) || !visible(name)) return;
        const candidate = { position: (share.from + k) * clients.length + i, uplink: client.name, object };
        const seen = best.get(name);
        if (
          !seen ||
          rank(candidate) < rank(seen) ||
          (rank(candidate) === rank(seen) && candidate.position < seen.position)
        )
          best.set(name, candidate);
      });
    });
    const hosted = await hostedNames(best.keys(), this.options.isHosted);
    const objects = [...best.values()]
      .filter((candidate) => !hosted.has(candidate.object.package.name))
      .sort((a, b) => a.position - b.position)
      .map((candidate) => candidate.object);
    return { objects, total };
  }

  /**
   * Uplinks the text must not reach: all of them when a word is a hosted package's name, else those the
   * rules keep a named scope (`@scope/*`) or scoped name from — so searching for a private package asks
   * no one.
   */
  private async withheld(query: string): Promise<Set<string>> {
    const { names, scopes } = namesInText(query);
    const { clients, proxyFor } = this.options;
    if ((await hostedNames(names, this.options.isHosted)).size > 0) return new Set(clients.map((c) => c.name));
    const probes = [...scopes.map((scope) => `@${scope}/*`), ...names.filter((name) => name.startsWith("@"))];
    return new Set(
      clients.filter((client) => probes.some((probe) => !proxyFor(probe).includes(client.name))).map((c) => c.name),
    );
  }

  /** One uplink's page, validated; `null` (logged) when it fails or has no search. */
  private async ask(client: UpstreamClient, query: UplinkSearchQuery, share: UplinkShare) {
    // An empty share still asks for one result: the uplink's total counts on every page.
    const params = new URLSearchParams({
      text: query.text,
      size: String(Math.max(1, share.count)),
      from: String(share.from),
      ...query.params,
    });
    try {
      const body = await client.getJson(SEARCH_PATH, params, MAX_SEARCH_BYTES);
      if (!body) {
        this.options.logger.debug("uplink has no search", { uplink: client.name });
        return null;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(body));
      } catch (cause) {
        client.recordFailure();
        throw new UpstreamFailure("bad-response", client.name, "the search answer is not valid JSON", { cause });
      }
      const page = parseSearchPage(raw);
      if (!page) {
        client.recordFailure();
        throw new UpstreamFailure("bad-response", client.name, "the search answer is not an npm search result");
      }
      return page;
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      this.options.logger.warn("uplink search request failed", { uplink: client.name, err: error.message });
      return null;
    }
  }
}
