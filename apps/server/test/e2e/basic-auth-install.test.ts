import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { passwordHashLoad, setPasswordHashLimits } from "@fw/auth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, nerfDart, Sandbox } from "../helpers/clients.js";
import { publishBody } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
const PASSWORD = "basic auth password";
const PACKAGES = Array.from({ length: 12 }, (_, i) => `basic-dep-${i}`);

beforeAll(async () => {
  registry = await startTestRegistry();
  const token = await addUser(registry.url, "carol", PASSWORD);
  for (const name of PACKAGES) {
    const response = await fetch(`${registry.url}/${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify(publishBody(registry.url, { name, version: "1.0.0" })),
    });
    expect(response.status).toBe(201);
  }
});

afterAll(async () => {
  await registry.close();
  expect(registry.errors).toEqual([]);
});

describe("basic auth (`_auth` in .npmrc)", () => {
  it("npm installs with a password on every request without a password check per request", async () => {
    const credentials = Buffer.from(`carol:${PASSWORD}`).toString("base64");
    // The process's first password check also makes the dummy hash unknown users are checked against.
    const first = await fetch(`${registry.url}/-/whoami`, { headers: { authorization: `Basic ${credentials}` } });
    expect(await first.json()).toEqual({ username: "carol" });

    await using sandbox = await Sandbox.create(registry.url);
    const project = await sandbox.project("uses-basic-auth", Object.fromEntries(PACKAGES.map((n) => [n, "^1.0.0"])));
    // No retries: a refused request fails the install instead of being tried again later.
    await writeFile(
      join(project, ".npmrc"),
      `registry=${registry.url}/\n${nerfDart(registry.url)}:_auth=${credentials}\nfetch-retries=0\n`,
    );
    const { concurrency } = passwordHashLoad();
    try {
      // One check at a time and none waiting: requests that each checked the password would get 503s.
      setPasswordHashLimits({ concurrency: 1, maxWaiting: 0 });
      const install = await sandbox.npm(["install", "--no-audit", "--no-fund"], project);
      expect(install.code, install.output).toBe(0);
    } finally {
      setPasswordHashLimits({ concurrency, maxWaiting: undefined });
    }
    expect((await readdir(join(project, "node_modules"))).filter((n) => n.startsWith("basic-dep-")).sort()).toEqual(
      [...PACKAGES].sort(),
    );
  });
});
