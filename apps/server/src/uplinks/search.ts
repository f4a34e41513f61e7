import semver from "semver";
import type { Logger } from "../context.js";
import { assertReadableName } from "../npm/names.js";
import { type SearchObject, type SearchPerson, type SearchResults, scopeOf } from "../services/search.js";
import { hostedNames, isObject } from "./audit.js";
import { type UpstreamClient, UpstreamFailure } from "./client.js";

/** npm's search endpoint (libnpmsearch), on fw and on every uplink. */
export const SEARCH_PATH = "/-/v1/search";
/** Largest search answer taken from an uplink: npm's 250 results, of 1-4 KB each, fit with room to spare. */
const MAX_SEARCH_BYTES = 2 * 1024 * 1024;
/**
 * How long one search waits for the uplinks, all of them together, with no retry: `npm search` answers at
 * once from the hosted packages, so a slow uplink must not hold it for the install timeouts (two minutes
 * with retries). An uplink that has not answered by then adds nothing to that search.
 */
export const SEARCH_BUDGET_MS = 3_000;
/** npm's registry answers at most 250 results a page, and so does fw. */
const MAX_OBJECTS = 250;
/** Totals above this are not believed (and sums of them stay exact). */
const MAX_TOTAL = 2 ** 31;
/** The ranking weights npm sends (libnpmsearch), forwarded when they look like numbers. */
const WEIGHTS = ["quality", "popularity", "maintenance"] as const;
const WEIGHT = /^(?:\d{1,3}(?:\.\d{1,10})?|\.\d{1,10})$/;
/** Search words npm's registry reads as qualifiers (`scope:acme`, `keywords:a,b`), not as names. */
const QUALIFIER = /^([a-z-]+):(.*)$/;
/** C0 and C1 control characters: ESC and CSI in upstream text would reach the terminal `npm search` prints to. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

export interface UplinkSearchQuery {
  /** The caller's search text, as sent to fw. */
  text: string;
  /** Where the uplinks' part of the page starts in their combined list (see `uplinkWindow`, `uplinkShare`). */
  from: number;
  /** How many of the uplinks' combined results the page has room for (0 when hosted ones fill it). */
  size: number;
  /** Other npm search parameters, forwarded unchanged (see `forwardedParams`). */
  params?: Readonly<Record<string, string>>;
}

/** The uplinks' part of a search page: filtered results in page order, and the asked uplinks' totals summed. */
export interface UplinkSearchResults {
  objects: SearchObject[];
  total: number;
}

/** One uplink's validated search page: a hole (`null`) where a result was unusable, so ranks stay put. */
export interface UplinkSearchPage {
  objects: (SearchObject | null)[];
  total: number;
}

/** Which results of one uplink's own list a page covers: `count` of them from its result `from` on. */
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
  /** How long one search waits for the uplinks. Default `SEARCH_BUDGET_MS`. */
  budgetMs?: number;
  now?: () => number;
}

function isReadableName(name: string): boolean {
  try {
    assertReadableName(name);
    return true;
  } catch {
    return false;
  }
}

/** Upstream text without control characters: line breaks and tabs become spaces, the others are dropped. */
function clean(value: string): string {
  return value.replace(CONTROL, (char) => (/\s/.test(char) ? " " : ""));
}

function text(value: unknown, max: number): string | undefined {
  return typeof value === "string" && value.length <= max ? value : undefined;
}

/** Text shown to people, cleaned: `undefined` unless a string of 1 to `max` characters once cleaned. */
function display(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  const cleaned = clean(value);
  return cleaned && cleaned.length <= max ? cleaned : undefined;
}

function finite(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function person(value: unknown): SearchPerson | undefined {
  if (!isObject(value)) return undefined;
  const username = display(value.username, 256);
  if (!username) return undefined;
  const email = display(value.email, 256);
  return { username, ...(email && { email }) };
}

/** Only http(s) links of the kinds npm's registry gives; anything else is dropped. */
function links(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const key of ["npm", "homepage", "repository", "bugs"]) {
    const link = value[key];
    if (typeof link !== "string" || link.length > 2048 || !URL.canParse(link)) continue;
    // Serialised again: the URL parser drops tabs and line breaks and percent-encodes other controls.
    const url = new URL(link);
    if (url.protocol === "http:" || url.protocol === "https:") out[key] = url.href;
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
 * and size and its text stripped of control characters; `null` without a readable package name and an
 * exact semver version. The scope is derived from the name, never taken from upstream.
 */
export function normaliseResult(raw: unknown): SearchObject | null {
  if (!isObject(raw) || !isObject(raw.package)) return null;
  const pkg = raw.package;
  const name = text(pkg.name, 214);
  const version = text(pkg.version, 256);
  if (!name || !isReadableName(name) || !version || semver.valid(version) !== version) return null;
  const keywords = Array.isArray(pkg.keywords)
    ? pkg.keywords
        .map((keyword) => display(keyword, 256))
        .filter((keyword) => keyword !== undefined)
        .slice(0, 64)
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
  const deprecated = display(flags.deprecated, 1024);
  const kept = {
    ...(typeof flags.insecure === "number" && Number.isFinite(flags.insecure) && { insecure: flags.insecure }),
    ...(typeof flags.unstable === "boolean" && { unstable: flags.unstable }),
    ...(deprecated !== undefined && { deprecated }),
  };
  return {
    package: {
      name,
      scope: scopeOf(name),
      version,
      description: typeof pkg.description === "string" ? clean(pkg.description).slice(0, 4096) : "",
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
 * One uplink's share of the positions `from … from + size - 1` of the uplinks' combined list, which holds
 * every uplink's results one uplink after another, in config order: `before` is the sum of the totals of
 * the uplinks ahead of it. So each page is an exact window of each list and `total` an exact sum.
 */
export function uplinkShare(from: number, size: number, before: number): UplinkShare {
  const start = Math.max(0, from - before);
  return { from: start, count: Math.max(0, from + size - before - start) };
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
 * Forwards npm search to the uplinks that take it and keeps only results fw would serve from that
 * uplink: a readable package name, a `packages` rule that proxies it to that uplink, a name the caller
 * may read and that is not hosted in fw. A name several uplinks return on one page is kept from the one
 * its rule lists first. An uplink that fails, is slower than the search budget or rests contributes
 * nothing; its failures and successes do not count in its circuit breaker, which guards installs. The
 * search text is not sent to an uplink when it names a package or scope that must not reach it.
 */
export class SearchForwarder {
  /** Uplinks whose last search failed: a warning when one starts failing, not on every search. */
  private readonly failing = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly options: SearchForwarderOptions) {
    this.now = options.now ?? Date.now;
  }

  async search(query: UplinkSearchQuery, visible: (name: string) => boolean): Promise<UplinkSearchResults> {
    const { proxyFor } = this.options;
    if (this.options.clients.length === 0 || !query.text.trim()) return { objects: [], total: 0 };
    const withheld = await this.withheld(query.text, visible);
    const clients = this.options.clients.filter((client) => !withheld.has(client.name));
    const deadline = this.now() + (this.options.budgetMs ?? SEARCH_BUDGET_MS);
    // An uplink's share depends on the totals of those ahead of it. Within npm's first 250 results (every
    // page npm itself asks for) it lies in the uplink's first `from + size` results anyway: all uplinks are
    // asked at once, the first for its share, the others for that much. Deeper pages ask one after another.
    const together = query.from + query.size <= MAX_OBJECTS;
    const prefix = { from: 0, count: query.from + query.size };
    const pages = together
      ? await Promise.all(
          clients.map((client, i) =>
            this.ask(client, query, i === 0 ? uplinkShare(query.from, query.size, 0) : prefix, deadline),
          ),
        )
      : [];

    let total = 0;
    const best = new Map<string, Candidate>();
    const rank = (candidate: Candidate) => proxyFor(candidate.object.package.name).indexOf(candidate.uplink);
    for (const [i, client] of clients.entries()) {
      const share = uplinkShare(query.from, query.size, total);
      const asked = together && i > 0 ? prefix : share;
      const page = together ? pages[i] : await this.ask(client, query, share, deadline);
      if (!page) continue;
      const before = total;
      total += page.total;
      const skip = share.from - asked.from;
      page.objects.slice(skip, skip + share.count).forEach((object, k) => {
        if (!object) return;
        const { name } = object.package;
        if (!proxyFor(name).includes(client.name) || !visible(name)) return;
        const candidate = { position: before + share.from + k, uplink: client.name, object };
        const seen = best.get(name);
        if (
          !seen ||
          rank(candidate) < rank(seen) ||
          (rank(candidate) === rank(seen) && candidate.position < seen.position)
        )
          best.set(name, candidate);
      });
    }
    const hosted = await hostedNames(best.keys(), this.options.isHosted);
    const objects = [...best.values()]
      .filter((candidate) => !hosted.has(candidate.object.package.name))
      .sort((a, b) => a.position - b.position)
      .map((candidate) => candidate.object);
    return { objects, total };
  }

  /**
   * Uplinks the text must not reach: all of them when a word is the name of a hosted package the caller
   * may read, else those the rules keep a named scope (`@scope/*`) or name from — so searching for a
   * private package asks no one. A hosted name the caller may not read withholds no more than its rule
   * does, so the answer does not tell whether it is hosted.
   */
  private async withheld(query: string, visible: (name: string) => boolean): Promise<Set<string>> {
    const { names, scopes } = namesInText(query);
    const { clients, proxyFor } = this.options;
    if ((await hostedNames(names.filter(visible), this.options.isHosted)).size > 0)
      return new Set(clients.map((c) => c.name));
    const probes = [...scopes.map((scope) => `@${scope}/*`), ...names];
    return new Set(
      clients.filter((client) => probes.some((probe) => !proxyFor(probe).includes(client.name))).map((c) => c.name),
    );
  }

  /** One uplink's page, validated; `null` when it fails, has no search, rests or the budget is spent. */
  private async ask(
    client: UpstreamClient,
    query: UplinkSearchQuery,
    share: UplinkShare,
    deadline: number,
  ): Promise<UplinkSearchPage | null> {
    const { logger } = this.options;
    const remaining = deadline - this.now();
    if (client.isResting() || remaining <= 0) {
      // Resting was logged when it began; a spent budget is the slowness of the uplinks asked before.
      logger.debug("uplink not asked for search", {
        uplink: client.name,
        reason: remaining <= 0 ? "budget spent" : "resting",
      });
      return null;
    }
    // An empty share still asks for one result: the uplink's total counts in `total` and places the
    // uplinks after it.
    const params = new URLSearchParams({
      text: query.text,
      size: String(share.count > 0 ? share.count : 1),
      from: String(share.count > 0 ? share.from : 0),
      ...query.params,
    });
    try {
      const body = await client.getJson(SEARCH_PATH, params, {
        maxBytes: MAX_SEARCH_BYTES,
        totalMs: remaining,
        retries: 0,
        circuit: false,
      });
      if (!body) {
        logger.debug("uplink has no search", { uplink: client.name });
        return null;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(new TextDecoder().decode(body));
      } catch (cause) {
        throw new UpstreamFailure("bad-response", client.name, "the search answer is not valid JSON", { cause });
      }
      const page = parseSearchPage(raw);
      if (!page)
        throw new UpstreamFailure("bad-response", client.name, "the search answer is not an npm search result");
      if (this.failing.delete(client.name)) logger.info("uplink search answers again", { uplink: client.name });
      return page;
    } catch (error) {
      if (!(error instanceof UpstreamFailure)) throw error;
      const fields = { uplink: client.name, err: error.message };
      if (this.failing.has(client.name)) logger.debug("uplink search request failed", fields);
      else {
        this.failing.add(client.name);
        logger.warn("uplink search failing; its results are left out until it answers again", fields);
      }
      return null;
    }
  }
}
