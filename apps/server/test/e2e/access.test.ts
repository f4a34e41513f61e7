import { AuditLog, TokenStore, UserStore } from "@fw/auth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, Sandbox } from "../helpers/clients.js";
import { storageSnapshot } from "../helpers/http.js";
import { publishBody } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  registry = await startTestRegistry({
    access: {
      roles: { admin: ["boss"] },
      teams: { "acme:devs": ["dev1"] },
      packages: {
        "@acme/*": { access: ["$authenticated"], publish: ["acme:devs"], unpublish: ["admin"] },
        "@ci/*": { publish: ["$authenticated"], environments: ["ci"] },
      },
    },
  });
  for (const name of ["dev1", "outsider", "boss"]) tokens[name] = await addUser(registry.url, name);
});

afterAll(async () => {
  await registry.close();
  expect(registry.errors).toEqual([]);
});

function call(method: string, path: string, who?: string, body?: unknown): Promise<Response> {
  return fetch(`${registry.url}${path}`, {
    method,
    headers: {
      ...(body !== undefined && { "content-type": "application/json" }),
      ...(who && { authorization: `Bearer ${tokens[who] ?? who}` }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
}

const publish = (name: string, version: string, who?: string) =>
  call("PUT", `/${name.replace("/", "%2f")}`, who, publishBody(registry.url, { name, version }));

async function refused(request: () => Promise<Response>, status: number, message: RegExp): Promise<void> {
  const before = await storageSnapshot(registry.storage);
  const response = await request();
  const body = (await response.json()) as { error: string };
  expect(response.status, body.error).toBe(status);
  expect(body.error).toMatch(message);
  expect(await storageSnapshot(registry.storage)).toEqual(before);
}

describe("package rules from the config", () => {
  it("a team member publishes; others are refused by the rule, anonymous callers asked to log in", async () => {
    expect((await publish("@acme/web", "1.0.0", "dev1")).status).toBe(201);
    await refused(
      () => publish("@acme/other", "1.0.0", "outsider"),
      403,
      /^outsider may not publish @acme\/other: rule "@acme\/\*" allows acme:devs$/,
    );
    await refused(() => publish("@acme/other", "1.0.0"), 401, /you must be logged in/);
  });

  it("anonymous readers of a private package get exactly the 404 of a missing one, on every read path", async () => {
    // Warm the packument cache first, so the synchronous fast path is the one answering.
    expect((await call("GET", "/@acme%2fweb", "dev1")).status).toBe(200);
    expect((await call("GET", "/@acme%2fweb", "outsider")).status).toBe(200);
    for (const [path, missingPath] of [
      ["/@acme%2fweb", "/@acme%2fnope"],
      ["/@acme/web", "/@acme/nope"],
      ["/@acme/web/1.0.0", "/@acme/nope/1.0.0"],
      ["/@acme/web/-/web-1.0.0.tgz", "/@acme/nope/-/nope-1.0.0.tgz"],
      ["/-/package/@acme/web/dist-tags", "/-/package/@acme/nope/dist-tags"],
    ] as const) {
      const hidden = await call("GET", path);
      const missing = await call("GET", missingPath);
      expect(hidden.status, path).toBe(404);
      expect(missing.status, missingPath).toBe(404);
      const hiddenError = ((await hidden.json()) as { error: string }).error;
      const missingError = ((await missing.json()) as { error: string }).error;
      expect(hiddenError.replaceAll("web", "nope")).toBe(missingError);
    }
    const abbreviated = await fetch(`${registry.url}/@acme%2fweb`, {
      headers: { accept: "application/vnd.npm.install-v1+json" },
    });
    expect(abbreviated.status).toBe(404);
  });

  it("search shows private packages only to callers who may read them, totals included", async () => {
    const search = async (who?: string) => {
      const response = await call("GET", "/-/v1/search?text=web", who);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { objects: Array<{ package: { name: string } }>; total: number };
      return { names: body.objects.map((o) => o.package.name), total: body.total };
    };
    expect(await search("dev1")).toMatchObject({ names: expect.arrayContaining(["@acme/web"]) });
    const anonymous = await search();
    expect(anonymous.names).not.toContain("@acme/web");
    expect(anonymous.total).toBe(anonymous.names.length);
  });

  it("unpublish follows its own list: a maintainer outside it is refused, an admin who is no maintainer may", async () => {
    await refused(
      () => call("DELETE", "/@acme%2fweb/-rev/whatever", "dev1"),
      403,
      /^dev1 may not unpublish @acme\/web: rule "@acme\/\*" allows admin$/,
    );
    const tag = await call("PUT", "/-/package/@acme%2fweb/dist-tags/beta", "boss", "1.0.0");
    expect(tag.status).toBe(201);
    await refused(
      () => call("PUT", "/-/package/@acme%2fweb/dist-tags/next", "outsider", "1.0.0"),
      403,
      /outsider may not publish @acme\/web/,
    );
    const doc = (await (await call("GET", "/@acme%2fweb?write=true", "boss")).json()) as { _rev: string };
    const gone = await call("DELETE", `/@acme%2fweb/-rev/${doc._rev}`, "boss");
    expect(gone.status).toBe(200);
    expect((await call("GET", "/@acme%2fweb", "dev1")).status).toBe(404);
  });

  it("a rule with environments needs a token labelled with one of them", async () => {
    await refused(
      () => publish("@ci/tool", "1.0.0", "outsider"),
      403,
      /^publish of @ci\/tool needs a token for environment ci \(rule "@ci\/\*"\); this request used a token without environment$/,
    );
    const store = new TokenStore(registry.storage, { users: new UserStore(registry.storage) });
    const { token } = await store.create("outsider", { name: "ci", environment: "ci" });
    expect((await publish("@ci/tool", "1.0.0", token)).status).toBe(201);
    // Reads of @ci/* fall back to the default: everyone.
    expect((await call("GET", "/@ci%2ftool")).status).toBe(200);
  });

  it("the real npm client: anonymous npm view gets E404, a signed-in user sees the package", async () => {
    expect((await publish("@acme/lib", "1.0.0", "dev1")).status).toBe(201);
    await using anonymous = await Sandbox.create(registry.url);
    const hidden = await anonymous.npm(["view", "@acme/lib", "version"]);
    expect(hidden.code).not.toBe(0);
    expect(hidden.output).toContain("E404");
    await using outsider = await Sandbox.create(registry.url);
    await outsider.setToken(tokens.outsider as string);
    const seen = await outsider.npm(["view", "@acme/lib", "version"]);
    expect(seen.code, seen.output).toBe(0);
    expect(seen.stdout.trim()).toBe("1.0.0");
  });

  it("the audit trail records logins, publishes, dist-tags, unpublishes and refused writes, never a token", async () => {
    const events = await new AuditLog(registry.storage).query({});
    const seen = events.map((e) => `${e.action} ${e.actor ?? "-"} ${e.package ?? "-"} ${e.outcome}`);
    expect(seen).toEqual(
      expect.arrayContaining([
        "login dev1 - success",
        "publish dev1 @acme/web success",
        "access.denied outsider @acme/other failure",
        "access.denied dev1 @acme/web failure",
        "dist-tag boss @acme/web success",
        "unpublish boss @acme/web success",
      ]),
    );
    const text = JSON.stringify(events);
    for (const token of Object.values(tokens)) expect(text).not.toContain(token);
    expect(text).not.toMatch(/fw_[A-Za-z0-9_-]{16,}/);
  });
});
