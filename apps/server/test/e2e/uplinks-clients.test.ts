/**
 * Real npm and pnpm installs through fw of a tree that mixes private packages (hosted here) and public
 * ones proxied from a second fw instance, the uplink. The uplink also carries an attacker's "higher
 * versions" of the private names, which must never be installed.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "../helpers/clients.js";
import { installedVersion } from "../helpers/core-suite.js";
import { storageSnapshot } from "../helpers/http.js";
import { type PackageSpec, writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";
import { closeRegistry, startProxyRegistry, uplinkTo } from "../helpers/upstream.js";

let upstream: TestRegistry;
let registry: TestRegistry;
let author: Sandbox;
let alice: Sandbox;

async function publish(sandbox: Sandbox, spec: PackageSpec): Promise<void> {
  const dir = await writePackage(await sandbox.dir(`src-${spec.name.replace("/", "+")}-${spec.version}`), spec);
  const result = await sandbox.npm(["publish"], dir);
  expect(result.code, result.output).toBe(0);
}

beforeAll(async () => {
  upstream = await startTestRegistry();
  author = await userSandbox(upstream.url, "public-author");
  for (const spec of [
    { name: "pub-b", version: "2.0.0" },
    { name: "pub-a", version: "1.0.0" },
    { name: "pub-a", version: "1.2.0", dependencies: { "pub-b": "^2.0.0" } },
  ]) {
    await publish(author, spec);
  }

  // maxAge 0: every metadata request revalidates with the uplink, so its failure shows at once.
  registry = await startProxyRegistry(
    { uplink: (overrides) => uplinkTo(upstream.url, overrides) },
    {
      uplink: { maxAgeMs: 0, timeouts: { responseMs: 10_000, idleMs: 10_000, totalMs: 30_000 } },
      packages: {
        "@acme/*": { access: ["$authenticated"], publish: ["$authenticated"], proxy: [] },
        "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },
      },
    },
  );
  alice = await userSandbox(registry.url, "alice");
  await publish(alice, { name: "@acme/lib", version: "1.0.0", dependencies: { "pub-a": "^1.0.0" } });
  await publish(alice, { name: "internal-tool", version: "1.0.0" });

  // Then an attacker publishes the private names upstream, with higher versions.
  await publish(author, { name: "@acme/lib", version: "9.9.9" });
  await publish(author, { name: "internal-tool", version: "99.0.0" });
});

afterAll(async () => {
  await author?.[Symbol.asyncDispose]();
  await alice?.[Symbol.asyncDispose]();
  await closeRegistry(registry);
  await upstream?.close();
  expect(registry?.errors ?? []).toEqual([]);
});

const tree = { "@acme/lib": "*", "internal-tool": "*", "pub-a": "^1.0.0" };

async function expectTree(project: string, nested: (name: string) => string): Promise<void> {
  expect(await installedVersion(project, "@acme/lib")).toBe("1.0.0");
  expect(await installedVersion(project, "internal-tool")).toBe("1.0.0");
  expect(await installedVersion(project, "pub-a")).toBe("1.2.0");
  expect(await installedVersion(nested("pub-a"), "pub-b")).toBe("2.0.0");
  expect(await readFile(join(project, "node_modules/@acme/lib/index.js"), "utf8")).toContain('"@acme/lib@1.0.0"');
}

describe("installs through fw", () => {
  it("npm installs the private packages from fw and the public ones through the uplink", async () => {
    const project = await alice.project("npm-mixed", tree);
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    await expectTree(project, () => project);

    const lock = JSON.parse(await readFile(join(project, "package-lock.json"), "utf8")) as {
      packages: Record<string, { resolved?: string }>;
    };
    for (const [path, entry] of Object.entries(lock.packages)) {
      if (path) expect(entry.resolved, path).toMatch(new RegExp(`^${registry.url}/`));
    }
    const keys = (await storageSnapshot(registry.storage)).map((line) => line.split(" ")[0]);
    expect(keys).toContain("uplinks/public/packages/pub-a/-/pub-a-1.2.0.tgz");
    expect(keys).toContain("uplinks/public/packages/pub-b/-/pub-b-2.0.0.tgz");
    expect(keys.filter((key) => key?.includes("@acme") && key.startsWith("uplinks/"))).toEqual([]);
    expect(keys.filter((key) => key?.includes("internal-tool") && key.startsWith("uplinks/"))).toEqual([]);
  });

  it("the uplink's higher version of a private name is never installed, not even when asked for", async () => {
    const exact = await alice.npm(["install", "@acme/lib@9.9.9"], await alice.project("npm-confused"));
    expect(exact.code).not.toBe(0);
    expect(exact.output).toMatch(/No matching version found for @acme\/lib@9\.9\.9|ETARGET/);
    const hosted = await alice.npm(["install", "internal-tool@99.0.0"], await alice.project("npm-confused-2"));
    expect(hosted.code).not.toBe(0);
    const versions = await alice.npm(["view", "internal-tool", "versions", "--json"]);
    expect(JSON.parse(versions.stdout)).toEqual(["1.0.0"]);
  });

  it("pnpm installs the same tree", async () => {
    const project = await alice.project("pnpm-mixed", tree);
    const install = await alice.pnpm(["install"], project);
    expect(install.code, install.output).toBe(0);
    await expectTree(project, () => join(project, "node_modules/.pnpm/pub-a@1.2.0"));
    const lock = await readFile(join(project, "pnpm-lock.yaml"), "utf8");
    expect(lock).not.toContain("9.9.9");
    expect(lock).not.toContain("99.0.0");
  });

  it("npm audit is answered through the uplink", async () => {
    const project = await alice.project("npm-audit", tree);
    expect((await alice.npm(["install"], project)).code).toBe(0);
    const audit = await alice.npm(["audit"], project);
    expect(audit.code, audit.output).toBe(0);
    expect(audit.output).toContain("found 0 vulnerabilities");
  });

  it("with the uplink down, npm installs from fw's cached copies and prints fw's notice", async () => {
    await upstream.close();
    const project = await alice.project("npm-offline-upstream", tree);
    const install = await alice.npm(["install"], project, {
      // A fresh npm cache, so every document and tarball comes from fw.
      env: { ...alice.env, npm_config_cache: await alice.dir("fresh-npm-cache") },
    });
    expect(install.code, install.output).toBe(0);
    expect(install.output).toMatch(/npm notice .*was served from fw's cached copy/);
    await expectTree(project, () => project);

    // fw answers at once; npm itself retries a 502 twice over 70 s unless told not to.
    const started = Date.now();
    const unknown = await alice.npm(["view", "never-fetched-pkg", "--fetch-retries=0"]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(unknown.code).not.toBe(0);
    expect(unknown.output).toMatch(/502|upstream registry could not provide it/);
  });
});
