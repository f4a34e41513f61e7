import { createHash, randomBytes } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "../helpers/clients.js";
import { installedVersion } from "../helpers/core-suite.js";
import { publishBody, writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
let alice: Sandbox;

beforeAll(async () => {
  registry = await startTestRegistry();
  alice = await userSandbox(registry.url, "alice");
});

afterAll(async () => {
  await alice?.[Symbol.asyncDispose]();
  await registry?.close();
  expect(registry?.errors ?? []).toEqual([]);
});

async function publish(sandbox: Sandbox, spec: Parameters<typeof writePackage>[1], args: string[] = []) {
  const dir = await writePackage(await sandbox.dir(`src-${spec.name.replace("/", "+")}-${spec.version}`), spec);
  const result = await sandbox.npm(["publish", ...args], dir);
  expect(result.code, result.output).toBe(0);
  expect(result.stdout).toContain(`+ ${spec.name}@${spec.version}`);
  return dir;
}

async function packument(name: string): Promise<Record<string, unknown>> {
  const response = await fetch(`${registry.url}/${name.replace("/", "%2f")}`);
  expect(response.status).toBe(200);
  return (await response.json()) as Record<string, unknown>;
}

describe("publish", () => {
  it("publishes unscoped and scoped packages that npm view then shows with their maintainer", async () => {
    await publish(alice, { name: "plain-pkg", version: "1.0.0", manifest: { keywords: ["fw-e2e"] } });
    await publish(alice, { name: "@acme/scoped-pkg", version: "0.1.0" });

    const plain = await alice.npm(["view", "plain-pkg"]);
    expect(plain.code, plain.output).toBe(0);
    expect(plain.stdout).toContain("plain-pkg@1.0.0");
    expect(plain.stdout).toContain("- alice <alice@example.com>");
    expect(plain.stdout).not.toContain("undefined");

    const scoped = await alice.npm(["view", "@acme/scoped-pkg", "version"]);
    expect(scoped.stdout.trim()).toBe("0.1.0");
    const project = await alice.project("scoped-install", { "@acme/scoped-pkg": "^0.1.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(await installedVersion(project, "@acme/scoped-pkg")).toBe("0.1.0");

    // Scoped names travel as @acme%2fscoped-pkg in these commands' URLs.
    await publish(alice, { name: "@acme/scoped-pkg", version: "0.2.0-rc.1" }, ["--tag", "next"]);
    const tag = await alice.npm(["dist-tag", "add", "@acme/scoped-pkg@0.1.0", "stable"]);
    expect(tag.code, tag.output).toBe(0);
    const tags = await alice.npm(["dist-tag", "ls", "@acme/scoped-pkg"]);
    expect(tags.stdout.split("\n").filter(Boolean).sort()).toEqual([
      "latest: 0.1.0",
      "next: 0.2.0-rc.1",
      "stable: 0.1.0",
    ]);
    const deprecate = await alice.npm(["deprecate", "@acme/scoped-pkg@0.1.0", "scoped is old"]);
    expect(deprecate.code, deprecate.output).toBe(0);
    const warned = await alice.npm(["install", "@acme/scoped-pkg@stable"], await alice.project("scoped-deprecated"));
    expect(warned.code, warned.output).toBe(0);
    expect(warned.output).toContain("npm warn deprecated @acme/scoped-pkg@0.1.0: scoped is old");
  });

  it("refuses to publish a version twice, through npm and through raw HTTP, keeping the first", async () => {
    const dir = await publish(alice, { name: "dup-pkg", version: "1.0.0" });
    const before = await packument("dup-pkg");

    await writeFile(join(dir, "index.js"), "module.exports = 'changed';\n");
    const again = await alice.npm(["publish"], dir);
    expect(again.code).not.toBe(0);
    expect(again.output).toContain("You cannot publish over the previously published versions: 1.0.0.");

    // npm may refuse some of these on its own; the registry must refuse them too.
    const raw = await fetch(`${registry.url}/dup-pkg`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${alice.authToken}` },
      body: JSON.stringify(
        publishBody(registry.url, { name: "dup-pkg", version: "1.0.0", manifest: { description: "second" } }),
      ),
    });
    expect(raw.status).toBe(409);
    expect(await raw.json()).toEqual({ error: "cannot publish over the previously published version dup-pkg@1.0.0" });

    expect(await packument("dup-pkg")).toEqual(before);
  });

  it("publishes and installs a 20 MB tarball intact", async () => {
    const blob = randomBytes(20 * 1024 * 1024);
    await publish(alice, { name: "big-pkg", version: "1.0.0", files: { "blob.bin": blob } });
    const project = await alice.project("big-install", { "big-pkg": "1.0.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    const installed = await readFile(join(project, "node_modules/big-pkg/blob.bin"));
    expect(createHash("sha256").update(installed).digest("hex")).toBe(createHash("sha256").update(blob).digest("hex"));
  });
});

describe("install", () => {
  beforeAll(async () => {
    await publish(alice, { name: "leaf-pkg", version: "1.0.0" });
    await publish(alice, { name: "leaf-pkg", version: "1.2.0" });
    await publish(alice, { name: "mid-pkg", version: "2.0.0", dependencies: { "leaf-pkg": "^1.0.0" } });
    await publish(alice, { name: "top-pkg", version: "3.0.0", dependencies: { "mid-pkg": "~2.0.0" } });
  });

  it("installs dependencies of dependencies, and the code runs", async () => {
    const project = await alice.project("transitive", { "top-pkg": "^3.0.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(install.stdout).toContain("added 3 packages");
    expect(await installedVersion(project, "mid-pkg")).toBe("2.0.0");
    expect(await installedVersion(project, "leaf-pkg")).toBe("1.2.0");
    const ran = await alice.npm(["exec", "--", "node", "-p", "require('leaf-pkg')"], project);
    expect(ran.stdout.trim()).toBe("leaf-pkg@1.2.0");
  });

  it("npm ci installs from the lockfile and refuses a tarball whose integrity does not match it", async () => {
    const project = await alice.project("ci", { "mid-pkg": "2.0.0" });
    expect((await alice.npm(["install"], project)).code).toBe(0);
    const lock = JSON.parse(await readFile(join(project, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version: string; integrity: string }>;
    };
    const leaf = (await packument("leaf-pkg")) as { versions: Record<string, { dist: { integrity: string } }> };
    expect(lock.packages["node_modules/leaf-pkg"]?.integrity).toBe(leaf.versions["1.2.0"]?.dist.integrity);

    await rm(join(project, "node_modules"), { recursive: true });
    const ci = await alice.npm(["ci", "--cache", join(alice.root, "ci-cache")], project);
    expect(ci.code, ci.output).toBe(0);
    expect(await installedVersion(project, "leaf-pkg")).toBe("1.2.0");

    // A lockfile that names other bytes than the registry serves must fail, not install.
    const other = leaf.versions["1.0.0"]?.dist.integrity as string;
    (lock.packages["node_modules/leaf-pkg"] as { integrity: string }).integrity = other;
    await writeFile(join(project, "package-lock.json"), JSON.stringify(lock, null, 2));
    await rm(join(project, "node_modules"), { recursive: true });
    const tampered = await alice.npm(["ci", "--cache", join(alice.root, "ci-cache-2"), "--fetch-retries=0"], project);
    expect(tampered.code).not.toBe(0);
    expect(tampered.output).toContain("EINTEGRITY");
  });

  it("shows the deprecation message when installing a deprecated version", async () => {
    const deprecate = await alice.npm(["deprecate", "leaf-pkg@1.0.0", "leaf 1.0.0 is broken, use 1.2.0"]);
    expect(deprecate.code, deprecate.output).toBe(0);
    const project = await alice.project("deprecated", { "leaf-pkg": "1.0.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(install.output).toContain("npm warn deprecated leaf-pkg@1.0.0: leaf 1.0.0 is broken, use 1.2.0");

    const fine = await alice.npm(["install", "leaf-pkg@1.2.0"], await alice.project("not-deprecated"));
    expect(fine.output).not.toContain("deprecated");

    expect((await alice.npm(["deprecate", "leaf-pkg@1.0.0", ""])).code).toBe(0);
    const undeprecated = await alice.npm(["install"], await alice.project("undeprecated", { "leaf-pkg": "1.0.0" }));
    expect(undeprecated.output).not.toContain("deprecated");
  });

  it("answers 404 for packages, versions and tarballs that do not exist", async () => {
    const project = await alice.project("missing");
    const pkg = await alice.npm(["install", "no-such-pkg"], project);
    expect(pkg.code).not.toBe(0);
    expect(pkg.output).toContain("npm error 404 Not Found - GET");
    expect(pkg.output).toContain('no-such-pkg - package "no-such-pkg" not found');

    const scoped = await alice.npm(["install", "@acme/no-such-pkg"], project);
    expect(scoped.code).not.toBe(0);
    expect(scoped.output).toContain("E404");

    const version = await alice.npm(["install", "leaf-pkg@9.9.9"], project);
    expect(version.code).not.toBe(0);
    expect(version.output).toContain("No matching version found for leaf-pkg@9.9.9");

    for (const path of ["/no-such-pkg", "/leaf-pkg/9.9.9", "/leaf-pkg/-/leaf-pkg-9.9.9.tgz", "/@acme%2fno-such-pkg"]) {
      const response = await fetch(`${registry.url}${path}`);
      expect(response.status, path).toBe(404);
      expect(response.headers.get("content-type")).toBe("application/json");
      expect(Object.keys((await response.json()) as object)).toEqual(["error"]);
    }
  });
});

describe("search and stars", () => {
  it("npm search finds a package by name, keyword and description", async () => {
    await publish(alice, {
      name: "findable-widget",
      version: "1.0.0",
      manifest: { description: "a very discoverable gizmo", keywords: ["sprocket"] },
    });
    for (const query of ["findable-widget", "sprocket", "gizmo"]) {
      const search = await alice.npm(["search", "--json", query]);
      expect(search.code, search.output).toBe(0);
      const names = (JSON.parse(search.stdout) as Array<{ name: string }>).map((hit) => hit.name);
      expect(names, query).toContain("findable-widget");
    }
    const text = await alice.npm(["search", "sprocket"]);
    expect(text.stdout).toContain("findable-widget");
    expect(text.stdout).toContain("a very discoverable gizmo");
    const none = await alice.npm(["search", "zzzqqqxxx"]);
    expect(none.stdout).toContain("No matches found");
  });

  it("npm star, stars and unstar", async () => {
    await publish(alice, { name: "starry-pkg", version: "1.0.0" });
    const star = await alice.npm(["star", "starry-pkg"]);
    expect(star.code, star.output).toBe(0);
    expect(star.stdout).toContain("★  starry-pkg");
    expect((await packument("starry-pkg")).users).toEqual({ alice: true });

    const stars = await alice.npm(["stars"]);
    expect(stars.code, stars.output).toBe(0);
    expect(stars.stdout).toContain("starry-pkg");

    const unstar = await alice.npm(["unstar", "starry-pkg"]);
    expect(unstar.code, unstar.output).toBe(0);
    expect(unstar.stdout).toContain("☆  starry-pkg");
    expect((await packument("starry-pkg")).users ?? {}).toEqual({});
  });

  it("npm audit gets a clean report from the audit endpoints, gzip body and all", async () => {
    await publish(alice, { name: "audited-pkg", version: "1.0.0" });
    const project = await alice.project("audited", { "audited-pkg": "^1.0.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    const audit = await alice.npm(["audit", "--json", "--audit=true"], project);
    expect(audit.code, audit.output).toBe(0);
    const report = JSON.parse(audit.stdout) as { vulnerabilities: Record<string, unknown>; metadata: unknown };
    expect(report.vulnerabilities).toEqual({});
    const text = await alice.npm(["audit", "--audit=true"], project);
    expect(text.code, text.output).toBe(0);
    expect(text.stdout).toContain("found 0 vulnerabilities");
  });
});
