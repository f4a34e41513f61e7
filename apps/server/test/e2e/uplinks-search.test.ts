/**
 * `npm search` through fw finds the packages its uplink serves, after the hosted ones: two real fw
 * instances, one the other's uplink. The uplink also carries an attacker's package under the private
 * scope and a package of a hosted name, which must never show up.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, type Sandbox, userSandbox } from "../helpers/clients.js";
import { publishBody } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";
import { closeRegistry, startProxyRegistry, uplinkTo } from "../helpers/upstream.js";

const KEYWORD = "fwsearchfixture";

let upstream: TestRegistry;
let registry: TestRegistry;
let quiet: TestRegistry;
let alice: Sandbox;

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
  });

  it("never shows the private scope from upstream, even when searched for by name", async () => {
    expect(await npmSearch(alice, "@acme/lib")).toEqual([]);
    expect(await npmSearch(alice, "@acme")).toEqual([]);
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
