import { join } from "node:path";
import { generateTotp } from "@fw/auth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, Sandbox } from "../helpers/clients.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";
import { runInTty } from "../helpers/tty.js";

const PASSWORD = "correct horse battery";

describe.skipIf(process.platform === "win32")("two-factor authentication with npm", () => {
  let registry: TestRegistry;
  let alice: Sandbox;
  let secret = "";
  let recoveryCodes: string[] = [];

  beforeAll(async () => {
    registry = await startTestRegistry();
    alice = await Sandbox.create(registry.url);
    await alice.setToken(await addUser(registry.url, "alice", PASSWORD));
    const dir = await writePackage(join(alice.root, "v1"), { name: "tfa-pkg", version: "1.0.0" });
    const first = await alice.npm(["publish"], dir);
    expect(first.code, first.output).toBe(0);
  });

  afterAll(async () => {
    await alice?.[Symbol.asyncDispose]();
    await registry?.close();
  });

  it("npm profile enable-2fa auth-and-writes shows a secret to scan, takes a code and prints recovery codes", async () => {
    const enabled = await runInTty("npm profile enable-2fa auth-and-writes", {
      cwd: alice.root,
      env: alice.env,
      exchanges: [
        { waitFor: /npm password:/, answer: PASSWORD },
        {
          waitFor: /OTP code from your authenticator/,
          answer: (output) => {
            secret = /enter code:\s*([A-Z2-7]+)/i.exec(output)?.[1] ?? "";
            return generateTotp(secret, Date.now());
          },
        },
      ],
    });
    expect(enabled.output).toContain("2FA successfully enabled");
    expect(enabled.code, enabled.output).toBe(0);
    recoveryCodes = [...enabled.output.matchAll(/\t([0-9a-f]{64})\r?\n/g)].map((m) => m[1] as string);
    expect(recoveryCodes).toHaveLength(10);

    const profile = await alice.npm(["profile", "get"]);
    expect(profile.code, profile.output).toBe(0);
    expect(profile.stdout).toMatch(/two-factor auth: auth-and-writes/);
  });

  it("a publish without a one-time password gets npm's OTP challenge; with --otp it goes through", async () => {
    const dir = await writePackage(join(alice.root, "v2"), { name: "tfa-pkg", version: "1.0.1" });
    const refused = await alice.npm(["publish"], dir);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/one-time pass/i);

    const raw = await fetch(`${registry.url}/-/package/tfa-pkg/dist-tags/next`, {
      method: "PUT",
      headers: { authorization: `Bearer ${alice.authToken}`, "content-type": "application/json" },
      body: JSON.stringify("1.0.0"),
    });
    expect(raw.status).toBe(401);
    expect(raw.headers.get("www-authenticate")).toBe("OTP");
    expect(((await raw.json()) as { error: string }).error).toMatch(/one-time password/);

    // The enrolment spent this step's code; the next step's is inside the accepted window.
    const published = await alice.npm(["publish", `--otp=${generateTotp(secret, Date.now() + 30_000)}`], dir);
    expect(published.code, published.output).toBe(0);
    const view = await alice.npm(["view", "tfa-pkg", "versions", "--json"]);
    expect(JSON.parse(view.stdout)).toEqual(["1.0.0", "1.0.1"]);
  });

  it("a recovery code works once; logging in with the password alone is challenged", async () => {
    const code = recoveryCodes[0] as string;
    const tag = (otp?: string) =>
      fetch(`${registry.url}/-/package/tfa-pkg/dist-tags/stable`, {
        method: "PUT",
        headers: {
          authorization: `Bearer ${alice.authToken}`,
          "content-type": "application/json",
          ...(otp && { "npm-otp": otp }),
        },
        body: JSON.stringify("1.0.0"),
      });
    expect((await tag(code)).status).toBe(201);
    const reused = await tag(code);
    expect(reused.status).toBe(401);
    expect(((await reused.json()) as { error: string }).error).toMatch(/wrong or was already used/);

    const login = (otp?: string) =>
      fetch(`${registry.url}/-/user/org.couchdb.user:alice`, {
        method: "PUT",
        headers: { "content-type": "application/json", ...(otp && { "npm-otp": otp }) },
        body: JSON.stringify({ name: "alice", password: PASSWORD }),
      });
    const challenged = await login();
    expect(challenged.status).toBe(401);
    expect(challenged.headers.get("www-authenticate")).toBe("OTP");
    const loggedIn = await login(recoveryCodes[1]);
    expect(loggedIn.status).toBe(201);

    const basic = await fetch(`${registry.url}/-/whoami`, {
      headers: { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}` },
    });
    expect(basic.status).toBe(401);
    expect(((await basic.json()) as { error: string }).error).toMatch(/two-factor authentication/);
  });

  it("npm profile disable-2fa asks for the password and a code, then writes need none", async () => {
    const disabled = await runInTty("npm profile disable-2fa", {
      cwd: alice.root,
      env: alice.env,
      exchanges: [
        { waitFor: /npm password:/, answer: PASSWORD },
        { waitFor: /Enter OTP:/, answer: recoveryCodes[2] as string },
      ],
    });
    expect(disabled.output).toContain("Two factor authentication disabled.");
    expect(disabled.code, disabled.output).toBe(0);

    const dir = await writePackage(join(alice.root, "v3"), { name: "tfa-pkg", version: "1.0.2" });
    const published = await alice.npm(["publish"], dir);
    expect(published.code, published.output).toBe(0);
    expect(registry.errors).toEqual([]);
  });
});
