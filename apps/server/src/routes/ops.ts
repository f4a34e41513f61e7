import { ipAllowed } from "@fw/auth";
import { isStorageError } from "@fw/storage-r2";
import type { Hono } from "hono";
import { type AppContext, type AppEnv, identity, json, type Services } from "../context.js";
import { RegistryError } from "../http/errors.js";
import type { Metrics } from "../services/metrics.js";

/** Loopback only: a Prometheus agent on the same host (or in the same pod) scrapes without credentials. */
export const DEFAULT_METRICS_ALLOW_FROM = ["127.0.0.0/8", "::1/128"] as const;

export interface MetricsAccess {
  /**
   * Serve `/-/metrics` to everyone. Metrics name routes and counts, not packages or users, but they
   * still show an outsider how busy and how healthy the registry is. Default false.
   */
  public?: boolean;
  /**
   * Client addresses (CIDR ranges) that may scrape without credentials when `public` is off, e.g. the
   * Prometheus pods' network. Default loopback only. Requests that came through a proxy (with
   * `Forwarded`, `X-Forwarded-For` or `X-Real-IP`) never qualify: behind a local reverse proxy every
   * client would otherwise look like loopback. Admins (users or tokens, read-only ones too) always may.
   */
  allowFrom?: readonly string[];
}

export interface OpsOptions {
  metrics?: MetricsAccess;
  /** How long `/-/ready` waits for storage before answering 503, in ms. Default 2000. */
  readyTimeoutMs?: number;
  /**
   * How long a storage probe's verdict is reused, in ms, so that a flood of `/-/ready` requests
   * costs storage one call per interval. Default 1000.
   */
  readyCacheMs?: number;
}

const NO_STORE = { "cache-control": "no-store" };
const PROXY_HEADERS = ["forwarded", "x-forwarded-for", "x-real-ip"] as const;

/**
 * Asks storage for one key under `packages/` (a list the registry needs anyway), bounded by a timeout
 * even for a driver that ignores the abort signal. Resolves to a problem description, or undefined.
 */
async function probeStorage(services: Services, timeoutMs: number): Promise<string | undefined> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      controller.abort();
      resolve(`no answer within ${timeoutMs} ms`);
    }, timeoutMs);
  });
  const call = services.storage.list({ prefix: "packages/", limit: 1, signal: controller.signal }).then(
    () => undefined,
    (error: unknown) => {
      services.logger.warn("readiness probe: storage failed", { err: String(error) });
      return isStorageError(error) ? error.code : "error";
    },
  );
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function mayReadMetrics(c: AppContext, access: MetricsAccess): boolean {
  if (access.public) return true;
  if (identity(c)?.principal.admin) return true;
  if (PROXY_HEADERS.some((name) => c.req.header(name) !== undefined)) return false;
  const allowFrom = access.allowFrom ?? DEFAULT_METRICS_ALLOW_FROM;
  // ipAllowed reads an empty list as "from anywhere"; here it means "from nowhere".
  return allowFrom.length > 0 && ipAllowed(c.env?.clientIp, allowFrom);
}

/**
 * Operations endpoints for load balancers and monitoring:
 * - `GET /-/health`: liveness, 200 `{"status":"ok"}` while the process serves requests;
 * - `GET /-/ready`: readiness, 200 once storage answers a cheap call in time, else 503 `{"error"}`;
 * - `GET /-/metrics`: Prometheus text, for admins and the `metrics.allowFrom` addresses unless public.
 */
export function opsRoutes(app: Hono<AppEnv>, services: Services & { metrics: Metrics }, options: OpsOptions = {}) {
  const timeoutMs = options.readyTimeoutMs ?? 2000;
  const cacheMs = options.readyCacheMs ?? 1000;
  const access = options.metrics ?? {};
  let verdict: { problem: string | undefined; at: number } | undefined;
  let probing: Promise<string | undefined> | undefined;

  const readiness = async (): Promise<string | undefined> => {
    if (verdict && Date.now() - verdict.at < cacheMs) return verdict.problem;
    probing ??= probeStorage(services, timeoutMs).then((problem) => {
      verdict = { problem, at: Date.now() };
      probing = undefined;
      return problem;
    });
    return probing;
  };

  app.on(["GET", "HEAD"], "/-/health", () => json({ status: "ok" }, 200, NO_STORE));

  app.on(["GET", "HEAD"], "/-/ready", async () => {
    const problem = await readiness();
    if (problem !== undefined) {
      throw new RegistryError("E_UNAVAILABLE", `not ready: storage is unreachable (${problem})`, {
        headers: { ...NO_STORE, "retry-after": "1" },
      });
    }
    return json({ status: "ready" }, 200, NO_STORE);
  });

  app.get("/-/metrics", async (c) => {
    if (!mayReadMetrics(c, access)) {
      if (!identity(c))
        throw new RegistryError("E_UNAUTHORIZED", "metrics are served to admins and allowed addresses only");
      throw new RegistryError("E_FORBIDDEN", "metrics are served to admins and allowed addresses only");
    }
    const { contentType, body } = await services.metrics.render();
    return new Response(body, { status: 200, headers: { "content-type": contentType, ...NO_STORE } });
  });
}
