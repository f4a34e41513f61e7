import { passwordHashLoad } from "@fw/auth";
import { isStorageError, type StorageDriver } from "@fw/storage-r2";
import type { MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from "prom-client";
import type { AppEnv } from "../context.js";
import { parsePackagePath } from "../npm/names.js";

/** How a packument lookup was answered: from memory, from memory after a HEAD, or by reading storage. */
export type CacheLookup = "hit" | "revalidated" | "miss";
const CACHE_LOOKUPS: readonly CacheLookup[] = ["hit", "revalidated", "miss"];

export interface MetricsOptions {
  /**
   * Also export Node's process metrics (CPU, memory, event-loop lag, GC) as `fw_process_*` and
   * `fw_nodejs_*`. They start an event-loop monitor and a GC observer that live as long as the
   * process, so turn them on once per process (the Node entry), not for every registry a test builds.
   * Default false.
   */
  processMetrics?: boolean;
}

/**
 * Latency buckets in seconds: cached packument reads take well under a millisecond, publishes of large
 * tarballs to a remote bucket several seconds.
 */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]);

/** The route label of the package URLs (`/<name>…`), which Hono sees as one wildcard route. */
const PACKAGE_ROUTES = {
  packument: "/:package",
  version: "/:package/:version",
  tarball: "/:package/-/:tarball",
  revision: "/:package/-rev/:rev",
  "tarball-revision": "/:package/-/:tarball/-rev/:rev",
} as const;
/** The label of requests no route answered (Hono's not-found handler). */
export const UNMATCHED_ROUTE = "unmatched";
/** The label of package-shaped URLs with a name or file that is not valid. */
export const INVALID_PACKAGE_ROUTE = "/:package (invalid)";

function methodLabel(method: string): string {
  const upper = method.toUpperCase();
  return METHODS.has(upper) ? upper : "OTHER";
}

/**
 * The route a package URL addresses, as a pattern: raw paths would give every package and version a
 * time series of its own.
 */
export function packageRouteLabel(path: string): string {
  try {
    const parsed = parsePackagePath(path || "/");
    return parsed ? PACKAGE_ROUTES[parsed.target.kind] : UNMATCHED_ROUTE;
  } catch {
    return INVALID_PACKAGE_ROUTE;
  }
}

/**
 * What kind of document a storage key holds, for the CAS and error labels. Keys are built by fw's own
 * code, so the first segment is one of a few known words; anything else is "other".
 */
export function keyFamily(key: string): string {
  if (key.startsWith("packages/")) {
    if (key.endsWith("/packument.json")) return "packument";
    if (key.includes("/-/")) return "tarball";
    if (key.includes("/attestations/")) return "attestation";
    return "package-other";
  }
  const first = key.slice(0, key.indexOf("/"));
  switch (first) {
    case "users":
    case "tokens":
    case "logins":
    case "audit":
    case "oidc":
      return first;
    case "auth":
      return key.startsWith("auth/backoff/") ? "backoff" : "auth";
    default:
      return "other";
  }
}

/**
 * The registry's Prometheus instruments, in a registry of their own so that several fw registries in
 * one process (tests, embedding) never share or collide on metric names.
 */
export class Metrics {
  readonly registry = new Registry();
  /**
   * Responses by method, route pattern and status, and the time to their headers (a streamed tarball
   * body may take longer): `fw_http_requests_total` and `fw_http_request_duration_seconds`. The fast
   * path of the Node and Bun entries counts its own through `observeFastRead`.
   */
  private readonly requests = new RequestTally(LATENCY_BUCKETS);
  readonly cacheLookups: Counter<"result">;
  /** Lookups since the last scrape, added to `cacheLookups` when it is collected. */
  private readonly pendingLookups: Record<CacheLookup, number> = { hit: 0, revalidated: 0, miss: 0 };
  /** Conditional writes of documents refused because another writer changed them first (each is retried). */
  readonly casRetries: Counter<"document">;
  /** Storage calls that failed, other than refused conditional writes (those are the CAS retries). */
  readonly storageErrors: Counter<"operation" | "code">;
  readonly storageDuration: Histogram<"operation">;
  /** Failed calls to upstream registries (proxying, import), by upstream name and reason. */
  readonly upstreamErrors: Counter<"upstream" | "reason">;

  constructor(options: MetricsOptions = {}) {
    const registers = [this.registry];
    for (const metric of this.requests.metrics()) this.registry.registerMetric(metric);
    const pendingLookups = this.pendingLookups;
    this.cacheLookups = new Counter({
      name: "fw_packument_cache_lookups_total",
      help: "Packument cache lookups: hit (memory), revalidated (memory after a storage HEAD), miss (storage read).",
      labelNames: ["result"],
      registers,
      // Lookups are tallied in plain numbers (one per cached read) and added here, when scraped.
      collect() {
        for (const result of CACHE_LOOKUPS) {
          this.inc({ result }, pendingLookups[result]);
          pendingLookups[result] = 0;
        }
      },
    });
    const lookups = this.cacheLookups;
    new Gauge({
      name: "fw_packument_cache_hit_ratio",
      help: "Share of packument lookups answered from memory (hit or revalidated) since the process started.",
      registers,
      async collect() {
        const { values } = await lookups.get();
        let served = 0;
        let total = 0;
        for (const { labels, value } of values) {
          total += value;
          if (labels.result !== "miss") served += value;
        }
        this.set(total === 0 ? 0 : served / total);
      },
    });
    new Gauge({
      name: "fw_password_hashes",
      help: "Password derivations (logins, sign-ups, password changes) running and waiting their turn in this process.",
      labelNames: ["state"],
      registers,
      collect() {
        const load = passwordHashLoad();
        this.set({ state: "running" }, load.running);
        this.set({ state: "waiting" }, load.waiting);
      },
    });
    this.casRetries = new Counter({
      name: "fw_cas_retries_total",
      help: "Compare-and-swap writes refused because the document changed since it was read; each is retried.",
      labelNames: ["document"],
      registers,
    });
    this.storageErrors = new Counter({
      name: "fw_storage_errors_total",
      help: "Storage calls that failed, by operation and storage error code.",
      labelNames: ["operation", "code"],
      registers,
    });
    this.storageDuration = new Histogram({
      name: "fw_storage_operation_duration_seconds",
      help: "Storage call latency by operation (for streams, until the body starts).",
      labelNames: ["operation"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.upstreamErrors = new Counter({
      name: "fw_upstream_errors_total",
      help: "Failed calls to upstream registries, by upstream and reason.",
      labelNames: ["upstream", "reason"],
      registers,
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "fw_" });
  }

  /** The exposition text and its Content-Type, for `GET /-/metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Counts one response. `seconds` is the time to its headers. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe(methodLabel(method), route, status, seconds);
  }

  /**
   * For adapters that answer cached packument and tarball GETs without the Hono app (the Node
   * listener's `registry.fastRead`): counts the response under the same route as the full path would.
   */
  observeFastRead(method: string, route: "packument" | "tarball", status: number, seconds: number): void {
    this.observeRequest(method, PACKAGE_ROUTES[route], status, seconds);
  }

  cacheLookup(result: CacheLookup): void {
    this.pendingLookups[result] += 1;
  }

  upstreamError(upstream: string, reason: string): void {
    this.upstreamErrors.inc({ upstream, reason });
  }

  /**
   * Hono middleware that times and counts every request. Register it first, before authentication,
   * so that refusals (401, 413…) are counted too: Hono turns errors thrown further down into the
   * `onError` response before this middleware sees the result.
   */
  middleware(options: { basePath?: string } = {}): MiddlewareHandler<AppEnv> {
    const basePath = (options.basePath ?? "").replace(/\/+$/, "");
    return async (c, next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        const seconds = (performance.now() - started) / 1000;
        this.observeRequest(c.req.method, routeLabel(c, basePath), c.res.status, seconds);
      }
    };
  }

  /**
   * Wraps a storage driver to time its calls, count its failures and count refused compare-and-swap
   * writes (conditional puts of documents: packuments, users, tokens…). A refused create-only write
   * of a tarball is a publish race, not a CAS retry, and is not counted.
   */
  instrumentStorage(storage: StorageDriver): StorageDriver {
    const time = async <T>(operation: string, key: string | undefined, call: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await call();
      } catch (error) {
        if (isStorageError(error, "E_PRECONDITION")) {
          if (operation === "put" && key !== undefined && keyFamily(key) !== "tarball")
            this.casRetries.inc({ document: keyFamily(key) });
        } else {
          this.storageErrors.inc({ operation, code: isStorageError(error) ? error.code : "E_UNKNOWN" });
        }
        throw error;
      } finally {
        this.storageDuration.observe({ operation }, (performance.now() - started) / 1000);
      }
    };
    const wrapped: StorageDriver = {
      name: storage.name,
      head: (key, options) => time("head", key, () => storage.head(key, options)),
      get: (key, options) => time("get", key, () => storage.get(key, options)),
      stream: (key, options) => time("stream", key, () => storage.stream(key, options)),
      put: (key, body, options) => time("put", key, () => storage.put(key, body, options)),
      delete: (key, options) => time("delete", key, () => storage.delete(key, options)),
      list: (options) => time("list", undefined, () => storage.list(options)),
    };
    if (storage.dispose) {
      const dispose = storage.dispose.bind(storage);
      wrapped.dispose = () => dispose();
    }
    return wrapped;
  }
}

/** One method/route/status combination's responses. */
interface RequestSeries {
  readonly method: string;
  readonly route: string;
  readonly status: string;
  count: number;
  /** Seconds, summed over the responses. */
  sum: number;
  /** Responses per latency bucket, not cumulative; the last slot counts those above the largest bound. */
  readonly buckets: number[];
}

/** A sample as prom-client's Registry renders it (`metricName` defaults to the metric's name). */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/**
 * `fw_http_requests_total` (a counter) and `fw_http_request_duration_seconds` (a histogram), kept as
 * plain numbers per method, route and status and turned into samples only when scraped. Every response
 * is counted here, cached reads at tens of thousands a second, where prom-client's `Counter.inc` plus
 * `Histogram.observe` (sorting, hashing and validating their label objects on each call) took ~0.5 µs,
 * measured, and 14 % of a CPU profile of fw on Bun; this is one Map lookup and a few additions. The two
 * objects `metrics()` returns are registered in the prom-client Registry like its own metrics: it needs
 * `name`, `help`, `type`, `aggregator`, `get()` and `reset()` of them, in the shape its `get()` returns.
 */
class RequestTally {
  /** Series by route, method and status: lookups by the strings and number as given, no key to build. */
  private readonly index = new Map<string, Map<string, Map<number, RequestSeries>>>();
  private readonly series: RequestSeries[] = [];

  constructor(private readonly bounds: readonly number[]) {}

  observe(method: string, route: string, status: number, seconds: number): void {
    let byMethod = this.index.get(route);
    if (!byMethod) {
      byMethod = new Map();
      this.index.set(route, byMethod);
    }
    let byStatus = byMethod.get(method);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(method, byStatus);
    }
    let series = byStatus.get(status);
    if (!series) {
      series = { method, route, status: String(status), count: 0, sum: 0, buckets: this.bounds.map(() => 0) };
      series.buckets.push(0);
      byStatus.set(status, series);
      this.series.push(series);
    }
    series.count += 1;
    series.sum += seconds;
    let bucket = 0;
    while (bucket < this.bounds.length && seconds > (this.bounds[bucket] as number)) bucket += 1;
    (series.buckets[bucket] as number) += 1;
  }

  private reset(): void {
    this.index.clear();
    this.series.length = 0;
  }

  metrics(): Metric[] {
    const reset = () => this.reset();
    const counter = {
      name: "fw_http_requests_total",
      help: "HTTP responses by method, route pattern and status code.",
      type: "counter",
      aggregator: "sum",
    };
    const histogram = {
      name: "fw_http_request_duration_seconds",
      help: "Time from receiving a request to its response headers, by method and route pattern.",
      type: "histogram",
      aggregator: "sum",
    };
    const metrics = [
      { ...counter, get: async () => ({ ...counter, values: this.counterSamples() }), reset },
      { ...histogram, get: async () => ({ ...histogram, values: this.histogramSamples(histogram.name) }), reset },
    ];
    // Duck-typed for the Registry (see the class comment); prom-client's types list only its own classes.
    return metrics as unknown as Metric[];
  }

  private counterSamples(): Sample[] {
    return this.series.map(({ method, route, status, count }) => ({
      value: count,
      labels: { method, route, status },
    }));
  }

  /** Cumulative `_bucket` samples, `+Inf`, `_sum` and `_count` per method and route (statuses added up). */
  private histogramSamples(name: string): Sample[] {
    const byRoute = new Map<string, { method: string; route: string; count: number; sum: number; buckets: number[] }>();
    for (const series of this.series) {
      const key = `${series.method} ${series.route}`;
      let merged = byRoute.get(key);
      if (!merged) {
        merged = { method: series.method, route: series.route, count: 0, sum: 0, buckets: series.buckets.map(() => 0) };
        byRoute.set(key, merged);
      }
      merged.count += series.count;
      merged.sum += series.sum;
      series.buckets.forEach((n, i) => {
        (merged.buckets[i] as number) += n;
      });
    }
    const samples: Sample[] = [];
    for (const { method, route, count, sum, buckets } of byRoute.values()) {
      let below = 0;
      this.bounds.forEach((le, i) => {
        below += buckets[i] as number;
        samples.push({ value: below, labels: { method, route, le }, metricName: `${name}_bucket` });
      });
      samples.push({ value: count, labels: { method, route, le: "+Inf" }, metricName: `${name}_bucket` });
      samples.push({ value: sum, labels: { method, route }, metricName: `${name}_sum` });
      samples.push({ value: count, labels: { method, route }, metricName: `${name}_count` });
    }
    return samples;
  }
}

/**
 * The route pattern that answered: the first matched handler with a real path (not a middleware,
 * not the package wildcard) — the app's routes never fall through to another one — else the package
 * route the path addresses, else "unmatched".
 */
function routeLabel(c: Parameters<MiddlewareHandler<AppEnv>>[0], basePath: string): string {
  let wildcard = false;
  for (const route of matchedRoutes(c)) {
    if (route.method === "ALL") continue;
    if (route.path.endsWith("*")) {
      wildcard = true;
      continue;
    }
    const path = basePath && route.path.startsWith(basePath) ? route.path.slice(basePath.length) : route.path;
    return path || "/";
  }
  if (!wildcard) return UNMATCHED_ROUTE;
  const path = c.req.path;
  return packageRouteLabel(basePath && path.startsWith(basePath) ? path.slice(basePath.length) : path);
}
