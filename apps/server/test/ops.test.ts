import { passwordHashLoad, setPasswordHashLimits } from "@fw/auth";
import { casUpdate, type StorageDriver, StorageError } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { createRegistry } from "../src/app.js";
import type { AppEnv, RequestInfo, Services } from "../src/context.js";
import { errorResponse, RegistryError } from "../src/http/errors.js";
import { miscRoutes } from "../src/routes/misc.js";
import { type OpsOptions, opsRoutes } from "../src/routes/ops.js";
import { packageRoutes } from "../src/routes/packages.js";
import { userRoutes } from "../src/routes/users.js";
import { Metrics } from "../src/services/metrics.js";
import { publishBody } from "./helpers/packages.js";
import { testConfig } from "./helpers/registry.js";

const ORIGIN = "http://registry.test";
const REMOTE = "203.0.113.9";

/**
 * The registry wired as app.ts will be once the lead adds the metrics middleware and the ops routes:
 * createRegistry's services (over instrumented storage) plus a Hono app with the middleware first.
 */
function wired(options: { storage?: StorageDriver; ops?: OpsOptions } = {}) {
  const metrics = new Metrics();
  const storage = metrics.instrumentStorage(options.storage ?? memoryDriver());
  const registry = createRegistry(testConfig("/unused"), { storage });
  const services: Services & { metrics: Metrics } = { ...registry.services, metrics };
  const app = new Hono<AppEnv>();
  app.use("*", metrics.middleware());
  app.use("*", async (c, next) => {
    const header = c.req.header("authorization");
    if (header?.startsWith("Bearer "))
      c.set("identity", await services.users.resolveToken(header.slice(7), c.env?.clientIp));
    else if (header) throw new RegistryError("E_UNAUTHORIZED", "malformed Authorization header");
    await next();
  });
  userRoutes(app, services);
  miscRoutes(app, services);
  opsRoutes(app, services, options.ops);
  packageRoutes(app, services);
  app.notFound(() => errorResponse(new RegistryError("E_NOT_FOUND", "not found"), services.logger));
  app.onError((error) => errorResponse(error, services.logger));
  const send = (path: string, init: RequestInit = {}, info: RequestInfo = { clientIp: REMOTE }) =>
    app.fetch(new Request(`${ORIGIN}${path}`, init), info);
  return { metrics, services, registry, send };
}

async function scrape(metrics: Metrics): Promise<string> {
  return (await metrics.render()).body;
}

/** The value of one sample line, e.g. `fw_http_requests_total{method="GET",route="/-/ping",status="200"}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).split(" ")[0] ?? "";
    if (wanted.every((pair) => labelText.includes(pair))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** Waits (a bounded number of event-loop turns) until `count` password derivations are running. */
async function untilRunning(count: number): Promise<void> {
  for (let turns = 0; passwordHashLoad().running < count && turns < 10_000; turns++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function adminAndUser(services: Services) {
  await services.users.store.create("root", "root password 1", { admin: true });
  await services.users.store.create("alice", "alice password 1");
  const admin = (await services.users.createToken("root", { readonly: true })).token;
  const user = (await services.users.createToken("alice", {})).token;
  return { admin, user };
}

describe("/-/health and /-/ready", () => {
  it("answer 200 while storage works and /-/ready 503 with an npm-style error when it does not", async () => {
    const { send } = wired();
    const health = await send("/-/health");
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect(health.headers.get("cache-control")).toBe("no-store");
    const ready = await send("/-/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready" });
    expect((await send("/-/health", { method: "HEAD" })).status).toBe(200);

    const broken = memoryDriver();
    broken.list = async () => {
      throw new StorageError("E_UNAVAILABLE", "connection refused", { driver: "memory" });
    };
    const down = wired({ storage: broken });
    const refused = await down.send("/-/ready");
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: "not ready: storage is unreachable (E_UNAVAILABLE)" });
    expect(refused.headers.get("retry-after")).toBe("1");
    expect((await down.send("/-/health")).status).toBe(200);
  });

  it("answers 503 when storage does not answer within the timeout", async () => {
    const hanging = memoryDriver();
    hanging.list = () => new Promise(() => {});
    const { send } = wired({ storage: hanging, ops: { readyTimeoutMs: 20 } });
    const response = await send("/-/ready");
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ error: "not ready: storage is unreachable (no answer within 20 ms)" });
  });

  it("asks storage at most once per interval however many probes arrive", async () => {
    const storage = memoryDriver();
    let lists = 0;
    const list = storage.list.bind(storage);
    storage.list = (options) => {
      lists++;
      return list(options);
    };
    const { send, registry } = wired({ storage, ops: { readyCacheMs: 60_000 } });
    await registry.ready;
    const before = lists;
    const answers = await Promise.all(Array.from({ length: 50 }, () => send("/-/ready")));
    expect(answers.every((r) => r.status === 200)).toBe(true);
    expect(lists - before).toBe(1);
  });
});

describe("/-/metrics", () => {
  it("serves Prometheus text to loopback and admins, and refuses other callers", async () => {
    const { send, services } = wired();
    const { admin, user } = await adminAndUser(services);

    const local = await send("/-/metrics", {}, { clientIp: "127.0.0.1" });
    expect(local.status).toBe(200);
    expect(local.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    expect(await local.text()).toContain("# TYPE fw_http_requests_total counter");
    expect((await send("/-/metrics", {}, { clientIp: "::1" })).status).toBe(200);
    expect((await send("/-/metrics", {}, { clientIp: "::ffff:127.0.0.1" })).status).toBe(200);

    const anonymous = await send("/-/metrics");
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: "metrics are served to admins and allowed addresses only" });
    // A local reverse proxy makes every client look like loopback: forwarded requests never qualify.
    const proxied = await send("/-/metrics", { headers: { "x-forwarded-for": REMOTE } }, { clientIp: "127.0.0.1" });
    expect(proxied.status).toBe(401);
    const notAdmin = await send("/-/metrics", { headers: { authorization: `Bearer ${user}` } });
    expect(notAdmin.status).toBe(403);
    expect((await notAdmin.json()) as object).toHaveProperty("error");
    const byAdmin = await send("/-/metrics", { headers: { authorization: `Bearer ${admin}` } });
    expect(byAdmin.status).toBe(200);
  });

  it("follows metrics.public and metrics.allowFrom", async () => {
    expect((await wired({ ops: { metrics: { public: true } } }).send("/-/metrics")).status).toBe(200);
    const pods = wired({ ops: { metrics: { allowFrom: ["10.8.0.0/16"] } } });
    expect((await pods.send("/-/metrics", {}, { clientIp: "10.8.3.4" })).status).toBe(200);
    expect((await pods.send("/-/metrics", {}, { clientIp: "127.0.0.1" })).status).toBe(401);
    const nobody = wired({ ops: { metrics: { allowFrom: [] } } });
    expect((await nobody.send("/-/metrics", {}, { clientIp: "127.0.0.1" })).status).toBe(401);
  });

  it("counts requests by route pattern, never by raw path, including refusals", async () => {
    const { send, services, metrics } = wired();
    const { user } = await adminAndUser(services);
    const auth = { authorization: `Bearer ${user}`, "content-type": "application/json" };
    const published = await send("/@acme%2fwidget", {
      method: "PUT",
      headers: auth,
      body: JSON.stringify(publishBody(ORIGIN, { name: "@acme/widget", version: "1.0.0" })),
    });
    expect(published.status).toBe(201);
    for (let i = 0; i < 40; i++) {
      await send(`/pkg-${i}`);
      await send(`/pkg-${i}/1.0.${i}`);
      await send(`/pkg-${i}/-/pkg-${i}-1.0.${i}.tgz`);
      await send(`/-/package/pkg-${i}/dist-tags`);
      await send(`/-/nothing-here-${i}`);
      await send(`/..%2f${i}`);
    }
    expect((await send("/@acme/widget")).status).toBe(200);
    expect((await send("/@acme/widget/-/widget-1.0.0.tgz")).status).toBe(200);
    expect((await send("/-/whoami", { headers: { authorization: "Basic" } })).status).toBe(401);
    expect((await send("/-/ping")).status).toBe(200);

    const text = await scrape(metrics);
    const routes = new Set(
      [...text.matchAll(/^fw_http_requests_total\{[^}]*route="([^"]*)"/gm)].map((match) => match[1]),
    );
    expect([...routes].sort()).toEqual(
      [
        "/-/package/:name/dist-tags",
        "/-/ping",
        "/-/whoami",
        "/:package",
        "/:package (invalid)",
        "/:package/-/:tarball",
        "/:package/:version",
        "unmatched",
      ].sort(),
    );
    const get = (route: string, status: string) =>
      sample(text, "fw_http_requests_total", { method: "GET", route, status });
    expect(sample(text, "fw_http_requests_total", { method: "PUT", route: "/:package", status: "201" })).toBe(1);
    expect(get("/:package", "404")).toBe(40);
    expect(get("/:package", "200")).toBe(1);
    expect(get("/:package/-/:tarball", "200")).toBe(1);
    expect(get("/-/whoami", "401")).toBe(1);
    expect(get("unmatched", "404")).toBe(40);
    expect(sample(text, "fw_http_request_duration_seconds_count", { method: "GET", route: "/-/ping" })).toBe(1);
  });

  it("counts fast-path responses, cache lookups, CAS retries, storage and upstream errors", async () => {
    const metrics = new Metrics();
    metrics.observeFastRead("GET", "packument", 200, 0.0002);
    metrics.observeFastRead("GET", "packument", 304, 0.003);
    metrics.observeFastRead("HEAD", "tarball", 304, 0.0001);
    for (const result of ["hit", "hit", "hit", "revalidated", "miss"] as const) metrics.cacheLookup(result);
    metrics.upstreamError("npmjs", "timeout");

    const storage = metrics.instrumentStorage(memoryDriver());
    await storage.put("packages/x/packument.json", "{}");
    // Writers racing on one document: each refused conditional write is one CAS retry.
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        casUpdate<Record<string, number>>(storage, "packages/x/packument.json", (doc) => ({ ...doc, [i]: i }), {
          baseDelayMs: 1,
        }),
      ),
    );
    await expect(storage.get("../escape")).rejects.toThrow(StorageError);
    await storage.put("packages/x/-/x-1.0.0.tgz", "a", { ifNoneMatch: "*" });
    await expect(storage.put("packages/x/-/x-1.0.0.tgz", "a", { ifNoneMatch: "*" })).rejects.toThrow();

    const text = await scrape(metrics);
    expect(sample(text, "fw_http_requests_total", { method: "GET", route: "/:package", status: "200" })).toBe(1);
    expect(sample(text, "fw_http_requests_total", { method: "GET", route: "/:package", status: "304" })).toBe(1);
    expect(
      sample(text, "fw_http_requests_total", { method: "HEAD", route: "/:package/-/:tarball", status: "304" }),
    ).toBe(1);
    // The latency histogram is per method and route (both statuses), its buckets cumulative.
    expect(text).toContain("# TYPE fw_http_request_duration_seconds histogram");
    const packumentLatency = (name: string, le?: string) =>
      sample(text, `fw_http_request_duration_seconds${name}`, {
        method: "GET",
        route: "/:package",
        ...(le !== undefined && { le }),
      });
    expect(packumentLatency("_bucket", "0.0005")).toBe(1);
    expect(packumentLatency("_bucket", "0.001")).toBe(1);
    expect(packumentLatency("_bucket", "0.005")).toBe(2);
    expect(packumentLatency("_bucket", "+Inf")).toBe(2);
    expect(packumentLatency("_count")).toBe(2);
    expect(packumentLatency("_sum")).toBeCloseTo(0.0032, 9);
    // The same numbers through prom-client's JSON form (what its cluster aggregator merges), and reset.
    const json = await metrics.registry.getMetricsAsJSON();
    expect(json.find((metric) => metric.name === "fw_http_requests_total")?.values).toContainEqual({
      value: 1,
      labels: { method: "HEAD", route: "/:package/-/:tarball", status: "304" },
    });
    metrics.registry.resetMetrics();
    expect(sample(await scrape(metrics), "fw_http_request_duration_seconds_count", { method: "GET" })).toBeUndefined();
    expect(sample(text, "fw_packument_cache_lookups_total", { result: "hit" })).toBe(3);
    expect(sample(text, "fw_packument_cache_hit_ratio", {})).toBe(0.8);
    expect(sample(text, "fw_upstream_errors_total", { upstream: "npmjs", reason: "timeout" })).toBe(1);
    expect(sample(text, "fw_cas_retries_total", { document: "packument" })).toBeGreaterThan(0);
    expect(sample(text, "fw_cas_retries_total", { document: "tarball" })).toBeUndefined();
    expect(sample(text, "fw_storage_errors_total", { operation: "get", code: "E_INVALID_KEY" })).toBe(1);
    expect(sample(text, "fw_storage_operation_duration_seconds_count", { operation: "put" })).toBeGreaterThan(8);
  });

  it("shows password derivations running and waiting while logins queue for them", async () => {
    const { metrics, services, send } = wired();
    await services.users.store.create("alice", "alice password 1");
    const login = (password: string) =>
      send("/-/user/org.couchdb.user:alice", {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ _id: "org.couchdb.user:alice", name: "alice", password, type: "user", roles: [] }),
      });
    const { concurrency } = passwordHashLoad();
    const logins = Array.from({ length: concurrency + 3 }, (_, i) =>
      login(i % 2 ? "alice password 1" : "wrong password 1"),
    );
    await untilRunning(concurrency);
    const during = await scrape(metrics);
    const running = sample(during, "fw_password_hashes", { state: "running" }) ?? -1;
    const waiting = sample(during, "fw_password_hashes", { state: "waiting" }) ?? -1;
    expect(running).toBe(concurrency);
    expect(waiting).toBeGreaterThan(0);
    const statuses = (await Promise.all(logins)).map((response) => response.status);
    expect(statuses).toEqual(statuses.map((_, i) => (i % 2 ? 201 : 401)));
    const after = await scrape(metrics);
    expect(sample(after, "fw_password_hashes", { state: "running" })).toBe(0);
    expect(sample(after, "fw_password_hashes", { state: "waiting" })).toBe(0);
  });

  it("keeps each registry's metrics apart in one process", async () => {
    const a = wired();
    const b = wired();
    await a.send("/-/ping");
    await a.send("/-/ping");
    await b.send("/-/ping");
    const labels = { method: "GET", route: "/-/ping", status: "200" };
    expect(sample(await scrape(a.metrics), "fw_http_requests_total", labels)).toBe(2);
    expect(sample(await scrape(b.metrics), "fw_http_requests_total", labels)).toBe(1);
  });
});

describe("password checks under load", () => {
  it("answers 503 with Retry-After (JSON, or the web login form again) beyond the waiting password checks, and logins work after", async () => {
    const { services, send } = wired();
    await services.users.store.create("alice", "alice password 1");
    const login = (name: string, password: string) =>
      send(`/-/user/org.couchdb.user:${name}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password, type: "user", roles: [] }),
      });
    // The process's first password check also makes the dummy hash unknown users are checked against.
    expect((await login("alice", "alice password 1")).status).toBe(201);
    const { concurrency } = passwordHashLoad();
    try {
      setPasswordHashLimits({ concurrency: 1, maxWaiting: 0 });
      const alice = login("alice", "alice password 1");
      await untilRunning(1);
      // An unknown user's password is checked against a dummy hash, which must be made first: refused too.
      const refused = await Promise.all([login("alice", "alice password 1"), login("nobody", "nobody password")]);
      for (const response of refused) {
        expect(response.status).toBe(503);
        expect(response.headers.get("retry-after")).toBe("5");
        expect(await response.json()).toEqual({
          error: "too many password checks are waiting: retry in a few seconds",
        });
      }
      expect((await alice).status).toBe(201);
    } finally {
      setPasswordHashLimits({ concurrency, maxWaiting: undefined });
    }
    // The web login form answers the same refusal as a page with the form again.
    const { loginUrl } = (await (await send("/-/v1/login", { method: "POST" })).json()) as { loginUrl: string };
    const webLogin = (password: string) =>
      send(new URL(loginUrl).pathname, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ name: "alice", password }).toString(),
      });
    try {
      setPasswordHashLimits({ concurrency: 1, maxWaiting: 0 });
      const running = login("alice", "alice password 1");
      await untilRunning(1);
      const page = await webLogin("alice password 1");
      expect(page.status).toBe(503);
      expect(page.headers.get("retry-after")).toBe("5");
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      const text = await page.text();
      expect(text).toContain("too many password checks are waiting: retry in a few seconds");
      expect(text).toContain('name="password"');
      expect((await running).status).toBe(201);
    } finally {
      setPasswordHashLimits({ concurrency, maxWaiting: undefined });
    }
    expect((await webLogin("alice password 1")).status).toBe(200);
    // Sign-up is on in the test config: the unknown user's check (against a dummy hash made now) fails, then it is created.
    expect((await login("nobody", "nobody password")).status).toBe(201);
    expect((await login("alice", "alice password 1")).status).toBe(201);
  });

  it("checks Basic-auth credentials once for many concurrent requests and trusts a success briefly, until the password changes", async () => {
    const registry = createRegistry(testConfig("/unused"), { storage: memoryDriver() });
    await registry.services.users.store.create("alice", "alice password 1");
    const whoami = (password: string) =>
      registry.fetch(
        new Request(`${ORIGIN}/-/whoami`, {
          headers: { authorization: `Basic ${Buffer.from(`alice:${password}`).toString("base64")}` },
        }),
        { clientIp: REMOTE },
      );
    // The process's first password check also makes the dummy hash unknown users are checked against.
    expect((await whoami("alice password 1")).status).toBe(200);
    const { concurrency } = passwordHashLoad();
    try {
      // No derivation may wait: requests that each checked the password themselves would get 503s.
      setPasswordHashLimits({ concurrency: 1, maxWaiting: 0 });
      const answers = await Promise.all(Array.from({ length: 20 }, () => whoami("alice password 1")));
      expect(answers.map((response) => response.status)).toEqual(answers.map(() => 200));
      expect(await answers[0]?.json()).toEqual({ username: "alice" });
      const wrong = await Promise.all(Array.from({ length: 5 }, () => whoami("not the password")));
      expect(wrong.map((response) => response.status)).toEqual(wrong.map(() => 401));
    } finally {
      setPasswordHashLimits({ concurrency, maxWaiting: undefined });
    }
    await registry.services.users.changePassword("alice", "alice password 1", "alice password 2");
    expect((await whoami("alice password 1")).status).toBe(401);
    expect((await whoami("alice password 2")).status).toBe(200);
  });
});
