import { describe, expect, it } from "vitest";
import type { UplinkConfig } from "../config/uplinks.js";
import { packumentPath, UpstreamClient, UpstreamFailure } from "./client.js";

const logger = { debug() {}, info() {}, warn() {}, error() {} };

function settings(overrides: Partial<UplinkConfig> = {}): UplinkConfig {
  return {
    url: "https://upstream.example/npm",
    timeouts: { responseMs: 200, idleMs: 200, totalMs: 2_000 },
    retries: 2,
    maxAgeMs: 1_000,
    circuit: { failures: 100, cooldownMs: 0 },
    takedowns: "remove",
    audit: true,
    ...overrides,
  };
}

/** A fetch that answers from `answer` and records what it was asked. */
function fakeFetch(answer: (url: string, init: RequestInit) => Response | Promise<Response>) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = String(input);
    calls.push({ url, init });
    return answer(url, init);
  }) as typeof globalThis.fetch;
  return { fetch, calls };
}

const header = (init: RequestInit, name: string) => (init.headers as Record<string, string>)[name];

describe("UpstreamClient", () => {
  it("asks for scoped names as npm writes them, conditionally when it has an ETag", async () => {
    expect(packumentPath("@acme/web")).toBe("@acme%2fweb");
    const { fetch, calls } = fakeFetch(() => new Response(null, { status: 304 }));
    const client = new UpstreamClient("public", settings(), { logger, fetch });
    expect(await client.packument("@acme/web", '"abc"')).toEqual({ status: "not-modified" });
    expect(calls[0]?.url).toBe("https://upstream.example/npm/@acme%2fweb");
    expect(header(calls[0]?.init ?? {}, "if-none-match")).toBe('"abc"');
  });

  it("retries GETs after 5xx and network errors, then gives up with the last failure", async () => {
    let count = 0;
    const { fetch, calls } = fakeFetch(() => {
      count++;
      if (count === 1) throw new TypeError("fetch failed");
      return new Response("{}", { status: 503 });
    });
    const client = new UpstreamClient("public", settings(), { logger, fetch });
    const failure = await client.packument("pkg").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpstreamFailure);
    expect((failure as UpstreamFailure).message).toMatch(/answered 503/);
    expect(calls).toHaveLength(3);
  });

  it("never retries a POST", async () => {
    const { fetch, calls } = fakeFetch(() => new Response("{}", { status: 502 }));
    const client = new UpstreamClient("public", settings(), { logger, fetch });
    await expect(client.post("/-/npm/v1/security/advisories/bulk", new Uint8Array(), {})).rejects.toThrow(
      /answered 502/,
    );
    expect(calls).toHaveLength(1);
  });

  it("reads other 4xx answers as 'no such package', which do not count as failures", async () => {
    const { fetch } = fakeFetch(() => new Response("{}", { status: 400 }));
    const client = new UpstreamClient("public", settings({ circuit: { failures: 1, cooldownMs: 60_000 } }), {
      logger,
      fetch,
    });
    expect(await client.packument("Bad_Name")).toEqual({ status: "not-found" });
    expect(await client.packument("Bad_Name")).toEqual({ status: "not-found" });
  });

  it("times out a response that does not come", async () => {
    const { fetch } = fakeFetch(
      (_url, init) =>
        new Promise<Response>((_resolve, reject) =>
          init.signal?.addEventListener("abort", () => reject(init.signal?.reason)),
        ),
    );
    const client = new UpstreamClient("public", settings(), { logger, fetch });
    const started = Date.now();
    const failure = (await client.packument("pkg").catch((error: unknown) => error)) as UpstreamFailure;
    expect(failure.kind).toBe("timeout");
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("rests after repeated failures and asks nothing while it rests", async () => {
    const { fetch, calls } = fakeFetch(() => new Response("{}", { status: 500 }));
    const client = new UpstreamClient(
      "public",
      settings({ retries: 0, circuit: { failures: 2, cooldownMs: 60_000 } }),
      {
        logger,
        fetch,
      },
    );
    await expect(client.packument("a")).rejects.toThrow(/answered 500/);
    await expect(client.packument("b")).rejects.toThrow(/answered 500/);
    await expect(client.packument("c")).rejects.toThrow(/failed 2 times in a row/);
    expect(calls).toHaveLength(2);
  });

  it("sends the token only to the uplink's own origin, read from the environment when configured so", async () => {
    const { fetch, calls } = fakeFetch((url) =>
      url.endsWith(".tgz") ? new Response(new Uint8Array([1, 2, 3])) : new Response("{}", { status: 200 }),
    );
    const client = new UpstreamClient("public", settings({ auth: { type: "bearer", tokenEnv: "UPLINK_TOKEN" } }), {
      logger,
      fetch,
      env: { UPLINK_TOKEN: "t0ken" },
    });
    await client.packument("pkg");
    const own = await client.tarball("https://upstream.example/npm/pkg/-/pkg-1.0.0.tgz");
    await own?.body.cancel();
    const cdn = await client.tarball("https://cdn.example/pkg-1.0.0.tgz");
    await cdn?.body.cancel();
    expect(calls.map((call) => header(call.init, "authorization"))).toEqual([
      "Bearer t0ken",
      "Bearer t0ken",
      undefined,
    ]);
    expect(JSON.stringify(client)).not.toContain("t0ken");
  });

  it("does not send an unresolved secret reference", async () => {
    const { fetch, calls } = fakeFetch(() => new Response("{}", { status: 200 }));
    const client = new UpstreamClient(
      "public",
      settings({ auth: { type: "bearer", token: "secret:uplinks/public/token" } }),
      { logger, fetch },
    );
    await client.packument("pkg");
    expect(header(calls[0]?.init ?? {}, "authorization")).toBeUndefined();
  });
});
