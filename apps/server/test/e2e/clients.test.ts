/**
 * pnpm, yarn 4 and bun against the registry: each publishes with its own command and installs a
 * graph with a scoped package and a transitive dependency, as a user of that client would.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "../helpers/clients.js";
import { installedVersion } from "../helpers/core-suite.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
let alice: Sandbox;

beforeAll(async () => {
  registry = await startTestRegistry();
  alice = await userSandbox(registry.url, "alice");
  for (const spec of [
    { name: "base-lib", version: "1.0.0" },
    { name: "base-lib", version: "1.3.0" },
    { name: "@acme/util", version: "2.1.0", dependencies: { "base-lib": "^1.0.0" } },
  ]) {
    const dir = await writePackage(await alice.dir(`src-${spec.name.replace("/", "+")}-${spec.version}`), spec);
    const result = await alice.npm(["publish"], dir);
    expect(result.code, result.output).toBe(0);
  }
});

afterAll(async () => {
  await alice?.[Symbol.asyncDispose]();
  await registry?.close();
  expect(registry?.errors ?? []).toEqual([]);
});

async function integrityOf(name: string, version: string): Promise<string> {
  const response = await fetch(`${registry.url}/${name.replace("/", "%2f")}/${version}`);
  return ((await response.json()) as { dist: { integrity: string } }).dist.integrity;
}

async function versionsOf(name: string): Promise<string[]> {
  const response = await fetch(`${registry.url}/${name.replace("/", "%2f")}`);
  return Object.keys(((await response.json()) as { versions: Record<string, unknown> }).versions);
}

describe("pnpm", () => {
  it("publishes and installs", async () => {
    await using sandbox = await userSandbox(registry.url, "pnpm-user");
    const dir = await writePackage(await sandbox.dir("pnpm-made"), { name: "pnpm-made", version: "1.0.0" });
    const publish = await sandbox.pnpm(["publish", "--no-git-checks"], dir);
    expect(publish.code, publish.output).toBe(0);
    expect(publish.output).toContain("Published package pnpm-made@1.0.0");
    expect(await versionsOf("pnpm-made")).toEqual(["1.0.0"]);

    const project = await sandbox.project("pnpm-app", { "@acme/util": "^2.0.0", "pnpm-made": "1.0.0" });
    const install = await sandbox.pnpm(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(install.output).toContain("+ @acme/util 2.1.0");
    expect(await installedVersion(project, "@acme/util")).toBe("2.1.0");
    expect(await installedVersion(project, "pnpm-made")).toBe("1.0.0");
    expect(await installedVersion(join(project, "node_modules/.pnpm/@acme+util@2.1.0"), "base-lib")).toBe("1.3.0");
    const lock = await readFile(join(project, "pnpm-lock.yaml"), "utf8");
    expect(lock).toContain(`base-lib@1.3.0:\n    resolution: {integrity: ${await integrityOf("base-lib", "1.3.0")}}`);
  });
});

describe("yarn 4", () => {
  it("publishes and installs", async () => {
    await using sandbox = await userSandbox(registry.url, "yarn-user");
    const dir = await writePackage(await sandbox.dir("yarn-made"), { name: "yarn-made", version: "1.0.0" });
    await sandbox.writeYarnrc(dir);
    const prepare = await sandbox.yarn(["install"], dir);
    expect(prepare.code, prepare.output).toBe(0);
    const publish = await sandbox.yarn(["npm", "publish"], dir);
    expect(publish.code, publish.output).toBe(0);
    expect(publish.output).toContain("Package archive published");
    expect(await versionsOf("yarn-made")).toEqual(["1.0.0"]);
    const whoami = await sandbox.yarn(["npm", "whoami"], dir);
    expect(whoami.output).toContain("yarn-user");

    const project = await sandbox.project("yarn-app", { "@acme/util": "^2.0.0", "yarn-made": "1.0.0" });
    await sandbox.writeYarnrc(project);
    const install = await sandbox.yarn(["install"], project);
    expect(install.code, install.output).toBe(0);
    for (const locator of ["@acme/util@npm:2.1.0", "base-lib@npm:1.3.0", "yarn-made@npm:1.0.0"]) {
      expect(install.output).toContain(locator);
    }
    expect(await installedVersion(project, "@acme/util")).toBe("2.1.0");
    expect(await installedVersion(project, "base-lib")).toBe("1.3.0");
  });
});

describe("bun", () => {
  it("publishes and installs", async () => {
    await using sandbox = await userSandbox(registry.url, "bun-user");
    const dir = await writePackage(await sandbox.dir("bun-made"), { name: "bun-made", version: "1.0.0" });
    await sandbox.writeBunfig(dir);
    const publish = await sandbox.bun(["publish"], dir);
    expect(publish.code, publish.output).toBe(0);
    expect(publish.output).toContain("+ bun-made@1.0.0");
    expect(await versionsOf("bun-made")).toEqual(["1.0.0"]);

    const project = await sandbox.project("bun-app", { "@acme/util": "^2.0.0", "bun-made": "1.0.0" });
    await sandbox.writeBunfig(project);
    const install = await sandbox.bun(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(install.output).toContain("+ @acme/util@2.1.0");
    expect(install.output).toContain("3 packages installed");
    expect(await installedVersion(project, "@acme/util")).toBe("2.1.0");
    expect(await installedVersion(project, "base-lib")).toBe("1.3.0");
  });
});
