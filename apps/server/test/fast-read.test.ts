import type { PolicyConfig } from "@fw/auth";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describe, expect, it } from "vitest";
import { createRegistry } from "../src/app.js";
import { publishBody } from "./helpers/packages.js";
import { signUp, testConfig } from "./helpers/registry.js";

const ORIGIN = "http://127.0.0.1:4873";

async function setup(access?: PolicyConfig) {
  const registry = createRegistry(testConfig("/unused", access ? { access } : {}), { storage: memoryDriver() });
  await registry.ready;
  const token = await signUp(registry, ORIGIN, "alice");
  for (const name of ["@acme/widget", "plain"]) {
    const published = await registry.fetch(
      new Request(`${ORIGIN}/${name.replace("/", "%2f")}`, {
        method: "PUT",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(publishBody(ORIGIN, { name, version: "1.0.0" })),
      }),
    );
    expect(published.status).toBe(201);
  }
  return { registry, token };
}

describe("fastRead", () => {
  it("applies the package rules: private packages are served to readers the policy allows and deferred otherwise", async () => {
    const { registry, token } = await setup({ packages: { "@acme/*": { access: ["$authenticated"] } } });
    const read = (path: string, headers: Record<string, string>) =>
      registry.fastRead({ method: "GET", url: path, origin: ORIGIN, header: (name) => headers[name] });
    const auth = { authorization: `Bearer ${token}` };
    // The full route fills the packument and token caches, as a first request would.
    expect((await registry.fetch(new Request(`${ORIGIN}/@acme%2fwidget`, { headers: auth }))).status).toBe(200);
    expect(read("/@acme%2fwidget", auth)?.status).toBe(200);
    expect(read("/@acme%2fwidget", {})).toBeUndefined();
    expect((await registry.fetch(new Request(`${ORIGIN}/@acme%2fwidget`))).status).toBe(404);
    expect(read("/plain", {})?.status).toBe(200);
  });

  it("remembers a connection's token by its exact value: another, a forged or a revoked token is checked afresh", async () => {
    const { registry, token } = await setup({ packages: { "@acme/*": { access: ["alice"] } } });
    const bob = await signUp(registry, ORIGIN, "bob");
    const connection = {};
    const read = (bearer: string) =>
      registry.fastRead({
        method: "GET",
        url: "/@acme%2fwidget",
        origin: ORIGIN,
        header: (name) => (name === "authorization" ? `Bearer ${bearer}` : undefined),
        connection,
      });
    for (const bearer of [token, bob]) {
      await registry.fetch(new Request(`${ORIGIN}/-/whoami`, { headers: { authorization: `Bearer ${bearer}` } }));
    }
    expect(read(token)?.status).toBe(200);
    // Bob may not read it: his token on the same connection must not pass as alice's.
    expect(read(bob)).toBeUndefined();
    expect(read(token)?.status).toBe(200);
    const last = token.at(-1) === "A" ? "B" : "A";
    expect(read(`${token.slice(0, -1)}${last}`)).toBeUndefined();
    const logout = await registry.fetch(
      new Request(`${ORIGIN}/-/user/token/${encodeURIComponent(token)}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}` },
      }),
    );
    expect(logout.status).toBe(200);
    expect(read(token)).toBeUndefined();
    const full = await registry.fetch(
      new Request(`${ORIGIN}/@acme%2fwidget`, { headers: { authorization: `Bearer ${token}` } }),
    );
    expect(full.status).toBe(401);
  });

  it("answers cached packument GETs exactly as the full route does", async () => {
    const { registry, token } = await setup();
    const variants: Array<{ path: string; headers: Record<string, string>; method?: string }> = [
      { path: "/plain", headers: {} },
      { path: "/@acme%2fwidget", headers: { "accept-encoding": "gzip" } },
      { path: "/@acme/widget", headers: { accept: "application/vnd.npm.install-v1+json", "accept-encoding": "br" } },
      { path: "/plain", headers: { authorization: `Bearer ${token}` } },
      { path: "/plain", headers: {}, method: "HEAD" },
    ];
    for (const variant of variants) {
      const method = variant.method ?? "GET";
      const full = await registry.fetch(new Request(`${ORIGIN}${variant.path}`, { method, headers: variant.headers }));
      const fast = registry.fastRead({
        method,
        url: variant.path,
        origin: ORIGIN,
        header: (name) => variant.headers[name],
      });
      expect(fast, variant.path).toBeDefined();
      expect(fast?.status).toBe(full.status);
      for (const header of ["etag", "content-type", "content-encoding", "content-length", "vary"]) {
        expect(fast?.headers[header] ?? null, `${variant.path} ${header}`).toBe(full.headers.get(header));
      }
      const fullBody = new Uint8Array(await full.arrayBuffer());
      expect(fast?.body ?? new Uint8Array(0)).toEqual(fullBody);
      const etag = full.headers.get("etag") as string;
      const notModified = registry.fastRead({
        method,
        url: variant.path,
        origin: ORIGIN,
        header: (name) => (name === "if-none-match" ? etag : variant.headers[name]),
      });
      expect(notModified?.status).toBe(304);
    }
  });

  it("answers cached tarball GETs exactly as the full route does, and never a version that is gone", async () => {
    const { registry, token } = await setup({ packages: { "@acme/*": { access: ["$authenticated"] } } });
    const auth = { authorization: `Bearer ${token}` };
    const fast = (url: string, headers: Record<string, string> = {}, method = "GET") =>
      registry.fastRead({ method, url, origin: ORIGIN, header: (name) => headers[name] });
    const scoped = "/@acme/widget/-/widget-1.0.0.tgz";
    // Not in memory until the full route has read it once.
    expect(fast("/plain/-/plain-1.0.0.tgz")).toBeUndefined();
    for (const [path, headers] of [
      ["/plain/-/plain-1.0.0.tgz", {}],
      [scoped, auth],
    ] as const) {
      const full = await registry.fetch(new Request(`${ORIGIN}${path}`, { headers }));
      expect(full.status).toBe(200);
      const fullBody = new Uint8Array(await full.arrayBuffer());
      const answer = fast(path, headers);
      expect(answer?.route).toBe("tarball");
      expect(answer?.status).toBe(200);
      for (const header of ["etag", "content-type", "content-length", "cache-control"]) {
        expect(answer?.headers[header] ?? null, `${path} ${header}`).toBe(full.headers.get(header));
      }
      expect(answer?.body).toEqual(fullBody);
      expect(fast(path, headers, "HEAD")?.body).toBeNull();
      const etag = full.headers.get("etag") as string;
      expect(fast(path, { ...headers, "if-none-match": etag })?.status).toBe(304);
    }
    // A private tarball without a token, a file that is not this package's, a version that does not exist:
    // the full route decides (and refuses).
    expect(fast(scoped)).toBeUndefined();
    expect(fast("/plain/-/other-1.0.0.tgz")).toBeUndefined();
    expect(fast("/plain/-/plain-9.9.9.tgz")).toBeUndefined();
    expect(fast("/plain/-/.plain-1.0.0.tgz")).toBeUndefined();
    // Unpublished: the cached bytes are never served again.
    const doc = (await (await registry.fetch(new Request(`${ORIGIN}/plain?write=true`))).json()) as { _rev: string };
    const removed = await registry.fetch(
      new Request(`${ORIGIN}/plain/-rev/${doc._rev}`, { method: "DELETE", headers: auth }),
    );
    expect(removed.status).toBe(200);
    expect(fast("/plain/-/plain-1.0.0.tgz")).toBeUndefined();
    expect((await registry.fetch(new Request(`${ORIGIN}/plain/-/plain-1.0.0.tgz`))).status).toBe(404);
  });

  it("leaves everything it cannot answer from memory to the full route", async () => {
    const { registry } = await setup();
    const fast = (url: string, headers: Record<string, string> = {}, method = "GET") =>
      registry.fastRead({ method, url, origin: ORIGIN, header: (name) => headers[name] });
    expect(fast("/never-loaded")).toBeUndefined();
    expect(fast("/plain?write=true")).toBeUndefined();
    expect(fast("/plain/1.0.0")).toBeUndefined();
    expect(fast("/-/ping")).toBeUndefined();
    expect(fast("/plain", {}, "PUT")).toBeUndefined();
    expect(fast("/plain", { authorization: "Bearer fw_unknown-token" })).toBeUndefined();
    expect(fast("/plain", { authorization: "Basic YWxpY2U6eA==" })).toBeUndefined();
    expect(fast("/..%2f..%2fetc%2fpasswd")).toBeUndefined();
    const denied = await registry.fetch(
      new Request(`${ORIGIN}/plain`, { headers: { authorization: "Bearer fw_unknown-token" } }),
    );
    expect(denied.status).toBe(401);
  });
});
