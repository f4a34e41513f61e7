/**
 * `npm search` through fw finds the packages its uplink serves, after the hosted ones: two real fw
 * instances, one the other's uplink. The uplink also carries an attacker's package under the private
 * scope and a package of a hosted name, which must never show up. Then an uplink that never answers a
 * search, and one whose searches fail.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { addUser, type Sandbox, userSandbox } from "../helpers/clients.js";
import { publishBody } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";
import { closeRegistry, FakeUpstream, startProxyRegistry, uplinkTo } from "../helpers/upstream.js";

const KEYWORD = "fwsearchfixture";

let upstream: TestRegistry;
let registry: TestRegistry;
let quiet: TestRegistry;
let alice: Sandbox;
/** The search texts fw sent the uplink (fw's uplink client uses the global `fetch` of this process). */
const upstreamSearches: string[] = [];

async function publish(target: TestRegistry, token: string, name: string, version: string): Promise<void> {
  const response = await fetch(`${target.url}/${name.replace("/", "%2f")}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(
      publishBody(target.url, {
        name,
        version,
        manifest: { description: `${name} for the search test`, keywords: [KEYWORD] },
      }),
    ),
  });
  expect(response.status, `publish ${name}@${version}`).toBe(201);
}

async function npmSearch(sandbox: Sandbox, text: string): Promise<{ name: string; version: string }[]> {
  const result = await sandbox.npm(["search", "--json", "--prefer-online", text]);
  expect(result.code, result.output).toBe(0);
  return JSON.parse(result.stdout) as { name: string; version: string }[];
}

const proxyOptions = (search: boolean) => ({
  uplink: { search, timeouts: { responseMs: 5_000, idleMs: 5_000, totalMs: 10_000 } },
  packages: {
    "@acme/*": { access: ["$authenticated"], publish: ["$authenticated"], proxy: [] },
    "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },
  },
});

beforeAll(async () => {
  upstream = await startTestRegistry();
  const realFetch = globalThis.fetch;
  vi.spyOn(globalThis, "fetch").mockImplementation((input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.origin === new URL(upstream.url).origin && url.pathname === "/-/v1/search")
      upstreamSearches.push(url.searchParams.get("text") ?? "");
    return realFetch(input, init);
  });
  const author = await addUser(upstream.url, "public-author");
  await publish(upstream, author, "pub-gadget", "2.0.0");
  // What an attacker publishes upstream: the private scope, and a name the company hosts.
  await publish(upstream, author, "@acme/lib", "9.9.9");
  await publish(upstream, author, "company-tool", "99.0.0");

  const uplink = { uplink: (overrides?: Parameters<typeof uplinkTo>[1]) => uplinkTo(upstream.url, overrides) };
  registry = await startProxyRegistry(uplink, proxyOptions(true));
  quiet = await startProxyRegistry(uplink, proxyOptions(false));
  alice = await userSandbox(registry.url, "alice");
  const token = alice.authToken as string;
  await publish(registry, token, "company-tool", "1.0.0");
  const quietToken = await addUser(quiet.url, "alice");
  await publish(quiet, quietToken, "company-tool", "1.0.0");
});

afterAll(async () => {
  vi.restoreAllMocks();
  await alice?.[Symbol.asyncDispose]();
  await closeRegistry(registry);
  await closeRegistry(quiet);
  await upstream?.close();
  expect(registry?.errors ?? []).toEqual([]);
  expect(quiet?.errors ?? []).toEqual([]);
});

describe("npm search through fw with an uplink", () => {
  it("finds the uplink's packages after the hosted ones, without the private scope or shadowed names", async () => {
    // The uplink itself has all three.
    const direct = (await (await fetch(`${upstream.url}/-/v1/search?text=${KEYWORD}`)).json()) as {
      objects: { package: { name: string } }[];
    };
    expect(direct.objects.map((o) => o.package.name).sort()).toEqual(["@acme/lib", "company-tool", "pub-gadget"]);

    const found = await npmSearch(alice, KEYWORD);
    expect(found.map((hit) => `${hit.name}@${hit.version}`)).toEqual(["company-tool@1.0.0", "pub-gadget@2.0.0"]);

    // Paging: `from` past the one hosted match continues into the uplink's results; `total` is the hosted
    // match plus the uplink's own total (before fw's filter).
    const page = async (query: string) => {
      const response = await fetch(`${registry.url}/-/v1/search?text=${KEYWORD}&${query}`);
      const body = (await response.json()) as { objects: { package: { name: string } }[]; total: number };
      return { names: body.objects.map((o) => o.package.name), total: body.total };
    };
    expect(await page("from=0&size=1")).toEqual({ names: ["company-tool"], total: 4 });
    expect(await page("from=1&size=20")).toEqual({ names: ["pub-gadget"], total: 4 });
  });

  it("installs what search found through the same registry", async () => {
    const project = await alice.project("from-search", { "pub-gadget": "^2.0.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    const installed = JSON.parse(await readFile(join(project, "node_modules", "pub-gadget", "package.json"), "utf8"));
    expect(installed).toMatchObject({ name: "pub-gadget", version: "2.0.0" });
  });

  it("never sends a search for the private scope or a hosted name upstream", async () => {
    const before = upstreamSearches.length;
    expect(await npmSearch(alice, "@acme/lib")).toEqual([]);
    expect(await npmSearch(alice, "@acme")).toEqual([]);
    expect((await npmSearch(alice, "company-tool")).map((hit) => `${hit.name}@${hit.version}`)).toEqual([
      "company-tool@1.0.0",
    ]);
    expect(upstreamSearches.slice(before)).toEqual([]);
    // While a search for other words is.
    await npmSearch(alice, KEYWORD);
    expect(upstreamSearches.slice(before)).toEqual([KEYWORD]);
  });

  it("with search: false, answers from the hosted packages only", async () => {
    const sandbox = await userSandbox(quiet.url, "bob");
    try {
      const found = await npmSearch(sandbox, KEYWORD);
      expect(found.map((hit) => `${hit.name}@${hit.version}`)).toEqual(["company-tool@1.0.0"]);
    } finally {
      await sandbox[Symbol.asyncDispose]();
    }
  });

  it("still answers the hosted results when the uplink is down", async () => {
    await upstream.close();
    const started = Date.now();
    const found = await npmSearch(alice, KEYWORD);
    expect(found.map((hit) => `${hit.name}@${hit.version}`)).toEqual(["company-tool@1.0.0"]);
    const response = await fetch(`${registry.url}/-/v1/search?text=${KEYWORD}`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { total: number }).total).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe("npm search through fw with an uplink that fails", () => {
  let fake: FakeUpstream;
  let proxy: TestRegistry;

  beforeAll(async () => {
    fake = await FakeUpstream.start();
    fake.publish({ name: "pub-thing", version: "1.0.0" });
    // Install timeouts for a slow uplink (half a minute for an answer, two minutes in all), the defaults'
    // retries and breaker.
    proxy = await startProxyRegistry(fake, {
      uplink: {
        search: true,
        timeouts: { responseMs: 30_000, idleMs: 30_000, totalMs: 120_000 },
        retries: 2,
        circuit: { failures: 3, cooldownMs: 60_000 },
      },
    });
    const token = await addUser(proxy.url, "carol");
    await publish(proxy, token, "company-thing", "1.0.0");
  });

  afterAll(async () => {
    await closeRegistry(proxy);
    await fake?.close();
    expect(proxy?.errors ?? []).toEqual([]);
  });

  const search = async (query: string) => {
    const response = await fetch(`${proxy.url}/-/v1/search?text=${KEYWORD}&${query}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { objects: { package: { name: string } }[]; total: number };
    return { names: body.objects.map((o) => o.package.name), total: body.total };
  };

  it("answers the hosted results within its short budget when the uplink never answers", async () => {
    fake.inject({ kind: "stall" }, { path: /^\/-\/v1\/search/ });
    try {
      // With room for the uplink's results, and with a page the hosted match fills.
      const [room, full] = await Promise.all([search("size=20"), search("size=1")]);
      expect(room).toEqual({ names: ["company-thing"], total: 1 });
      expect(full).toEqual({ names: ["company-thing"], total: 1 });
    } finally {
      fake.clearFaults();
    }
  }, 20_000);

  it("does not rest the uplink for installs when its searches fail", async () => {
    fake.inject({ kind: "status", status: 503 }, { path: /^\/-\/v1\/search/ });
    try {
      for (let i = 0; i < 3; i++) expect(await search("size=20")).toEqual({ names: ["company-thing"], total: 1 });
    } finally {
      fake.clearFaults();
    }
    const response = await fetch(`${proxy.url}/pub-thing`);
    expect(response.status).toBe(200);
    expect(fake.requestsFor("pub-thing")).toHaveLength(1);
  });
});
