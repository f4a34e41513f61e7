/**
 * Uplinks over HTTP against a fake upstream this test controls: metadata on demand with revalidation,
 * tarballs streamed while stored and checked, dependency confusion, upstream faults, takedowns, audit.
 */
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser } from "../helpers/clients.js";
import { rawRequest } from "../helpers/http.js";
import { digests, publishBody } from "../helpers/packages.js";
import type { TestRegistry } from "../helpers/registry.js";
import { closeRegistry, FakeUpstream, startProxyRegistry } from "../helpers/upstream.js";

const ABBREVIATED = "application/vnd.npm.install-v1+json";
const path = (name: string) => `/${name.replace("/", "%2f")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Doc {
  name: string;
  "dist-tags": Record<string, string>;
  versions: Record<string, { dist: { tarball: string; integrity: string } }>;
  readme?: string;
  time?: Record<string, string>;
  modified?: string;
}

async function getDoc(registry: TestRegistry, name: string, accept = "application/json") {
  const response = await fetch(`${registry.url}${path(name)}`, { headers: { accept } });
  const body = (await response.json()) as Doc & { error?: string };
  return { response, body };
}

async function exists(registry: TestRegistry, key: string): Promise<boolean> {
  return (await registry.storage.head(key)) !== null;
}

/** Waits for work after responses (tarball writes) to finish. */
const settled = (registry: TestRegistry) => registry.running.registry.idle();

describe("metadata", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream);
  });
  afterAll(async () => {
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  it("fetches a package on demand, links tarballs to fw and keeps the copy apart from hosted packages", async () => {
    upstream.publish({ name: "left-pad", version: "1.0.0" });
    upstream.publish({ name: "left-pad", version: "1.1.0", dependencies: { "right-pad": "^1.0.0" } });
    const { response, body } = await getDoc(registry, "left-pad");
    expect(response.status).toBe(200);
    expect(Object.keys(body.versions)).toEqual(["1.0.0", "1.1.0"]);
    expect(body["dist-tags"]).toEqual({ latest: "1.1.0" });
    expect(body.versions["1.1.0"]?.dist.tarball).toBe(`${registry.url}/left-pad/-/left-pad-1.1.0.tgz`);
    expect(body.readme).toBe("# left-pad");
    expect(JSON.stringify(body)).not.toContain(upstream.url);
    expect(JSON.stringify(body)).not.toContain("_fwUplink");
    expect(await exists(registry, "uplinks/public/packages/left-pad/packument.json")).toBe(true);
    expect(await exists(registry, "packages/left-pad/packument.json")).toBe(false);

    // Abbreviated, full again, a version and the dist-tags: all from the cached copy.
    const slim = await getDoc(registry, "left-pad", ABBREVIATED);
    expect(slim.response.headers.get("content-type")).toBe(ABBREVIATED);
    expect(slim.body.readme).toBeUndefined();
    expect(slim.body.modified).toBe("2020-01-02T00:00:00.000Z");
    expect(slim.body.versions["1.0.0"]?.dist.tarball).toBe(`${registry.url}/left-pad/-/left-pad-1.0.0.tgz`);
    expect((await getDoc(registry, "left-pad")).response.status).toBe(200);
    const version = await fetch(`${registry.url}/left-pad/latest`);
    expect(((await version.json()) as { version: string; dist: { tarball: string } }).dist.tarball).toBe(
      `${registry.url}/left-pad/-/left-pad-1.1.0.tgz`,
    );
    const tags = await fetch(`${registry.url}/-/package/left-pad/dist-tags`);
    expect(await tags.json()).toEqual({ latest: "1.1.0" });
    expect(upstream.requestsFor("left-pad")).toHaveLength(1);

    // The Node fast path answers a fresh cached copy like a hosted document, without the async route.
    const fast = registry.running.registry.fastRead({
      method: "GET",
      url: "/left-pad",
      origin: registry.url,
      header: (name) => (name === "accept" ? ABBREVIATED : undefined),
    });
    expect(fast?.status).toBe(200);
    expect(fast?.headers["content-type"]).toBe(ABBREVIATED);
    expect(JSON.parse(new TextDecoder().decode(fast?.body ?? new Uint8Array())).name).toBe("left-pad");
  });

  it("serves scoped packages and answers 304 to a client that has the copy", async () => {
    upstream.publish({ name: "@types/thing", version: "2.0.0" });
    const first = await rawRequest(`${registry.url}/@types%2fthing`, { headers: { accept: ABBREVIATED } });
    expect(first.status).toBe(200);
    expect(upstream.requestsFor("@types/thing")[0]?.path).toBe("/@types%2fthing");
    const etag = first.headers.etag as string;
    const again = await rawRequest(`${registry.url}/@types/thing`, {
      headers: { accept: ABBREVIATED, "if-none-match": etag },
    });
    expect(again.status).toBe(304);
    expect(upstream.requestsFor("@types/thing")).toHaveLength(1);
  });

  it("answers 404 for a name no uplink has, and asks again next time", async () => {
    const { response, body } = await getDoc(registry, "no-such-package");
    expect(response.status).toBe(404);
    expect(body.error).toBe('package "no-such-package" not found');
    upstream.publish({ name: "no-such-package", version: "0.0.1" });
    expect((await getDoc(registry, "no-such-package")).response.status).toBe(200);
  });
});

describe("revalidation", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream, { uplink: { maxAgeMs: 300 } });
  });
  afterAll(async () => {
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  it("asks with If-None-Match after maxAge, keeps the copy on 304 and takes a new document on 200", async () => {
    upstream.publish({ name: "revalidated", version: "1.0.0" });
    await getDoc(registry, "revalidated");
    await getDoc(registry, "revalidated", ABBREVIATED);
    expect(upstream.requestsFor("revalidated")).toHaveLength(1);

    await sleep(350);
    expect((await getDoc(registry, "revalidated")).response.status).toBe(200);
    const requests = upstream.requestsFor("revalidated");
    expect(requests).toHaveLength(2);
    expect(requests[1]?.headers["if-none-match"]).toMatch(/^"[0-9a-f]{40}"$/);

    upstream.publish({ name: "revalidated", version: "1.1.0" });
    expect(Object.keys((await getDoc(registry, "revalidated")).body.versions)).toEqual(["1.0.0"]);
    await sleep(350);
    const { body } = await getDoc(registry, "revalidated", ABBREVIATED);
    expect(Object.keys(body.versions)).toEqual(["1.0.0", "1.1.0"]);
    expect(body["dist-tags"].latest).toBe("1.1.0");
  });
});

describe("tarballs", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream);
  });
  afterAll(async () => {
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  it("streams the first request while storing the tarball; later ones come from storage", async () => {
    const { tarball, integrity } = upstream.publish({ name: "tee-pkg", version: "1.0.0", padding: 300_000 });
    const { body } = await getDoc(registry, "tee-pkg");
    expect(body.versions["1.0.0"]?.dist.integrity).toBe(integrity);
    const first = await fetch(`${registry.url}/tee-pkg/-/tee-pkg-1.0.0.tgz`);
    expect(first.status).toBe(200);
    expect(first.headers.get("content-length")).toBe(String(tarball.byteLength));
    expect(digests(new Uint8Array(await first.arrayBuffer())).integrity).toBe(integrity);
    await settled(registry);
    expect(await exists(registry, "uplinks/public/packages/tee-pkg/-/tee-pkg-1.0.0.tgz")).toBe(true);
    expect(await exists(registry, "packages/tee-pkg/-/tee-pkg-1.0.0.tgz")).toBe(false);

    const second = await fetch(`${registry.url}/tee-pkg/-/tee-pkg-1.0.0.tgz`);
    expect(second.headers.get("etag")).toMatch(/^".+"$/);
    expect(digests(new Uint8Array(await second.arrayBuffer())).integrity).toBe(integrity);
    const head = await fetch(`${registry.url}/tee-pkg/-/tee-pkg-1.0.0.tgz`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(upstream.requestsFor("tee-pkg-1.0.0.tgz")).toHaveLength(1);
  });

  it("concurrent first requests for one tarball fetch it once", async () => {
    const { integrity } = upstream.publish({ name: "busy-pkg", version: "1.0.0", padding: 200_000 });
    await getDoc(registry, "busy-pkg");
    upstream.inject({ kind: "stall", ms: 300 }, { path: /busy-pkg-1\.0\.0\.tgz$/, times: 1 });
    const bodies = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await fetch(`${registry.url}/busy-pkg/-/busy-pkg-1.0.0.tgz`);
        return digests(new Uint8Array(await response.arrayBuffer())).integrity;
      }),
    );
    expect(bodies).toEqual(Array(5).fill(integrity));
    expect(upstream.requestsFor("busy-pkg-1.0.0.tgz")).toHaveLength(1);
  });

  it("never serves whole, nor stores, a tarball that does not match the metadata's integrity", async () => {
    const { tarball } = upstream.publish({ name: "bad-pkg", version: "1.0.0", padding: 100_000 });
    await getDoc(registry, "bad-pkg");
    upstream.inject({ kind: "corrupt" }, { path: /bad-pkg-1\.0\.0\.tgz$/ });
    // The raw bytes: fewer than the announced length, then the connection ends (npm sees a failed download).
    await expect(rawRequest(`${registry.url}/bad-pkg/-/bad-pkg-1.0.0.tgz`)).rejects.toThrow();
    await settled(registry);
    expect(await exists(registry, "uplinks/public/packages/bad-pkg/-/bad-pkg-1.0.0.tgz")).toBe(false);

    // Asked again soon, it is refused at once rather than fetched and cut again.
    const started = Date.now();
    const again = await fetch(`${registry.url}/bad-pkg/-/bad-pkg-1.0.0.tgz`);
    expect(again.status).toBe(502);
    expect(((await again.json()) as { error: string }).error).toMatch(/does not match its metadata/);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(upstream.requestsFor("bad-pkg-1.0.0.tgz")).toHaveLength(1);
    expect(tarball.byteLength).toBeGreaterThan(100_000);
    upstream.clearFaults();
  });

  it("an upstream killed mid-tarball fails that download and leaves nothing stored; the next one succeeds", async () => {
    const { integrity } = upstream.publish({ name: "cut-pkg", version: "1.0.0", padding: 400_000 });
    await getDoc(registry, "cut-pkg");
    upstream.inject({ kind: "truncate", fraction: 0.4 }, { path: /cut-pkg-1\.0\.0\.tgz$/, times: 1 });
    const response = await fetch(`${registry.url}/cut-pkg/-/cut-pkg-1.0.0.tgz`);
    expect(response.status).toBe(200);
    await expect(response.arrayBuffer()).rejects.toThrow();
    await settled(registry);
    expect(await exists(registry, "uplinks/public/packages/cut-pkg/-/cut-pkg-1.0.0.tgz")).toBe(false);

    const retry = await fetch(`${registry.url}/cut-pkg/-/cut-pkg-1.0.0.tgz`);
    expect(digests(new Uint8Array(await retry.arrayBuffer())).integrity).toBe(integrity);
    await settled(registry);
    expect(await exists(registry, "uplinks/public/packages/cut-pkg/-/cut-pkg-1.0.0.tgz")).toBe(true);
  });

  it("a tarball body that stalls is cut after the idle timeout", async () => {
    upstream.publish({ name: "slow-pkg", version: "1.0.0", padding: 200_000 });
    await getDoc(registry, "slow-pkg");
    upstream.inject({ kind: "stall-body", ms: 10_000 }, { path: /slow-pkg-1\.0\.0\.tgz$/, times: 1 });
    const started = Date.now();
    const response = await fetch(`${registry.url}/slow-pkg/-/slow-pkg-1.0.0.tgz`);
    await expect(response.arrayBuffer()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    await settled(registry);
    expect(await exists(registry, "uplinks/public/packages/slow-pkg/-/slow-pkg-1.0.0.tgz")).toBe(false);
    upstream.clearFaults();
  });

  it("answers 404 for a file of a version the upstream does not list", async () => {
    upstream.publish({ name: "few-pkg", version: "1.0.0" });
    const response = await fetch(`${registry.url}/few-pkg/-/few-pkg-9.9.9.tgz`);
    expect(response.status).toBe(404);
    expect(upstream.requestsFor("few-pkg-9.9.9.tgz")).toHaveLength(0);
  });
});

describe("dependency confusion", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;
  let token: string;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream, {
      uplink: { maxAgeMs: 0 },
      packages: {
        "@acme/*": { access: ["$all"], publish: ["$authenticated"], proxy: [] },
        "internal-*": { access: ["$all"], publish: ["$authenticated"] },
        "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },
      },
    });
    token = await addUser(registry.url, "alice");
  });
  afterAll(async () => {
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  async function publishLocally(name: string, version: string) {
    const response = await fetch(`${registry.url}${path(name)}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody(registry.url, { name, version })),
    });
    expect(response.status).toBe(201);
  }

  it("a hosted name is never merged with, nor answered from, an upstream — not even versions it lacks", async () => {
    upstream.publish({ name: "company-tool", version: "1.0.0" });
    upstream.publish({ name: "company-tool", version: "99.0.0" });
    await publishLocally("company-tool", "1.0.0");
    for (const accept of ["application/json", ABBREVIATED]) {
      const { body } = await getDoc(registry, "company-tool", accept);
      expect(Object.keys(body.versions)).toEqual(["1.0.0"]);
      expect(body["dist-tags"].latest).toBe("1.0.0");
    }
    expect((await fetch(`${registry.url}/company-tool/99.0.0`)).status).toBe(404);
    expect((await fetch(`${registry.url}/company-tool/-/company-tool-99.0.0.tgz`)).status).toBe(404);
    expect(upstream.requestsFor("company-tool")).toEqual([]);
  });

  it("a name published here after it was proxied wins from then on", async () => {
    upstream.publish({ name: "shadowed", version: "5.0.0" });
    expect(Object.keys((await getDoc(registry, "shadowed")).body.versions)).toEqual(["5.0.0"]);
    await publishLocally("shadowed", "1.0.0");
    expect(Object.keys((await getDoc(registry, "shadowed")).body.versions)).toEqual(["1.0.0"]);
    expect((await fetch(`${registry.url}/shadowed/-/shadowed-5.0.0.tgz`)).status).toBe(404);
  });

  it("names of a private pattern or scope never go upstream, hosted or not", async () => {
    upstream.publish({ name: "@acme/widget", version: "9.9.9" });
    upstream.publish({ name: "@acme/hosted", version: "2.0.0" });
    upstream.publish({ name: "internal-thing", version: "3.0.0" });
    await publishLocally("@acme/hosted", "1.0.0");
    expect((await getDoc(registry, "@acme/widget")).response.status).toBe(404);
    expect((await fetch(`${registry.url}/@acme%2fwidget/-/widget-9.9.9.tgz`)).status).toBe(404);
    expect((await getDoc(registry, "internal-thing")).response.status).toBe(404);
    expect(Object.keys((await getDoc(registry, "@acme/hosted", ABBREVIATED)).body.versions)).toEqual(["1.0.0"]);
    expect(upstream.requestsFor("@acme/")).toEqual([]);
    expect(upstream.requestsFor("internal-thing")).toEqual([]);
  });

  it("an unpublished hosted package keeps its name: the upstream's package of that name is not served", async () => {
    upstream.publish({ name: "retired-pkg", version: "8.0.0" });
    await publishLocally("retired-pkg", "1.0.0");
    const doc = (await (await fetch(`${registry.url}/retired-pkg?write=true`)).json()) as { _rev: string };
    const removed = await fetch(`${registry.url}/retired-pkg/-rev/${doc._rev}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
    });
    expect(removed.status).toBe(200);
    expect((await getDoc(registry, "retired-pkg")).response.status).toBe(404);
    expect((await fetch(`${registry.url}/retired-pkg/-/retired-pkg-8.0.0.tgz`)).status).toBe(404);
    expect(upstream.requestsFor("retired-pkg")).toEqual([]);
  });
});

describe("upstream failures", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    // maxAge 0: every request revalidates, so every fault reaches a cached copy too.
    registry = await startProxyRegistry(upstream, { uplink: { maxAgeMs: 0 } });
  });
  afterAll(async () => {
    upstream.clearFaults();
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  async function timed<T>(run: () => Promise<T>): Promise<[T, number]> {
    const started = Date.now();
    const result = await run();
    return [result, Date.now() - started];
  }

  it("5xx: 502 when nothing is cached, after one retry; the cached copy with an npm-notice when there is one", async () => {
    upstream.inject({ kind: "status", status: 500 }, { path: /^\/flaky-pkg$/ });
    const [missing, elapsed] = await timed(() => getDoc(registry, "flaky-pkg"));
    expect(missing.response.status).toBe(502);
    expect(missing.body.error).toMatch(/package "flaky-pkg" is not cached .*uplink "public" answered 500/);
    expect(elapsed).toBeLessThan(3_000);
    expect(upstream.requestsFor("flaky-pkg")).toHaveLength(2);
    upstream.clearFaults();

    upstream.publish({ name: "cached-pkg", version: "1.0.0" });
    expect((await getDoc(registry, "cached-pkg")).response.status).toBe(200);
    upstream.inject({ kind: "status", status: 503 }, { path: /^\/cached-pkg$/ });
    const stale = await getDoc(registry, "cached-pkg", ABBREVIATED);
    expect(stale.response.status).toBe(200);
    expect(stale.response.headers.get("npm-notice")).toMatch(/cached-pkg was served from fw's cached copy/);
    expect(Object.keys(stale.body.versions)).toEqual(["1.0.0"]);
    upstream.clearFaults();
  });

  it("a 10 s stall: 504 within the response timeout when nothing is cached; the cached copy otherwise", async () => {
    upstream.publish({ name: "stall-cached", version: "1.0.0" });
    await getDoc(registry, "stall-cached");
    upstream.inject({ kind: "stall", ms: 10_000 }, { path: /^\/stall-/ });
    const [missing, elapsed] = await timed(() => getDoc(registry, "stall-missing"));
    expect(missing.response.status).toBe(504);
    expect(missing.body.error).toMatch(/did not answer within 1000 ms/);
    expect(elapsed).toBeLessThan(2_500);

    const [stale, staleElapsed] = await timed(() => getDoc(registry, "stall-cached"));
    expect(stale.response.status).toBe(200);
    expect(stale.response.headers.get("npm-notice")).toBeTruthy();
    expect(staleElapsed).toBeLessThan(2_500);
    upstream.clearFaults();
  });

  it("a truncated or unusable document is a failure, not a package", async () => {
    upstream.publish({ name: "cut-doc", version: "1.0.0", padding: 10 });
    upstream.inject({ kind: "truncate", fraction: 0.5 }, { path: /^\/cut-doc$/ });
    expect((await getDoc(registry, "cut-doc")).response.status).toBe(502);
    upstream.clearFaults();
    expect((await getDoc(registry, "cut-doc")).response.status).toBe(200);
    upstream.inject({ kind: "truncate", fraction: 0.5 }, { path: /^\/cut-doc$/ });
    const stale = await getDoc(registry, "cut-doc");
    expect(stale.response.status).toBe(200);
    expect(stale.response.headers.get("npm-notice")).toBeTruthy();
    upstream.clearFaults();
  });

  it("concurrent requests for one missing package make one upstream call", async () => {
    upstream.publish({ name: "popular-pkg", version: "1.0.0" });
    upstream.inject({ kind: "stall", ms: 300 }, { path: /^\/popular-pkg$/, times: 1 });
    const responses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => getDoc(registry, "popular-pkg", i % 2 ? ABBREVIATED : "application/json")),
    );
    expect(responses.map((each) => each.response.status)).toEqual(Array(20).fill(200));
    expect(upstream.requestsFor("popular-pkg")).toHaveLength(1);
  });

  it("an upstream that is down: 502 at once when nothing is cached, the cached copy otherwise", async () => {
    await using down = await FakeUpstream.start();
    down.publish({ name: "down-cached", version: "1.0.0" });
    const other = await startProxyRegistry(down, { uplink: { maxAgeMs: 0 } });
    try {
      expect((await getDoc(other, "down-cached")).response.status).toBe(200);
      await down.close();
      const [missing, elapsed] = await timed(() => getDoc(other, "down-missing"));
      expect(missing.response.status).toBe(502);
      expect(elapsed).toBeLessThan(2_000);
      const stale = await getDoc(other, "down-cached");
      expect(stale.response.status).toBe(200);
      expect(stale.response.headers.get("npm-notice")).toMatch(/could not be reached/);
      const tarball = await fetch(`${other.url}/down-cached/-/down-cached-1.0.0.tgz`);
      expect(tarball.status).toBe(502);
    } finally {
      await closeRegistry(other);
    }
    expect(other.errors).toEqual([]);
  });

  it("after repeated failures the uplink rests: requests fail at once without asking it", async () => {
    await using resting = await FakeUpstream.start();
    const other = await startProxyRegistry(resting, {
      uplink: { retries: 0, circuit: { failures: 2, cooldownMs: 60_000 } },
    });
    try {
      resting.inject({ kind: "status", status: 500 });
      expect((await getDoc(other, "rest-a")).response.status).toBe(502);
      expect((await getDoc(other, "rest-b")).response.status).toBe(502);
      const third = await getDoc(other, "rest-c");
      expect(third.response.status).toBe(502);
      expect(third.body.error).toMatch(/failed 2 times in a row; not asked again for 60 s/);
      expect(resting.requests).toHaveLength(2);
    } finally {
      await closeRegistry(other);
    }
  });
});

describe("takedowns", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream, {
      uplinks: {
        public: upstream.uplink({ maxAgeMs: 0 }),
        keeper: upstream.uplink({ maxAgeMs: 0, takedowns: "keep" }),
      },
      packages: {
        "kept-*": { access: ["$all"], proxy: ["keeper"] },
        "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },
      },
    });
  });
  afterAll(async () => {
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  it("a version removed upstream leaves the cached document, and its cached tarball is no longer served", async () => {
    upstream.publish({ name: "taken-pkg", version: "1.0.0" });
    upstream.publish({ name: "taken-pkg", version: "1.1.0" });
    await getDoc(registry, "taken-pkg");
    expect(
      (await (await fetch(`${registry.url}/taken-pkg/-/taken-pkg-1.1.0.tgz`)).arrayBuffer()).byteLength,
    ).toBeGreaterThan(0);
    await settled(registry);
    const key = "uplinks/public/packages/taken-pkg/-/taken-pkg-1.1.0.tgz";
    expect(await exists(registry, key)).toBe(true);

    upstream.unpublish("taken-pkg", "1.1.0");
    const { body } = await getDoc(registry, "taken-pkg", ABBREVIATED);
    expect(Object.keys(body.versions)).toEqual(["1.0.0"]);
    expect(body["dist-tags"].latest).toBe("1.0.0");
    expect((await fetch(`${registry.url}/taken-pkg/-/taken-pkg-1.1.0.tgz`)).status).toBe(404);
    expect(await exists(registry, key)).toBe(false);

    upstream.unpublish("taken-pkg");
    expect((await getDoc(registry, "taken-pkg")).response.status).toBe(404);
    expect(await exists(registry, "uplinks/public/packages/taken-pkg/packument.json")).toBe(false);
  });

  it('with takedowns: "keep" the cached versions stay', async () => {
    upstream.publish({ name: "kept-pkg", version: "1.0.0" });
    upstream.publish({ name: "kept-pkg", version: "2.0.0" });
    await getDoc(registry, "kept-pkg");
    await (await fetch(`${registry.url}/kept-pkg/-/kept-pkg-2.0.0.tgz`)).arrayBuffer();
    await settled(registry);
    upstream.unpublish("kept-pkg", "2.0.0");
    const { body } = await getDoc(registry, "kept-pkg");
    expect(Object.keys(body.versions)).toEqual(["1.0.0", "2.0.0"]);
    const kept = await fetch(`${registry.url}/kept-pkg/-/kept-pkg-2.0.0.tgz`);
    expect(kept.status).toBe(200);
    expect((await kept.arrayBuffer()).byteLength).toBeGreaterThan(0);
    expect(await exists(registry, "uplinks/keeper/packages/kept-pkg/packument.json")).toBe(true);
  });
});

describe("npm audit", () => {
  let upstream: FakeUpstream;
  let registry: TestRegistry;
  let token: string;

  beforeAll(async () => {
    upstream = await FakeUpstream.start();
    registry = await startProxyRegistry(upstream);
    token = await addUser(registry.url, "auditor");
    const response = await fetch(`${registry.url}/hosted-dep`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody(registry.url, { name: "hosted-dep", version: "1.0.0" })),
    });
    expect(response.status).toBe(201);
  });
  afterAll(async () => {
    upstream.clearFaults();
    await closeRegistry(registry);
    await upstream.close();
    expect(registry.errors).toEqual([]);
  });

  const post = (target: TestRegistry, kind: "advisories/bulk" | "audits/quick", body: unknown) =>
    fetch(`${target.url}/-/npm/v1/security/${kind}`, {
      method: "POST",
      headers: { "content-type": "application/json", "content-encoding": "gzip" },
      body: gzipSync(JSON.stringify(body)),
    });

  it("forwards the bulk audit gzipped, without hosted or private names, and caches the answer briefly", async () => {
    const advisory = { "left-pad": [{ id: 1, severity: "high", title: "bad", vulnerable_versions: "<2.0.0" }] };
    upstream.auditAnswer = advisory;
    const body = { "left-pad": ["1.0.0"], "@acme/secret": ["1.0.0"], "hosted-dep": ["1.0.0"] };
    const response = await post(registry, "advisories/bulk", body);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(advisory);
    const forwarded = upstream.requests.filter((request) => request.path === "/-/npm/v1/security/advisories/bulk");
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]?.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(forwarded[0]?.body ?? "")).toEqual({ "left-pad": ["1.0.0"] });

    expect(await (await post(registry, "advisories/bulk", body)).json()).toEqual(advisory);
    expect(upstream.requests.filter((request) => request.path.includes("advisories/bulk"))).toHaveLength(1);
  });

  it("forwards the quick audit with private dependencies pruned from the tree", async () => {
    upstream.auditAnswer = { actions: [], advisories: {}, muted: [], metadata: { dependencies: 1 } };
    const tree = {
      name: "app",
      version: "1.0.0",
      requires: { "left-pad": "^1.0.0", "@acme/secret": "^1.0.0" },
      dependencies: {
        "left-pad": { version: "1.0.0", requires: { "@acme/secret": "1" } },
        "@acme/secret": { version: "1.0.0" },
      },
    };
    const response = await post(registry, "audits/quick", tree);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { metadata: unknown }).metadata).toEqual({ dependencies: 1 });
    const forwarded = upstream.requests.find((request) => request.path.endsWith("audits/quick"));
    expect(JSON.parse(forwarded?.body ?? "")).toEqual({
      name: "app",
      version: "1.0.0",
      requires: { "left-pad": "^1.0.0" },
      dependencies: { "left-pad": { version: "1.0.0", requires: {} } },
    });
  });

  it("a failing audit uplink is a 502, not a clean report", async () => {
    upstream.inject({ kind: "status", status: 500 }, { path: /security/ });
    const response = await post(registry, "advisories/bulk", { "other-dep": ["2.0.0"] });
    expect(response.status).toBe(502);
    upstream.clearFaults();
  });

  it("answers an empty report when no uplink offers audits", async () => {
    await using quiet = await FakeUpstream.start();
    const other = await startProxyRegistry(quiet, { uplink: { audit: false } });
    try {
      const response = await post(other, "advisories/bulk", { "left-pad": ["1.0.0"] });
      expect(await response.json()).toEqual({});
      const quick = await post(other, "audits/quick", { name: "app", dependencies: {} });
      expect(((await quick.json()) as { advisories: unknown }).advisories).toEqual({});
      expect(quiet.requests).toEqual([]);
    } finally {
      await closeRegistry(other);
    }
  });
});

describe("uplink credentials", () => {
  it("sends the token to the uplink and nowhere in logs or errors", async () => {
    await using upstream = await FakeUpstream.start();
    upstream.requiredToken = "uplink-s3cret-token";
    upstream.publish({ name: "guarded-pkg", version: "1.0.0" });
    const registry = await startProxyRegistry(upstream, {
      uplink: { auth: { type: "bearer", token: "uplink-s3cret-token" } },
    });
    try {
      expect((await getDoc(registry, "guarded-pkg")).response.status).toBe(200);
      const tarball = await fetch(`${registry.url}/guarded-pkg/-/guarded-pkg-1.0.0.tgz`);
      expect(tarball.status).toBe(200);
      await tarball.arrayBuffer();
      expect(upstream.requests.every((request) => request.headers.authorization === "Bearer uplink-s3cret-token")).toBe(
        true,
      );
      upstream.requiredToken = "another-token";
      const refused = await getDoc(registry, "guarded-other");
      expect(refused.response.status).toBe(502);
      expect(refused.body.error).toMatch(/refused fw's credentials \(401\)/);
      expect(JSON.stringify(refused.body)).not.toContain("s3cret");
    } finally {
      await closeRegistry(registry);
    }
    expect(registry.errors.join("\n")).not.toContain("s3cret");
  });
});
