import { join } from "node:path";
import { AuditLog } from "@fw/auth";
import { type OidcIssuer, startOidcIssuer } from "@fw/tooling/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox, userSandbox } from "../helpers/clients.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

const AUDIENCE = "npm:127.0.0.1";

describe("OIDC trusted publishing with npm 11", () => {
  let issuer: OidcIssuer;
  let registry: TestRegistry;
  let alice: Sandbox;
  let ci: Sandbox;

  beforeAll(async () => {
    issuer = await startOidcIssuer();
    const trusted = { issuer: issuer.url, repository: "acme/web", workflow: "release.yml" };
    registry = await startTestRegistry({
      extra: {
        trustedPublishing: {
          issuers: [issuer.url],
          audience: AUDIENCE,
          packages: { "@acme/web": [trusted], "@acme/fresh": [trusted] },
        },
      },
    });
    alice = await userSandbox(registry.url, "alice");
    const first = await alice.npm(
      ["publish"],
      await writePackage(join(alice.root, "web-1"), { name: "@acme/web", version: "1.0.0" }),
    );
    expect(first.code, first.output).toBe(0);
    // The CI job has no stored credentials at all.
    ci = await Sandbox.create(registry.url);
  });

  afterAll(async () => {
    await alice?.[Symbol.asyncDispose]();
    await ci?.[Symbol.asyncDispose]();
    await registry?.close();
    await issuer?.close();
  });

  const ciPublish = async (name: string, version: string, repository: string) => {
    const dir = await writePackage(join(ci.root, `${name.replace("/", "-")}-${version}`), { name, version });
    return ci.npm(["publish", "--access", "public"], dir, {
      env: { ...ci.env, ...issuer.githubActionsEnv({ repository }) },
    });
  };

  it("npm publish from the trusted workflow exchanges its ID token and publishes a new version", async () => {
    const published = await ciPublish("@acme/web", "1.1.0", "acme/web");
    expect(published.code, published.output).toBe(0);
    const view = await alice.npm(["view", "@acme/web", "versions", "--json"]);
    expect(JSON.parse(view.stdout)).toEqual(["1.0.0", "1.1.0"]);
    // The job's token owner is a CI identity, not an account: the owners stay as they were.
    const owners = await alice.npm(["owner", "ls", "@acme/web"]);
    expect(owners.stdout.trim()).toBe("alice <alice@example.com>");

    const events = await new AuditLog(registry.storage).query({ action: "token.create" });
    expect(events.some((e) => e.actor === "oidc:github:acme/web" && e.details?.via === "oidc")).toBe(true);
  });

  it("a job from another repository gets nothing, and npm stops for lack of credentials", async () => {
    const refused = await ciPublish("@acme/web", "1.2.0", "evil/fork");
    expect(refused.code).not.toBe(0);
    const view = await alice.npm(["view", "@acme/web", "versions", "--json"]);
    expect(JSON.parse(view.stdout)).toEqual(["1.0.0", "1.1.0"]);
  });

  it("the minted token publishes versions of its one package and nothing else", async () => {
    const exchange = async (pkg: string, idToken: string) =>
      fetch(`${registry.url}/-/npm/v1/oidc/token/exchange/package/${pkg.replace("/", "%2f")}`, {
        method: "POST",
        headers: { authorization: `Bearer ${idToken}` },
      });
    const claims = issuer.githubActionsClaims({ repository: "acme/web", audience: AUDIENCE });
    const response = await exchange("@acme/web", issuer.sign(claims));
    expect(response.status).toBe(201);
    const { token } = (await response.json()) as { token: string };
    const as = (path: string, init: RequestInit = {}) =>
      fetch(`${registry.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
      });
    const tag = await as("/-/package/@acme%2fweb/dist-tags/beta", { method: "PUT", body: JSON.stringify("1.0.0") });
    expect(tag.status).toBe(403);
    const other = await as("/-/package/@acme%2fother/dist-tags/latest", {
      method: "PUT",
      body: JSON.stringify("1.0.0"),
    });
    expect([403, 404]).toContain(other.status);

    // The same ID token (same jti) a second time is refused, with npm's `message` besides `error`.
    const twice = await exchange("@acme/web", issuer.sign(claims));
    expect(twice.status).toBe(401);
    const body = (await twice.json()) as { error: string; message: string };
    expect(body.message).toBe(body.error);
    expect(body.error).toMatch(/already/);
  });

  it("a trusted CI identity cannot create a package: the first version comes from an account", async () => {
    const refused = await ciPublish("@acme/fresh", "1.0.0", "acme/web");
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/existing packages/);
    const missing = await fetch(`${registry.url}/@acme%2ffresh`);
    expect(missing.status).toBe(404);
    expect(registry.errors).toEqual([]);
  });
});
