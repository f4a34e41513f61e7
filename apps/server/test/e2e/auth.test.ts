import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, Sandbox, userSandbox } from "../helpers/clients.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;

beforeAll(async () => {
  registry = await startTestRegistry();
});

afterAll(async () => {
  await registry.close();
  expect(registry.errors).toEqual([]);
});

async function whoamiWith(token: string): Promise<Response> {
  return fetch(`${registry.url}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
}

/** Runs a prompting npm command in a terminal, answering each prompt as it appears. */
function answering(answers: Array<[RegExp, string]>) {
  let pending = "";
  return {
    terminal: true,
    timeoutMs: 30_000,
    onOutput(chunk: string, write: (text: string) => void) {
      pending += chunk;
      const next = answers[0];
      if (next?.[0].test(pending)) {
        answers.shift();
        pending = "";
        write(`${next[1]}\r`);
      }
    },
  };
}

describe("npm adduser and login (couch)", () => {
  it("npm adduser creates the account; npm login logs in again; a wrong password is refused", async () => {
    await using sandbox = await Sandbox.create(registry.url);
    const adduser = await sandbox.npm(
      ["adduser", "--auth-type=legacy"],
      sandbox.root,
      answering([
        [/Username:/, "couchy"],
        [/Password:/, "couch password 1"],
        [/Email/, "couchy@example.com"],
      ]),
    );
    expect(adduser.code, adduser.output).toBe(0);
    expect(adduser.output).toContain(`Logged in on ${registry.url}/.`);
    expect(await readFile(join(sandbox.home, ".npmrc"), "utf8")).toMatch(/:_authToken=fw_/);
    const whoami = await sandbox.npm(["whoami"]);
    expect(whoami.stdout.trim()).toBe("couchy");

    await using other = await Sandbox.create(registry.url);
    const login = await other.npm(
      ["login", "--auth-type=legacy"],
      other.root,
      answering([
        [/Username:/, "couchy"],
        [/Password:/, "couch password 1"],
      ]),
    );
    expect(login.code, login.output).toBe(0);
    expect((await other.npm(["whoami"])).stdout.trim()).toBe("couchy");

    await using wrong = await Sandbox.create(registry.url);
    const refused = await wrong.npm(
      ["login", "--auth-type=legacy"],
      wrong.root,
      answering([
        [/Username:/, "couchy"],
        [/Password:/, "not the password"],
      ]),
    );
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain("incorrect user name or password");
    const nobody = await wrong.npm(["whoami"]);
    expect(nobody.code).not.toBe(0);
    expect(nobody.output).toContain("ENEEDAUTH");
  });
});

describe("npm login (web)", () => {
  async function webLogin(sandbox: Sandbox, form: Record<string, string>) {
    const pages: Array<{ status: number; html: string }> = [];
    let submitted: Promise<void> | undefined;
    const login = await sandbox.npm(["login"], sandbox.root, {
      timeoutMs: 30_000,
      onOutput(chunk) {
        const url = /(http:\/\/127\.0\.0\.1:\d+\/-\/web\/login\/[\w-]+)/.exec(chunk)?.[1];
        if (!url || submitted) return;
        // What a browser does: load the page, then post its form to the form's action.
        submitted = (async () => {
          const page = await fetch(url);
          const html = await page.text();
          pages.push({ status: page.status, html });
          const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1] as string;
          for (const body of [{ name: form.name as string, password: "wrong password!" }, form]) {
            const answer = await fetch(new URL(action, url), { method: "POST", body: new URLSearchParams(body) });
            pages.push({ status: answer.status, html: await answer.text() });
          }
        })();
      },
    });
    await submitted;
    return { login, pages };
  }

  it("npm login prints a URL whose form logs npm in, after refusing a wrong password", async () => {
    await using sandbox = await Sandbox.create(registry.url);
    const { login, pages } = await webLogin(sandbox, {
      name: "webby",
      password: "web password 1",
      create: "1",
      email: "webby@example.com",
    });
    expect(pages[0]?.status).toBe(200);
    expect(pages[0]?.html).toContain("Log in to fw");
    expect(pages[1]?.status).toBe(401);
    expect(pages[1]?.html).toContain("Incorrect user name or password.");
    expect(pages[2]?.status).toBe(200);
    expect(pages[2]?.html).toContain("Logged in as webby");
    expect(login.code, login.output).toBe(0);
    expect(login.stdout).toContain(`Logged in on ${registry.url}/.`);

    const whoami = await sandbox.npm(["whoami"]);
    expect(whoami.code, whoami.output).toBe(0);
    expect(whoami.stdout.trim()).toBe("webby");

    // The same login page works once only.
    const reused = await fetch(/(http:\/\/\S+\/-\/web\/login\/[\w-]+)/.exec(login.stdout)?.[1] as string);
    expect(reused.status).toBe(404);
  });
});

describe("npm logout", () => {
  it("revokes the token on the registry, not only in ~/.npmrc", async () => {
    await using sandbox = await userSandbox(registry.url, "leaver");
    const token = sandbox.authToken as string;
    expect((await whoamiWith(token)).status).toBe(200);

    const logout = await sandbox.npm(["logout"]);
    expect(logout.code, logout.output).toBe(0);
    expect(await readFile(join(sandbox.home, ".npmrc"), "utf8")).not.toContain("_authToken");

    const dead = await whoamiWith(token);
    expect(dead.status).toBe(401);
    expect(((await dead.json()) as { error: string }).error).toMatch(
      /^this token \(fw_\S+…\) was revoked on \S+: log in again with `npm login` or create a new token$/,
    );
  });
});

describe("npm token", () => {
  it("creates, lists and revokes tokens; a revoked token stops working", async () => {
    await addUser(registry.url, "tokener", "token password 1");
    await using sandbox = await userSandbox(registry.url, "tokener-2");
    await sandbox.setToken(await loginToken("tokener", "token password 1"));

    const create = await sandbox.npm(["token", "create", "--password=token password 1", "--name=ci deploy"]);
    expect(create.code, create.output).toBe(0);
    const created = /Created token (fw_\S+)/.exec(create.stdout)?.[1] as string;
    expect(created).toBeDefined();
    expect(await (await whoamiWith(created)).json()).toEqual({ username: "tokener" });

    const list = await sandbox.npm(["token", "list"]);
    expect(list.code, list.output).toBe(0);
    const lines = list.stdout.split("\n").filter((line) => line.startsWith("Token "));
    // The session of `addUser`, the one of `loginToken`, and the new one.
    expect(lines).toHaveLength(3);
    expect(list.stdout).toContain(`Token ${created.slice(0, 9)}… with id`);
    expect(list.stdout).toContain("name ci deploy created");
    expect(list.stdout).toContain("name npm login created");
    expect(list.stdout).not.toContain("undefined");

    const id = new RegExp(`Token ${created.slice(0, 9)}… with id (\\S+) name`).exec(list.stdout)?.[1] as string;
    const revoke = await sandbox.npm(["token", "revoke", id]);
    expect(revoke.code, revoke.output).toBe(0);
    expect(revoke.stdout).toContain("Removed 1 token");
    expect((await whoamiWith(created)).status).toBe(401);
    expect(
      (await sandbox.npm(["token", "list"])).stdout.split("\n").filter((l) => l.startsWith("Token ")),
    ).toHaveLength(2);

    const expiring = await sandbox.npm(["token", "create", "--password=token password 1", "--expires=30"]);
    expect(expiring.code, expiring.output).toBe(0);
    const expires = /expires: (\S+)/.exec(expiring.stdout)?.[1] as string;
    expect(Date.parse(expires) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    // npm 11's granular fields make a token limited to some packages (checked in access.test.ts).
    const narrow = await sandbox.npm(["token", "create", "--password=token password 1", "--packages=ro-pkg"]);
    expect(narrow.code, narrow.output).toBe(0);
    expect(narrow.stdout).toMatch(/Created token fw_\S+/);

    const wrong = await sandbox.npm(["token", "create", "--password=not my password"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.output).toContain("incorrect password");
  });

  it("a read-only token installs but cannot publish", async () => {
    await using owner = await userSandbox(registry.url, "ro-user");
    const dir = await writePackage(await owner.dir("ro-pkg"), { name: "ro-pkg", version: "1.0.0" });
    expect((await owner.npm(["publish"], dir)).code).toBe(0);
    await owner.setToken(await loginToken("ro-user", "correct horse battery"));

    const create = await owner.npm([
      "token",
      "create",
      "--password=correct horse battery",
      "--name=read only",
      "--packages-and-scopes-permission=read-only",
    ]);
    expect(create.code, create.output).toBe(0);
    const readonly = /Created token (fw_\S+)/.exec(create.stdout)?.[1] as string;

    await using ci = await Sandbox.create(registry.url);
    await ci.setToken(readonly);
    expect((await ci.npm(["whoami"])).stdout.trim()).toBe("ro-user");
    const project = await ci.project("ro-install", { "ro-pkg": "1.0.0" });
    const install = await ci.npm(["install"], project);
    expect(install.code, install.output).toBe(0);

    const next = await writePackage(await ci.dir("ro-pkg-2"), { name: "ro-pkg", version: "1.0.1" });
    const publish = await ci.npm(["publish"], next);
    expect(publish.code).not.toBe(0);
    expect(publish.output).toContain("403 Forbidden");
    expect(publish.output).toContain("this token is read-only: it cannot publish or change packages");
    const versions = await owner.npm(["view", "ro-pkg", "versions", "--json"]);
    expect(JSON.parse(versions.stdout)).toEqual(["1.0.0"]);
  });
});

/** A fresh session token for an existing account, as `npm login` gets it. */
async function loginToken(name: string, password: string): Promise<string> {
  const response = await fetch(`${registry.url}/-/user/org.couchdb.user:${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ _id: `org.couchdb.user:${name}`, name, password }),
  });
  return ((await response.json()) as { token: string }).token;
}
