import { parsePolicy } from "@fw/auth";
import { describe, expect, it } from "vitest";
import type { UplinkConfig } from "../config/uplinks.js";
import { proxyResolver } from "../config/uplinks.js";
import type { Packument } from "../npm/packument.js";
import { SearchIndex } from "../services/search.js";
import { UpstreamClient } from "./client.js";
import {
  forwardedParams,
  mergeSearch,
  namesInText,
  normaliseResult,
  parseSearchPage,
  SearchForwarder,
  uplinkShares,
  uplinkWindow,
} from "./search.js";

function settings(url: string, overrides: Partial<UplinkConfig> = {}): UplinkConfig {
  return {
    url,
    timeouts: { responseMs: 200, idleMs: 200, totalMs: 2_000 },
    retries: 0,
    maxAgeMs: 1_000,
    circuit: { failures: 100, cooldownMs: 0 },
    takedowns: "remove",
    audit: true,
    search: true,
    ...overrides,
  };
}

/** An npm search result as npm's registry writes one. */
function result(name: string, extra: Record<string, unknown> = {}) {
  return {
    package: {
      name,
      scope: "unscoped",
      version: "1.0.0",
      description: `upstream ${name}`,
      keywords: ["gadget"],
      date: "2024-05-01T10:00:00.000Z",
      links: { npm: `https://www.example.com/package/${name}` },
      publisher: { username: "someone", email: "someone@example.com" },
      maintainers: [{ username: "someone", email: "someone@example.com" }],
    },
    score: { final: 0.5, detail: { quality: 0.4, popularity: 0.3, maintenance: 0.2 } },
    searchScore: 12.5,
    ...extra,
  };
}

/**
 * A fake uplink in memory: answers `/-/v1/search` with the window `from`/`size` asks for out of `results`
 * (or with what `answer` returns), and records each query.
 */
function fakeUplink(name: string, results: unknown[], answer?: () => Response | Promise<Response>) {
  const queries: URLSearchParams[] = [];
  const headers: Record<string, string>[] = [];
  const fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    queries.push(url.searchParams);
    headers.push(init.headers as Record<string, string>);
    if (answer) return answer();
    const from = Number(url.searchParams.get("from"));
    const size = Number(url.searchParams.get("size"));
    const body = { objects: results.slice(from, from + size), total: results.length, time: new Date().toUTCString() };
    return new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  const logs: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (message: string, fields?: Record<string, unknown>) => logs.push(`${message} ${JSON.stringify(fields)}`),
    error: (message: string) => logs.push(message),
  };
  const client = new UpstreamClient(
    name,
    settings(`https://${name}.example/npm`, { auth: { type: "bearer", token: "s3cret" } }),
    {
      logger,
      fetch,
    },
  );
  return { client, queries, headers, logs, logger };
}

const rules = parsePolicy({
  packages: {
    "@acme/*": { access: ["$authenticated"] },
    "@partner/*": { access: ["$all"] },
    "legacy-*": { access: ["$all"] },
    "**": { access: ["$all"] },
  },
}).rules;
const proxyFor = proxyResolver(rules, {
  "@acme/*": [],
  "@partner/*": ["mirror", "public"],
  "**": ["public", "mirror"],
});

function forwarder(
  uplinks: ReturnType<typeof fakeUplink>[],
  hosted: readonly string[] = [],
  logger = uplinks[0]?.logger,
): SearchForwarder {
  return new SearchForwarder({
    clients: uplinks.map((uplink) => uplink.client),
    proxyFor,
    isHosted: async (name) => hosted.includes(name),
    logger: logger ?? { debug() {}, info() {}, warn() {}, error() {} },
  });
}

const everyone = () => true;
const names = (objects: { package: { name: string } }[]) => objects.map((object) => object.package.name);

function hostedDoc(name: string, description: string): Packument {
  return {
    _id: name,
    _rev: "1-a",
    name,
    "dist-tags": { latest: "1.0.0" },
    versions: { "1.0.0": { name, version: "1.0.0", description, dist: { shasum: "", integrity: "", tarball: "" } } },
    time: { "1.0.0": "2026-01-01T00:00:00.000Z" },
    maintainers: [{ name: "alice" }],
  };
}

describe("upstream search answers", () => {
  it("keep npm's result shape and drop what is not it", () => {
    const page = parseSearchPage({
      objects: [
        result("good", { extra: "dropped", flags: { insecure: 0, evil: "<script>" } }),
        result("Bad Name"),
        { package: { name: "no-version" } },
        result("wrong-version", { package: { ...result("x").package, name: "wrong-version", version: "v1" } }),
        "not an object",
        result("@scope/odd", {
          package: {
            ...result("x").package,
            name: "@scope/odd",
            scope: "acme",
            date: "yesterday",
            keywords: "one,two",
            maintainers: [{ username: 7 }, { username: "ok" }, "bob"],
            publisher: { name: "not-username" },
            links: { homepage: "javascript:alert(1)", repository: "https://git.example/odd", weird: "https://x" },
          },
          score: "high",
          searchScore: "1e9",
        }),
      ],
      total: 6,
    });
    expect(page?.total).toBe(6);
    expect(page?.objects.map((object) => object?.package.name ?? null)).toEqual([
      "good",
      null,
      null,
      null,
      null,
      "@scope/odd",
    ]);
    expect(page?.objects[0]).toEqual({
      package: {
        name: "good",
        scope: "unscoped",
        version: "1.0.0",
        description: "upstream good",
        keywords: ["gadget"],
        date: "2024-05-01T10:00:00.000Z",
        links: { npm: "https://www.example.com/package/good" },
        publisher: { username: "someone", email: "someone@example.com" },
        maintainers: [{ username: "someone", email: "someone@example.com" }],
      },
      score: { final: 0.5, detail: { quality: 0.4, popularity: 0.3, maintenance: 0.2 } },
      searchScore: 12.5,
      flags: { insecure: 0 },
    });
    // The scope comes from the name; a date npm could not print, odd people and odd links are dropped.
    expect(page?.objects[5]).toEqual({
      package: {
        name: "@scope/odd",
        scope: "scope",
        version: "1.0.0",
        description: "upstream x",
        keywords: [],
        links: { repository: "https://git.example/odd" },
        maintainers: [{ username: "ok" }],
      },
      score: { final: 0, detail: { quality: 0, popularity: 0, maintenance: 0 } },
      searchScore: 0,
    });
  });

  it("are refused whole when they are not a search result, and totals are bounded", () => {
    expect(parseSearchPage(null)).toBeNull();
    expect(parseSearchPage({ objects: {} })).toBeNull();
    expect(parseSearchPage([result("a")])).toBeNull();
    expect(parseSearchPage({ objects: [result("a")], total: -3 })?.total).toBe(1);
    expect(parseSearchPage({ objects: [], total: 2 ** 60 })?.total).toBe(2 ** 31);
    expect(parseSearchPage({ objects: Array.from({ length: 300 }, () => result("a")) })?.objects).toHaveLength(250);
    expect(normaliseResult(result("a".repeat(215)))).toBeNull();
    expect(normaliseResult(result("../etc"))).toBeNull();
  });
});

describe("search paging", () => {
  it("continues into the uplinks' results past the hosted matches", () => {
    const local = { objects: [{}, {}], total: 7, time: "" } as never;
    expect(uplinkWindow(local, 5, 20)).toEqual({ from: 0, size: 18 });
    expect(uplinkWindow({ objects: [], total: 7, time: "" }, 27, 20)).toEqual({ from: 20, size: 20 });
  });

  it("gives every position of the uplinks' combined list to exactly one uplink, taking turns", () => {
    expect(uplinkShares(0, 5, 1)).toEqual([{ from: 0, count: 5 }]);
    expect(uplinkShares(0, 5, 2)).toEqual([
      { from: 0, count: 3 },
      { from: 0, count: 2 },
    ]);
    for (const uplinks of [1, 2, 3]) {
      const seen: string[] = [];
      for (let from = 0; from < 30; from += 7) {
        uplinkShares(from, 7, uplinks).forEach((share, i) => {
          for (let k = 0; k < share.count; k++) seen.push(`${(share.from + k) * uplinks + i}`);
        });
      }
      expect(seen.map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: 35 }, (_, p) => p));
    }
  });

  it("pages through hosted then upstream results without repeating or skipping one", async () => {
    const index = new SearchIndex();
    for (const name of ["gadget-a", "gadget-b", "gadget-c"]) index.update(hostedDoc(name, "a gadget"));
    const upstream = Array.from({ length: 9 }, (_, i) => result(`up-${i}`));
    const uplink = fakeUplink("public", upstream);
    const search = forwarder([uplink]);
    const seen: string[] = [];
    let total = 0;
    for (let from = 0; from < 15; from += 4) {
      const local = index.search("gadget", 4, from);
      const page = mergeSearch(
        local,
        await search.search({ text: "gadget", ...uplinkWindow(local, from, 4) }, everyone),
      );
      expect(page.objects.length).toBeLessThanOrEqual(4);
      seen.push(...names(page.objects));
      total = page.total;
    }
    expect(seen).toEqual([...["gadget-a", "gadget-b", "gadget-c"].sort(), ...upstream.map((r) => r.package.name)]);
    expect(total).toBe(12);
    // The first page had room for one upstream result.
    expect(uplink.queries.map((query) => [query.get("from"), query.get("size")])).toEqual([
      ["0", "1"],
      ["1", "4"],
      ["5", "4"],
      ["9", "4"],
    ]);
    // A page the hosted matches fill still asks for one, for the total.
    const full = index.search("gadget", 2, 0);
    const page = mergeSearch(full, await search.search({ text: "gadget", ...uplinkWindow(full, 0, 2) }, everyone));
    expect(names(page.objects)).toEqual(["gadget-a", "gadget-b"]);
    expect(page.total).toBe(12);
    expect(uplink.queries.at(-1)?.get("size")).toBe("1");
  });
});

describe("SearchForwarder", () => {
  it("forwards the query with the uplink's credentials and keeps only what fw would serve from it", async () => {
    const uplink = fakeUplink("public", [
      result("left-pad"),
      result("@acme/lib"), // an attacker's copy of a private name: @acme/* is never proxied
      result("internal-tool"), // hosted here: the hosted package wins
      result("@partner/kit"), // proxied to the mirror first, then public
      result("secret-thing"), // the caller may not read it
      result("Not A Name!"),
      result("legacy-tool"), // its rule has no proxy list
      result("right-pad"),
    ]);
    const search = forwarder([uplink], ["internal-tool"]);
    const found = await search.search(
      { text: "pad", from: 0, size: 20, params: { quality: "0.65", popularity: "0.98", maintenance: "0.5" } },
      (name) => name !== "secret-thing",
    );
    expect(names(found.objects)).toEqual(["left-pad", "@partner/kit", "right-pad"]);
    expect(found.total).toBe(8);
    expect(Object.fromEntries(uplink.queries[0] ?? [])).toEqual({
      text: "pad",
      size: "20",
      from: "0",
      quality: "0.65",
      popularity: "0.98",
      maintenance: "0.5",
    });
    expect(uplink.headers[0]?.authorization).toBe("Bearer s3cret");
  });

  it("takes the uplinks in turns and keeps a name once, from the uplink its rule lists first", async () => {
    const pub = fakeUplink("public", [result("a-1"), result("shared"), result("@partner/kit"), result("a-4")]);
    const mirror = fakeUplink("mirror", [
      result("b-1", { searchScore: 1 }),
      result("shared", { searchScore: 2 }),
      result("@partner/kit", { searchScore: 3 }),
    ]);
    const found = await forwarder([pub, mirror]).search({ text: "x", from: 0, size: 20 }, everyone);
    expect(found.objects.map((o) => `${o.package.name}:${o.searchScore}`)).toEqual([
      "a-1:12.5",
      "b-1:1",
      "shared:12.5", // "**" lists public first
      "@partner/kit:3", // "@partner/*" lists the mirror first
      "a-4:12.5",
    ]);
    expect(found.total).toBe(7);
    expect(pub.queries[0]?.get("size")).toBe("10");
    expect(mirror.queries[0]?.get("size")).toBe("10");
  });

  it("leaves out an uplink that fails, logging it once without its token, and asks the others", async () => {
    const down = fakeUplink("public", [], () => new Response("{}", { status: 503 }));
    const mirror = fakeUplink("mirror", [result("m-1")]);
    const found = await forwarder([down, mirror]).search({ text: "m", from: 0, size: 20 }, everyone);
    expect(names(found.objects)).toEqual(["m-1"]);
    expect(found.total).toBe(1);
    expect(down.logs).toHaveLength(1);
    expect(down.logs[0]).toMatch(/^uplink search request failed .*"uplink":"public".*answered 503/);
    expect(down.logs.join("\n")).not.toContain("s3cret");
  });

  it("drops answers that are not JSON, not a search result, or too large", async () => {
    for (const body of [
      "<html>",
      JSON.stringify({ results: [] }),
      JSON.stringify({ objects: ["x".repeat(9 << 20)] }),
    ]) {
      const uplink = fakeUplink("public", [], () => new Response(body));
      const found = await forwarder([uplink]).search({ text: "m", from: 0, size: 20 }, everyone);
      expect(found).toEqual({ objects: [], total: 0 });
      expect(uplink.logs).toHaveLength(1);
      expect(uplink.logs[0]).toMatch(/not valid JSON|not an npm search result|larger than 8 MB/);
    }
  });

  it("answers nothing, quietly, from an uplink without search", async () => {
    const uplink = fakeUplink("public", [], () => new Response("{}", { status: 404 }));
    expect(await forwarder([uplink]).search({ text: "m", from: 0, size: 20 }, everyone)).toEqual({
      objects: [],
      total: 0,
    });
    expect(uplink.logs).toEqual([]);
  });

  it("does not send a search for a private or hosted name upstream", async () => {
    const uplink = fakeUplink("public", [result("left-pad")]);
    const search = forwarder([uplink], ["internal-tool"]);
    for (const text of ["@acme/lib", "@acme", "widgets scope:acme", "internal-tool docs"]) {
      expect(await search.search({ text, from: 0, size: 20 }, everyone)).toEqual({ objects: [], total: 0 });
    }
    expect(uplink.queries).toEqual([]);
    expect(names((await search.search({ text: "@partner/kit", from: 0, size: 20 }, everyone)).objects)).toEqual([
      "left-pad",
    ]);
    expect(await search.search({ text: "  ", from: 0, size: 20 }, everyone)).toEqual({ objects: [], total: 0 });
    expect(uplink.queries).toHaveLength(1);
  });

  it("reads names and scopes out of the search text", () => {
    expect(namesInText("@acme/lib  date-fns keywords:a,b scope:@corp author:x @team bad?")).toEqual({
      names: ["@acme/lib", "date-fns"],
      scopes: ["acme", "corp", "team"],
    });
    expect(forwardedParams({ quality: "0.65", popularity: "1", maintenance: "x", text: "t", size: "2" })).toEqual({
      quality: "0.65",
      popularity: "1",
    });
  });
});
