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
  uplinkShare,
  uplinkWindow,
} from "./search.js";

function settings(url: string, overrides: Partial<UplinkConfig> = {}): UplinkConfig {
  return {
    url,
    timeouts: { responseMs: 200, idleMs: 200, totalMs: 2_000 },
    retries: 0,
    maxAgeMs: 1_000,
    // The defaults' breaker: searches must not trip it.
    circuit: { failures: 3, cooldownMs: 60_000 },
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

/** What a fake uplink answers a request with, when not its search results or a packument. */
type Answer = (url: URL, init: RequestInit) => Response | Promise<Response>;

/** A fetch that answers only when aborted: an uplink that accepts the request and never responds. */
const neverAnswers: Answer = (_url, init) =>
  new Promise((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason)));

/**
 * A fake uplink in memory: answers `/-/v1/search` with the window `from`/`size` asks for out of `results`
 * (at most 250, as npm's registry does) or with what `search` returns, a packument for any other path (or
 * what `packument` returns), and records each request.
 */
function fakeUplink(
  name: string,
  results: unknown[],
  search?: Answer,
  options: { packument?: Answer; settings?: Partial<UplinkConfig> } = {},
) {
  const queries: URLSearchParams[] = [];
  const headers: Record<string, string>[] = [];
  const packuments: string[] = [];
  const fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    if (!url.pathname.endsWith("/-/v1/search")) {
      packuments.push(url.pathname);
      if (options.packument) return options.packument(url, init);
      const pkg = decodeURIComponent(url.pathname.split("/").at(-1) ?? "");
      return Response.json({ name: pkg, "dist-tags": {}, versions: {} });
    }
    queries.push(url.searchParams);
    headers.push(init.headers as Record<string, string>);
    if (search) return search(url, init);
    const from = Number(url.searchParams.get("from"));
    const size = Math.min(250, Number(url.searchParams.get("size")));
    const body = { objects: results.slice(from, from + size), total: results.length, time: new Date().toUTCString() };
    return new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  const logs: string[] = [];
  const logger = {
    debug() {},
    info: (message: string) => logs.push(message),
    warn: (message: string, fields?: Record<string, unknown>) => logs.push(`${message} ${JSON.stringify(fields)}`),
    error: (message: string) => logs.push(message),
  };
  const client = new UpstreamClient(
    name,
    settings(`https://${name}.example/npm`, { auth: { type: "bearer", token: "s3cret" }, ...options.settings }),
    { logger, fetch },
  );
  return { client, queries, headers, packuments, logs, logger };
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

  it("gives each uplink the positions of its own results, the uplinks one after another", () => {
    // Two uplinks of 9 and 2 results: positions 0-8 are the first's, 9-10 the second's.
    expect(uplinkShare(0, 5, 0)).toEqual({ from: 0, count: 5 });
    expect(uplinkShare(8, 4, 0)).toEqual({ from: 8, count: 4 });
    expect(uplinkShare(8, 4, 9)).toEqual({ from: 0, count: 3 });
    expect(uplinkShare(0, 5, 9)).toEqual({ from: 0, count: 0 });
    expect(uplinkShare(12, 4, 9)).toEqual({ from: 3, count: 4 });
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

  it("pages through two uplinks of different sizes, the first's results then the second's", async () => {
    const index = new SearchIndex();
    for (const name of ["gadget-a", "gadget-b", "gadget-c"]) index.update(hostedDoc(name, "a gadget"));
    const pub = fakeUplink(
      "public",
      Array.from({ length: 9 }, (_, i) => result(`pub-${i}`)),
    );
    const mirror = fakeUplink("mirror", [result("mirror-0"), result("mirror-1")]);
    const search = forwarder([pub, mirror]);
    const seen: string[] = [];
    const totals = new Set<number>();
    // As a client pages: on while `from` is below the total it was given.
    for (let from = 0, total = 1; from < total; from += 4) {
      const local = index.search("gadget", 4, from);
      const page = mergeSearch(
        local,
        await search.search({ text: "gadget", ...uplinkWindow(local, from, 4) }, everyone),
      );
      seen.push(...names(page.objects));
      total = page.total;
      totals.add(total);
    }
    expect(seen).toEqual([
      "gadget-a",
      "gadget-b",
      "gadget-c",
      ...Array.from({ length: 9 }, (_, i) => `pub-${i}`),
      "mirror-0",
      "mirror-1",
    ]);
    expect([...totals]).toEqual([14]);
  });

  it("asks for pages past npm's 250 results one uplink after another", async () => {
    const pub = fakeUplink(
      "public",
      Array.from({ length: 300 }, (_, i) => result(`pub-${i}`)),
    );
    const mirror = fakeUplink(
      "mirror",
      Array.from({ length: 10 }, (_, i) => result(`mirror-${i}`)),
    );
    const found = await forwarder([pub, mirror]).search({ text: "x", from: 295, size: 10 }, everyone);
    expect(names(found.objects)).toEqual([
      ...["pub-295", "pub-296", "pub-297", "pub-298", "pub-299"],
      ...["mirror-0", "mirror-1", "mirror-2", "mirror-3", "mirror-4"],
    ]);
    expect(found.total).toBe(310);
    expect(pub.queries.map((query) => [query.get("from"), query.get("size")])).toEqual([["295", "10"]]);
    expect(mirror.queries.map((query) => [query.get("from"), query.get("size")])).toEqual([["0", "5"]]);
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

  it("lists the uplinks one after another and keeps a name once on a page, from the uplink its rule lists first", async () => {
    const pub = fakeUplink("public", [result("a-1"), result("shared"), result("@partner/kit"), result("a-4")]);
    const mirror = fakeUplink("mirror", [
      result("b-1", { searchScore: 1 }),
      result("shared", { searchScore: 2 }),
      result("@partner/kit", { searchScore: 3 }),
    ]);
    const found = await forwarder([pub, mirror]).search({ text: "x", from: 0, size: 20 }, everyone);
    expect(found.objects.map((o) => `${o.package.name}:${o.searchScore}`)).toEqual([
      "a-1:12.5",
      "shared:12.5", // "**" lists public first
      "a-4:12.5",
      "b-1:1",
      "@partner/kit:3", // "@partner/*" lists the mirror first
    ]);
    expect(found.total).toBe(7);
    // Asked at once: the first for its share, the second for as many as the page could need from it.
    expect(pub.queries[0]?.get("size")).toBe("20");
    expect(mirror.queries[0]?.get("size")).toBe("20");
  });

  it("leaves out an uplink that fails, without its token in the log, and asks the others", async () => {
    const down = fakeUplink("public", [], () => new Response("{}", { status: 503 }));
    const mirror = fakeUplink("mirror", [result("m-1")]);
    const found = await forwarder([down, mirror]).search({ text: "m", from: 0, size: 20 }, everyone);
    expect(names(found.objects)).toEqual(["m-1"]);
    expect(found.total).toBe(1);
    expect(down.logs).toHaveLength(1);
    expect(down.logs[0]).toMatch(/^uplink search failing; .*"uplink":"public".*answered 503/);
    expect(down.logs.join("\n")).not.toContain("s3cret");
  });

  it("warns when an uplink's search starts failing, not on every search, and says when it answers again", async () => {
    let failing = true;
    const uplink = fakeUplink("public", [], () =>
      failing ? new Response("{}", { status: 503 }) : Response.json({ objects: [result("m-1")], total: 1 }),
    );
    const search = forwarder([uplink]);
    const ask = () => search.search({ text: "m", from: 0, size: 20 }, everyone);
    for (let i = 0; i < 3; i++) await ask();
    failing = false;
    await ask();
    failing = true;
    await ask();
    expect(uplink.queries).toHaveLength(5);
    expect(uplink.logs.map((line) => line.split(" {")[0])).toEqual([
      "uplink search failing; its results are left out until it answers again",
      "uplink search answers again",
      "uplink search failing; its results are left out until it answers again",
    ]);
  });

  it("does not count searches in the circuit breaker that guards installs", async () => {
    let packumentFails = false;
    let searchFails = true;
    const uplink = fakeUplink(
      "public",
      [],
      () => (searchFails ? new Response("{}", { status: 503 }) : Response.json({ objects: [], total: 0 })),
      {
        packument: (url) =>
          packumentFails
            ? new Response("{}", { status: 503 })
            : Response.json({ name: url.pathname.split("/").at(-1), "dist-tags": {}, versions: {} }),
      },
    );
    const search = forwarder([uplink]);
    const ask = () => search.search({ text: "m", from: 0, size: 20 }, everyone);
    // As many failed searches as rest the uplink (`circuit.failures: 3`): installs still go upstream.
    for (let i = 0; i < 3; i++) await ask();
    expect((await uplink.client.packument("left-pad")).status).toBe("ok");
    expect(uplink.packuments).toEqual(["/npm/left-pad"]);

    // Nor does a search's success clear the installs' failures: 2 + 1 failed fetches rest the uplink.
    packumentFails = true;
    searchFails = false;
    for (let i = 0; i < 2; i++) await expect(uplink.client.packument("left-pad")).rejects.toThrow(/answered 503/);
    expect(await ask()).toEqual({ objects: [], total: 0 });
    await expect(uplink.client.packument("left-pad")).rejects.toThrow(/answered 503/);
    expect(uplink.client.isResting()).toBe(true);

    // While it rests, searches skip it without a warning each.
    const asked = uplink.queries.length;
    const logged = uplink.logs.length;
    await ask();
    await ask();
    expect(uplink.queries).toHaveLength(asked);
    expect(uplink.logs).toHaveLength(logged);
  });

  it("answers within its own short budget when an uplink never answers, with room on the page or none", async () => {
    // Install timeouts for a slow uplink: half a minute for an answer, two minutes in all, and retries.
    const stalled = fakeUplink("public", [], neverAnswers, {
      settings: { timeouts: { responseMs: 30_000, idleMs: 30_000, totalMs: 120_000 }, retries: 2 },
    });
    const search = forwarder([stalled]);
    const [room, full] = await Promise.all([
      search.search({ text: "m", from: 0, size: 20 }, everyone),
      search.search({ text: "m", from: 0, size: 0 }, everyone),
    ]);
    expect(room).toEqual({ objects: [], total: 0 });
    expect(full).toEqual({ objects: [], total: 0 });
    // Each asked once, not retried.
    expect(stalled.queries.map((query) => query.get("size"))).toEqual(["20", "1"]);
  }, 15_000);

  it("drops answers that are not JSON, not a search result, or too large", async () => {
    for (const body of [
      "<html>",
      JSON.stringify({ results: [] }),
      JSON.stringify({ objects: ["x".repeat(3 << 20)] }),
    ]) {
      const uplink = fakeUplink("public", [], () => new Response(body));
      const found = await forwarder([uplink]).search({ text: "m", from: 0, size: 20 }, everyone);
      expect(found).toEqual({ objects: [], total: 0 });
      expect(uplink.logs).toHaveLength(1);
      expect(uplink.logs[0]).toMatch(/not valid JSON|not an npm search result|larger than 2 MB/);
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
    for (const text of ["@acme/lib", "@acme", "widgets scope:acme", "internal-tool docs", "legacy-tool"]) {
      expect(await search.search({ text, from: 0, size: 20 }, everyone)).toEqual({ objects: [], total: 0 });
    }
    expect(uplink.queries).toEqual([]);
    expect(names((await search.search({ text: "@partner/kit", from: 0, size: 20 }, everyone)).objects)).toEqual([
      "left-pad",
    ]);
    expect(await search.search({ text: "  ", from: 0, size: 20 }, everyone)).toEqual({ objects: [], total: 0 });
    expect(uplink.queries).toHaveLength(1);
  });

  it("does not tell a caller whether a name it may not read is hosted", async () => {
    const uplink = fakeUplink("public", [result("left-pad")]);
    const search = forwarder([uplink], ["internal-tool", "legacy-secret"]);
    const anonymous = (name: string) => !["internal-tool", "legacy-secret"].includes(name);
    const answers = async (text: string, visible: (name: string) => boolean) => {
      const asked = uplink.queries.length;
      const found = await search.search({ text, from: 0, size: 20 }, visible);
      return { names: names(found.objects), total: found.total, asked: uplink.queries.length - asked };
    };
    // A hosted name and a guessed one are answered alike: sent upstream when the rule proxies the name…
    expect(await answers("internal-tool", anonymous)).toEqual({ names: ["left-pad"], total: 1, asked: 1 });
    expect(await answers("internal-guess", anonymous)).toEqual({ names: ["left-pad"], total: 1, asked: 1 });
    // …and not when it keeps the name private (`legacy-*` lists no uplink), hosted or not.
    expect(await answers("legacy-secret", anonymous)).toEqual({ names: [], total: 0, asked: 0 });
    expect(await answers("legacy-guess", anonymous)).toEqual({ names: [], total: 0, asked: 0 });
    // A caller who may read the hosted package does not send its name upstream.
    expect(await answers("internal-tool", everyone)).toEqual({ names: [], total: 0, asked: 0 });
  });

  it("strips control characters from upstream text", () => {
    const found = normaliseResult(
      result("ansi", {
        package: {
          ...result("ansi").package,
          description: "red \u001b[31malert\u0007\r\nline two\u009b2J",
          keywords: ["key\u0000word", "\u001b", "fine"],
          publisher: { username: "evil\u001b]0;title\u0007", email: "e@example.com\u0085" },
          maintainers: [{ username: "\u0007" }, { username: "ok\u009d" }],
          links: { homepage: "https://example.com/a\u001bb\tc" },
        },
        flags: { deprecated: "use\u001b[2K other" },
      }),
    );
    expect(found?.package).toMatchObject({
      description: "red [31malert  line two2J",
      keywords: ["keyword", "fine"],
      publisher: { username: "evil]0;title", email: "e@example.com" },
      maintainers: [{ username: "ok" }],
      links: { homepage: "https://example.com/a%1Bbc" },
    });
    expect(found?.flags).toEqual({ deprecated: "use[2K other" });
    // A name or version with one is not cleaned into another name: the result is dropped.
    expect(normaliseResult(result("left\u0007pad"))).toBeNull();
    expect(normaliseResult(result("x", { package: { ...result("x").package, version: "1.0.0\u001b" } }))).toBeNull();
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
