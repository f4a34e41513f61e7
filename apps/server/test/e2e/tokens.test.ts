import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, userSandbox } from "../helpers/clients.js";
import { storageSnapshot } from "../helpers/http.js";
import { publishBody, writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
const PASSWORD = "granular password 1";
let session: string;

beforeAll(async () => {
  registry = await startTestRegistry();
  session = await addUser(registry.url, "granular", PASSWORD);
  await addUser(registry.url, "stranger", PASSWORD);
});

afterAll(async () => {
  await registry.close();
  expect(registry.errors).toEqual([]);
});

/** `POST /-/npm/v1/tokens` with the fields npm 11's `npm token create` sends. */
async function createToken(fields: Record<string, unknown>, auth = session): Promise<string> {
  const response = await fetch(`${registry.url}/-/npm/v1/tokens`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${auth}` },
    body: JSON.stringify({ password: PASSWORD, ...fields }),
  });
  const body = (await response.json()) as { token?: string; error?: string };
  expect(response.status, body.error).toBe(201);
  return body.token as string;
}

function publish(name: string, version: string, token?: string): Promise<Response> {
  return fetch(`${registry.url}/${name.replace("/", "%2f")}`, {
    method: "PUT",
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(publishBody(registry.url, { name, version })),
  });
}

/** A refused request: the status, an actionable `{error}` body, and not one stored object changed. */
async function refused(request: () => Promise<Response>, status: number, message: RegExp): Promise<void> {
  const before = await storageSnapshot(registry.storage);
  const response = await request();
  const body = (await response.json()) as Record<string, unknown>;
  expect(response.status, JSON.stringify(body)).toBe(status);
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatch(message);
  expect(await storageSnapshot(registry.storage)).toEqual(before);
}

describe("granular tokens over raw HTTP", () => {
  it("a token limited to packages and scopes publishes those and nothing else", async () => {
    const token = await createToken({
      name: "limited",
      packages: ["tok-allowed"],
      scopes: ["@tok"],
      packages_and_scopes_permission: "read-write",
    });
    expect((await publish("tok-allowed", "1.0.0", token)).status).toBe(201);
    expect((await publish("@tok/web", "1.0.0", token)).status).toBe(201);
    await refused(
      () => publish("tok-other", "1.0.0", token),
      403,
      /^this token \(fw_\S+…\) may only be used for tok-allowed, @tok\/\*, not tok-other: use a token that covers it$/,
    );
    const list = (await (
      await fetch(`${registry.url}/-/npm/v1/tokens`, { headers: { authorization: `Bearer ${session}` } })
    ).json()) as { objects: Array<Record<string, unknown>> };
    expect(list.objects.find((t) => t.name === "limited")).toMatchObject({
      packages: ["tok-allowed"],
      scopes: ["@tok"],
      packages_and_scopes_permission: "read-write",
      readonly: false,
    });
  });

  it("a read-only token (npm 11's packages_and_scopes_permission) reads but cannot publish", async () => {
    const token = await createToken({ name: "ro", packages_and_scopes_permission: "read-only" });
    const read = await fetch(`${registry.url}/tok-allowed`, { headers: { authorization: `Bearer ${token}` } });
    expect(read.status).toBe(200);
    await refused(() => publish("tok-ro", "1.0.0", token), 403, /read-only/);
  });

  it("an expired token is refused with the date and what to do", async () => {
    const token = await createToken({ name: "soon", expires: 1 });
    const key = `tokens/${createHash("sha256").update(token).digest("hex")}.json`;
    const stored = await registry.storage.get(key);
    const record = JSON.parse(new TextDecoder().decode(stored?.body)) as Record<string, unknown>;
    await registry.storage.put(key, JSON.stringify({ ...record, expires: "2020-01-01T00:00:00.000Z" }));
    await refused(
      () => publish("tok-expired", "1.0.0", token),
      401,
      /^this token \(fw_\S+…\) expired on 2020-01-01T00:00:00.000Z: create a new one with `npm token create`$/,
    );
  });

  it("a revoked token is told apart from an unknown one", async () => {
    const token = await createToken({ name: "gone" });
    const listed = (await (
      await fetch(`${registry.url}/-/npm/v1/tokens`, { headers: { authorization: `Bearer ${session}` } })
    ).json()) as { objects: Array<{ key: string; name: string }> };
    const key = listed.objects.find((t) => t.name === "gone")?.key as string;
    const revoke = await fetch(`${registry.url}/-/npm/v1/tokens/token/${key}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${session}` },
    });
    expect(revoke.status).toBe(204);
    await refused(() => publish("tok-revoked", "1.0.0", token), 401, /was revoked on \S+: log in again/);
    await refused(
      () => publish("tok-revoked", "1.0.0", "fw_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
      401,
      /unknown|not an fw registry token/,
    );
  });

  it("a token bound to other addresses is refused from here, and works from an allowed one", async () => {
    const elsewhere = await createToken({ name: "cidr", cidr_whitelist: ["10.0.0.0/8"] });
    await refused(
      () => publish("tok-cidr", "1.0.0", elsewhere),
      403,
      /^this token may only be used from 10\.0\.0\.0\/8, not from /,
    );
    const here = await createToken({ name: "cidr-local", cidr_whitelist: ["127.0.0.0/8"] });
    expect((await publish("tok-cidr", "1.0.0", here)).status).toBe(201);
  });

  it("invalid granular fields are refused with what to write instead", async () => {
    for (const [fields, message] of [
      [{ scopes: ["tok"] }, /scopes/],
      [{ packages_and_scopes_permission: "all" }, /read-only" or "read-write/],
      [{ cidr_whitelist: ["not-a-cidr"] }, /CIDR/],
      [{ expires: -1 }, /whole number of days/],
    ] as const) {
      const response = await fetch(`${registry.url}/-/npm/v1/tokens`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${session}` },
        body: JSON.stringify({ password: PASSWORD, ...fields }),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(message);
    }
  });

  it("non-owners and anonymous callers cannot publish over an existing package", async () => {
    const stranger = await addUser(registry.url, "stranger-2", PASSWORD);
    await refused(
      () => publish("tok-allowed", "2.0.0", stranger),
      403,
      /^stranger-2 is not a maintainer of tok-allowed: ask one of granular to run `npm owner add stranger-2 tok-allowed`$/,
    );
    await refused(() => publish("tok-allowed", "2.0.0"), 401, /you must be logged in/);
  });
});

describe("granular tokens with the real npm client", () => {
  it("npm publish with a token limited to another package fails with the reason; the covered package publishes", async () => {
    const limited = await createToken({ name: "npm-limited", packages: ["npm-tok-ok"] });
    await using sandbox = await userSandbox(registry.url, "npm-granular");
    await sandbox.setToken(limited);
    const refusedDir = await writePackage(`${sandbox.root}/refused`, { name: "npm-tok-no", version: "1.0.0" });
    const no = await sandbox.npm(["publish"], refusedDir);
    expect(no.code).not.toBe(0);
    expect(no.output).toContain("may only be used for npm-tok-ok, not npm-tok-no");
    const allowedDir = await writePackage(`${sandbox.root}/allowed`, { name: "npm-tok-ok", version: "1.0.0" });
    const ok = await sandbox.npm(["publish"], allowedDir);
    expect(ok.code, ok.output).toBe(0);
    const view = await sandbox.npm(["view", "npm-tok-ok", "version"]);
    expect(view.stdout.trim()).toBe("1.0.0");
  });
});
