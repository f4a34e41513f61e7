import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, Sandbox } from "../helpers/clients.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
let limited: TestRegistry;
const PASSWORD = "the right password";

beforeAll(async () => {
  // Short delays so the test can wait them out; the counting is the same as with the defaults.
  registry = await startTestRegistry({
    auth: { loginBackoff: { freeAttemptsPerUser: 3, freeAttemptsPerIp: 10, baseDelayMs: 50, maxDelayMs: 300 } },
  });
  limited = await startTestRegistry({ auth: { rateLimit: { burst: 3, perSecond: 0.001 } } });
});

afterAll(async () => {
  await registry.close();
  await limited.close();
  expect(registry.errors).toEqual([]);
  expect(limited.errors).toEqual([]);
});

function couchLogin(url: string, name: string, password: string): Promise<Response> {
  return fetch(`${url}/-/user/org.couchdb.user:${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, password }),
  });
}

/** Retries until the back-off has passed (each answer says when), then returns the first non-429 answer. */
async function afterBackoff(request: () => Promise<Response>): Promise<Response> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const response = await request();
    if (response.status !== 429) return response;
    await response.body?.cancel();
    await sleep(100);
  }
  throw new Error("still backed off after 100 attempts");
}

describe("login back-off", () => {
  it("50 wrong passwords get backed off with 429 and Retry-After; the right password works afterwards", async () => {
    await addUser(registry.url, "victim", PASSWORD);
    const statuses = new Set<number>();
    let retryAfter: string | null = null;
    let message = "";
    for (let i = 0; i < 50; i++) {
      const response = await couchLogin(registry.url, "victim", `wrong guess ${i}`);
      statuses.add(response.status);
      const body = (await response.json()) as { error: string };
      if (response.status === 429) {
        retryAfter = response.headers.get("retry-after");
        message = body.error;
      }
    }
    expect([...statuses].sort()).toEqual([401, 429]);
    expect(retryAfter).toMatch(/^\d+$/);
    expect(message).toMatch(/^too many failed logins for this (account|address): try again in \d+ s$/);
    const ok = await afterBackoff(() => couchLogin(registry.url, "victim", PASSWORD));
    expect(ok.status).toBe(201);
    expect(((await ok.json()) as { token: string }).token).toMatch(/^fw_/);
  });

  it("basic auth is backed off the same way, and the real npm client shows the 429", async () => {
    await addUser(registry.url, "basic-victim", PASSWORD);
    const basic = (password: string) =>
      fetch(`${registry.url}/-/whoami`, {
        headers: { authorization: `Basic ${Buffer.from(`basic-victim:${password}`).toString("base64")}` },
      });
    const statuses = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const response = await basic(`nope ${i}`);
      statuses.add(response.status);
      await response.body?.cancel();
    }
    expect(statuses.has(429)).toBe(true);
    await using sandbox = await Sandbox.create(registry.url);
    const login = await sandbox.npm(["login", "--auth-type=legacy"], sandbox.root, {
      terminal: true,
      timeoutMs: 30_000,
      onOutput: (() => {
        let pending = "";
        const answers: Array<[RegExp, string]> = [
          [/Username:/, "basic-victim"],
          [/Password:/, "still wrong"],
        ];
        return (chunk: string, write: (text: string) => void) => {
          pending += chunk;
          const next = answers[0];
          if (next?.[0].test(pending)) {
            answers.shift();
            pending = "";
            write(`${next[1]}\r`);
          }
        };
      })(),
    });
    expect(login.code).not.toBe(0);
    expect(login.output).toMatch(/429|401/);
    const whoami = await afterBackoff(() => basic(PASSWORD));
    expect(whoami.status).toBe(200);
    expect(await whoami.json()).toEqual({ username: "basic-victim" });
  });
});

describe("rate limit on auth endpoints", () => {
  it("answers 429 with Retry-After once a client has used its burst", async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${limited.url}/-/v1/login`, { method: "POST" });
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers.get("retry-after");
      await response.body?.cancel();
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    // Reads are not limited.
    expect((await fetch(`${limited.url}/-/ping`)).status).toBe(200);
  });
});
