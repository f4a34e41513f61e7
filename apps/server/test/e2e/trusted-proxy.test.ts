import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser } from "../helpers/clients.js";
import { publishBody } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

const PASSWORD = "correct horse battery";

/**
 * Token CIDR allow-lists behind a proxy: X-Forwarded-For counts only when the socket is a proxy the
 * config trusts; otherwise the socket's own address (here 127.0.0.1) decides.
 */
describe("CIDR-bound tokens behind a trusted proxy", () => {
  let proxied: TestRegistry;
  let direct: TestRegistry;

  beforeAll(async () => {
    proxied = await startTestRegistry({ extra: { trustProxy: ["127.0.0.1"] } });
    direct = await startTestRegistry();
  });

  afterAll(async () => {
    await proxied?.close();
    await direct?.close();
  });

  async function tokenFor(registry: TestRegistry, user: string): Promise<string> {
    const session = await addUser(registry.url, user, PASSWORD);
    const response = await fetch(`${registry.url}/-/npm/v1/tokens`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${session}` },
      body: JSON.stringify({ password: PASSWORD, cidr_whitelist: ["10.0.0.0/8"] }),
    });
    expect(response.status).toBe(201);
    return ((await response.json()) as { token: string }).token;
  }

  const publish = (registry: TestRegistry, token: string, version: string, forwardedFor: string) =>
    fetch(`${registry.url}/proxy-pkg`, {
      method: "PUT",
      headers: {
        "content-type": "application/json",
        authorization: `Bearer ${token}`,
        "x-forwarded-for": forwardedFor,
      },
      body: JSON.stringify(publishBody(registry.url, { name: "proxy-pkg", version })),
    });

  it("the client address from a trusted proxy decides: inside the token's range works, outside is refused", async () => {
    const token = await tokenFor(proxied, "behind");
    const outside = await publish(proxied, token, "1.0.0", "192.0.2.10");
    expect([401, 403]).toContain(outside.status);
    expect(((await outside.json()) as { error: string }).error).toMatch(/192\.0\.2\.10|address/);
    expect((await fetch(`${proxied.url}/proxy-pkg`)).status).toBe(404);

    const inside = await publish(proxied, token, "1.0.0", "10.4.5.6");
    expect(inside.status).toBe(201);
  });

  it("without trustProxy the header is ignored: a client cannot claim an allowed address", async () => {
    const token = await tokenFor(direct, "spoofer");
    const spoofed = await publish(direct, token, "1.0.0", "10.4.5.6");
    expect([401, 403]).toContain(spoofed.status);
    expect((await fetch(`${direct.url}/proxy-pkg`)).status).toBe(404);
    expect(direct.errors).toEqual([]);
  });
});
