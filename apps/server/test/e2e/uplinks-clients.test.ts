/**
 * Real npm, pnpm, yarn 4 and bun installs through fw of a tree that mixes private packages (hosted here)
 * and public ones proxied from a second fw instance, the uplink. The uplink also carries an attacker's
 * "higher versions" of the private names, which must never be installed.
 */
import { copyFile, readFile } from "node:fs/promises";
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

/** The attacker's versions of the private names, published on the uplink. */
const confusions = [
  ["@acme/lib", "9.9.9"],
  ["internal-tool", "99.0.0"],
] as const;

/**
 * A fresh checkout of `project` (package.json and the `files` next to it, lockfile included), as CI
 * would see it: no node_modules, no caches.
 */
async function checkoutOf(project: string, name: string, files: string[]): Promise<string> {
  const checkout = await alice.dir(name);
  for (const file of ["package.json", ...files]) await copyFile(join(project, file), join(checkout, file));
  return checkout;
}

/** The `resolution:` of every entry of a yarn.lock, sorted. */
function yarnResolutions(lock: string): string[] {
  return [...lock.matchAll(/^ {2}resolution: "(.+)"$/gm)].map((match) => match[1] ?? "").sort();
}

/** bun.lock's `packages`: name → [name@version, tarball URL, metadata, integrity]. */
function bunLockPackages(lock: string): Record<string, [string, string, unknown, string]> {
  // bun.lock is JSON with trailing commas.
  const json = JSON.parse(lock.replace(/,(\s*[}\]])/g, "$1")) as {
    packages: Record<string, [string, string, unknown, string]>;
  };
  return json.packages;
}

/** `dist.integrity` of `name@version` as the registry at `url` serves it. */
async function integrityOf(url: string, id: string, token?: string): Promise<string> {
  const at = id.lastIndexOf("@");
  const response = await fetch(`${url}/${id.slice(0, at).replace("/", "%2f")}/${id.slice(at + 1)}`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  expect(response.status, id).toBe(200);
  return ((await response.json()) as { dist: { integrity: string } }).dist.integrity;
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

  it("yarn 4 installs the same tree, and again from its lockfile with --immutable", async () => {
    const project = await alice.project("yarn-mixed", tree);
    await alice.writeYarnrc(project);
    const install = await alice.yarn(["install"], project);
    expect(install.code, install.output).toBe(0);
    await expectTree(project, () => project);
    const lock = await readFile(join(project, "yarn.lock"), "utf8");
    expect(yarnResolutions(lock)).toEqual([
      "@acme/lib@npm:1.0.0",
      "internal-tool@npm:1.0.0",
      "pub-a@npm:1.2.0",
      "pub-b@npm:2.0.0",
      "yarn-mixed@workspace:.",
    ]);

    // A fresh checkout on a machine with empty caches: every tarball comes from fw again, and must
    // match the checksums yarn wrote the first time.
    const checkout = await checkoutOf(project, "yarn-mixed-checkout", [".yarnrc.yml", "yarn.lock"]);
    const again = await alice.yarn(["install", "--immutable"], checkout, {
      env: await alice.freshCachesEnv("yarn-fresh-caches"),
    });
    expect(again.code, again.output).toBe(0);
    await expectTree(checkout, () => checkout);
    expect(await readFile(join(checkout, "yarn.lock"), "utf8")).toBe(lock);
  });

  it("yarn 4 never adds the uplink's higher version of a private name", async () => {
    for (const [index, [name, version]] of confusions.entries()) {
      const project = await alice.project(`yarn-confused-${index}`);
      await alice.writeYarnrc(project);
      const add = await alice.yarn(["add", `${name}@${version}`], project);
      expect(add.code, add.output).not.toBe(0);
      expect(add.output).toContain(`${name}@npm:${version}: No candidates found`);
    }
  });

  it("bun installs the same tree, and again from its lockfile with --frozen-lockfile", async () => {
    const project = await alice.project("bun-mixed", tree);
    await alice.writeBunfig(project);
    const install = await alice.bun(["install"], project);
    expect(install.code, install.output).toBe(0);
    await expectTree(project, () => project);
    const lockText = await readFile(join(project, "bun.lock"), "utf8");
    const lock = bunLockPackages(lockText);
    expect(Object.fromEntries(Object.entries(lock).map(([key, [id]]) => [key, id]))).toEqual({
      "@acme/lib": "@acme/lib@1.0.0",
      "internal-tool": "internal-tool@1.0.0",
      "pub-a": "pub-a@1.2.0",
      "pub-b": "pub-b@2.0.0",
    });
    for (const [id, tarball, , integrity] of Object.values(lock)) {
      expect(tarball, id).toMatch(new RegExp(`^${registry.url}/`));
      // The public packages' bytes are the uplink's own.
      const source = id.startsWith("pub-") ? await integrityOf(upstream.url, id) : undefined;
      expect(integrity, id).toBe(source ?? (await integrityOf(registry.url, id, alice.authToken)));
    }

    const checkout = await checkoutOf(project, "bun-mixed-checkout", ["bunfig.toml", "bun.lock"]);
    const again = await alice.bun(["install", "--frozen-lockfile"], checkout, {
      env: await alice.freshCachesEnv("bun-fresh-caches"),
    });
    expect(again.code, again.output).toBe(0);
    await expectTree(checkout, () => checkout);
    expect(await readFile(join(checkout, "bun.lock"), "utf8")).toBe(lockText);
  });

  it("bun never adds the uplink's higher version of a private name", async () => {
    for (const [index, [name, version]] of confusions.entries()) {
      const project = await alice.project(`bun-confused-${index}`);
      await alice.writeBunfig(project);
      const add = await alice.bun(["add", `${name}@${version}`], project);
      expect(add.code, add.output).not.toBe(0);
      expect(add.output).toContain(`No version matching "${version}" found for specifier "${name}"`);
    }
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
      env: await alice.freshCachesEnv("npm-fresh-caches"),
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
