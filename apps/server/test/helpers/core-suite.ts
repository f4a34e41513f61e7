import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "./clients.js";
import { writePackage } from "./packages.js";
import type { TestRegistry } from "./registry.js";

/** What `require(name)` returns in an installed project: the fixture's index.js exports "name@version". */
export async function installedVersion(project: string, name: string): Promise<string> {
  const manifest = JSON.parse(await readFile(join(project, "node_modules", name, "package.json"), "utf8")) as {
    version: string;
  };
  return manifest.version;
}

/**
 * The scenarios every storage backend must pass with real npm: publish, install (version, range,
 * tag), dist-tags, unpublish, and concurrent publishes of one package.
 */
export function describeCoreSuite(label: string, start: () => Promise<TestRegistry>): void {
  describe(label, () => {
    let registry: TestRegistry;
    let alice: Sandbox;

    beforeAll(async () => {
      registry = await start();
      alice = await userSandbox(registry.url, "alice");
    });

    afterAll(async () => {
      await alice?.[Symbol.asyncDispose]();
      await registry?.close();
      expect(registry?.errors ?? []).toEqual([]);
    });

    async function publish(name: string, version: string, tag?: string) {
      const dir = await writePackage(await alice.dir(`src-${name.replace("/", "+")}-${version}`), { name, version });
      const result = await alice.npm(["publish", ...(tag ? ["--tag", tag] : [])], dir);
      expect(result.output, result.output).toContain(`+ ${name}@${version}`);
      expect(result.code).toBe(0);
    }

    it("npm publish, then npm install by exact version, range and tag", async () => {
      await publish("core-pkg", "1.0.0");
      await publish("core-pkg", "1.1.0");
      await publish("core-pkg", "2.0.0-beta.1", "next");

      const exact = await alice.project("exact", { "core-pkg": "1.0.0" });
      expect((await alice.npm(["install"], exact)).code).toBe(0);
      expect(await installedVersion(exact, "core-pkg")).toBe("1.0.0");

      const range = await alice.project("range", { "core-pkg": "^1.0.0" });
      expect((await alice.npm(["install"], range)).code).toBe(0);
      expect(await installedVersion(range, "core-pkg")).toBe("1.1.0");

      const tagged = await alice.project("tagged");
      const install = await alice.npm(["install", "core-pkg@next"], tagged);
      expect(install.code, install.output).toBe(0);
      expect(await installedVersion(tagged, "core-pkg")).toBe("2.0.0-beta.1");
    });

    it("npm dist-tag add, ls and rm change what a tag installs", async () => {
      await publish("core-tags", "1.0.0");
      await publish("core-tags", "1.1.0");

      const add = await alice.npm(["dist-tag", "add", "core-tags@1.0.0", "stable"]);
      expect(add.code, add.output).toBe(0);
      expect(add.stdout).toContain("+stable: core-tags@1.0.0");

      const ls = await alice.npm(["dist-tag", "ls", "core-tags"]);
      expect(ls.stdout.split("\n").sort().filter(Boolean)).toEqual(["latest: 1.1.0", "stable: 1.0.0"]);

      const project = await alice.project("by-tag");
      expect((await alice.npm(["install", "core-tags@stable"], project)).code).toBe(0);
      expect(await installedVersion(project, "core-tags")).toBe("1.0.0");

      const rm = await alice.npm(["dist-tag", "rm", "core-tags", "stable"]);
      expect(rm.code, rm.output).toBe(0);
      expect(rm.stdout).toContain("-stable: core-tags@1.0.0");
      expect((await alice.npm(["dist-tag", "ls", "core-tags"])).stdout.trim()).toBe("latest: 1.1.0");

      const gone = await alice.npm(["install", "core-tags@stable"], await alice.project("tag-gone"));
      expect(gone.code).not.toBe(0);
      expect(gone.output).toContain("No matching version found for core-tags@stable");
    });

    it("npm unpublish removes one version, then the whole package", async () => {
      await publish("core-gone", "1.0.0");
      await publish("core-gone", "1.0.1");

      const one = await alice.npm(["unpublish", "core-gone@1.0.1"]);
      expect(one.code, one.output).toBe(0);
      expect(one.stdout).toContain("- core-gone@1.0.1");
      const view = await alice.npm(["view", "core-gone", "versions", "--json"]);
      expect(JSON.parse(view.stdout)).toEqual(["1.0.0"]);
      const tarball = await fetch(`${registry.url}/core-gone/-/core-gone-1.0.1.tgz`);
      expect(tarball.status).toBe(404);

      const all = await alice.npm(["unpublish", "core-gone", "--force"]);
      expect(all.code, all.output).toBe(0);
      expect(all.stdout).toContain("- core-gone");
      const missing = await alice.npm(["view", "core-gone"]);
      expect(missing.code).not.toBe(0);
      expect(missing.output).toContain("E404");
      const install = await alice.npm(["install", "core-gone@1.0.0"], await alice.project("after-unpublish"));
      expect(install.code).not.toBe(0);
      expect(install.output).toContain("E404");

      // The version numbers stay used: publishing 1.0.0 again is refused, 1.0.2 is fine.
      const dir = await writePackage(await alice.dir("republish"), { name: "core-gone", version: "1.0.0" });
      const again = await alice.npm(["publish"], dir);
      expect(again.code).not.toBe(0);
      expect(again.output).toContain("cannot be reused");
      await publish("core-gone", "1.0.2");
    });

    it("10 parallel npm publishes of one package are all kept", async () => {
      const versions = Array.from({ length: 10 }, (_, i) => `3.0.${i}`);
      const dirs = await Promise.all(
        versions.map(async (version) =>
          writePackage(await alice.dir(`race-${version}`), { name: "core-race", version }),
        ),
      );
      // Distinct tags: npm 11 refuses to move `latest` to a lower version on its own.
      const results = await Promise.all(dirs.map((dir, i) => alice.npm(["publish", "--tag", `race-${i}`], dir)));
      for (const result of results) expect(result.code, result.output).toBe(0);

      const view = await alice.npm(["view", "core-race", "versions", "--json"]);
      expect(JSON.parse(view.stdout)).toEqual(versions);
      const tags = await alice.npm(["view", "core-race", "dist-tags", "--json"]);
      const expected = Object.fromEntries(versions.map((version, i) => [`race-${i}`, version]));
      expect(JSON.parse(tags.stdout)).toMatchObject(expected);
      const project = await alice.project("race-install", { "core-race": "3.0.7" });
      expect((await alice.npm(["install"], project)).code).toBe(0);
      expect(await installedVersion(project, "core-race")).toBe("3.0.7");
    });
  });
}
