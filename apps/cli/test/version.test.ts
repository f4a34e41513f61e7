import { fileURLToPath } from "node:url";
import { tempDir } from "@fw/tooling/test";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, requireBuilt, runFw } from "./helpers.js";

beforeAll(requireBuilt);

const widget = fileURLToPath(
  new URL("../../../packages/semver-graph/test/fixtures/widget.generated.json", import.meta.url),
);

async function fw(args: string[], env: Record<string, string> = {}) {
  await using dir = await tempDir();
  return await runFw(args, { cwd: dir.path, env: cleanEnv(env) });
}

describe("fw version parse / compare / recommend", () => {
  it("parses a version, and fails in one line on something else", async () => {
    expect(await fw(["version", "parse", "2.0.0-rc.1+build.7"])).toMatchObject({
      code: 0,
      stdout:
        "2.0.0-rc.1\n  major       2\n  minor       0\n  patch       0\n  prerelease  rc.1\n  build       build.7\n",
    });
    const json = await fw(["version", "parse", "1.2.3", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual({
      valid: true,
      version: "1.2.3",
      parsed: { major: 1, minor: 2, patch: 3, prerelease: [], build: [] },
    });
    const bad = await fw(["version", "parse", "1.2"]);
    expect(bad).toMatchObject({
      code: 1,
      stdout: "",
      stderr: 'fw: "1.2" is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-beta.1)\n',
    });
    const badJson = await fw(["version", "parse", "1.2", "--json"]);
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.stdout)).toMatchObject({ valid: false, parsed: null });
  });

  it("compares two versions", async () => {
    expect((await fw(["version", "compare", "1.2.3", "1.3.0"])).stdout).toBe("1.2.3 < 1.3.0 (minor)\n");
    expect((await fw(["version", "compare", "2.0.0", "2.0.0-rc.1"])).stdout).toBe("2.0.0 > 2.0.0-rc.1 (major)\n");
    expect((await fw(["version", "compare", "1.0.0+a", "1.0.0+b"])).stdout).toBe("1.0.0+a = 1.0.0+b\n");
    expect(JSON.parse((await fw(["version", "compare", "1.2.3", "1.2.4", "--json"])).stdout)).toEqual({
      a: "1.2.3",
      b: "1.2.4",
      result: -1,
      diff: "patch",
    });
    expect((await fw(["version", "compare", "1.2.3", "x"])).stderr).toBe(
      'fw: "x" is not a semantic version (expected MAJOR.MINOR.PATCH, e.g. 1.2.3 or 1.2.3-beta.1)\n',
    );
  });

  it("recommends the next version, pre-releases with --preid", async () => {
    expect((await fw(["version", "recommend", "1.4.2", "minor"])).stdout).toBe("1.5.0\n");
    expect((await fw(["version", "recommend", "1.4.2", "premajor", "--preid", "beta"])).stdout).toBe("2.0.0-beta.0\n");
    expect((await fw(["version", "recommend", "2.0.0-beta.0", "prerelease", "--preid=beta"])).stdout).toBe(
      "2.0.0-beta.1\n",
    );
    expect(JSON.parse((await fw(["version", "recommend", "2.0.0-rc.3", "--json"])).stdout)).toEqual({
      version: "2.0.0-rc.3",
      preid: null,
      next: {
        major: "2.0.0",
        minor: "2.0.0",
        patch: "2.0.0",
        premajor: "3.0.0-0",
        preminor: "2.1.0-0",
        prepatch: "2.0.1-0",
        prerelease: "2.0.0-rc.4",
        release: "2.0.0",
      },
    });
    const table = await fw(["version", "recommend", "1.0.0"]);
    expect(table.stdout.split("\n")[0]).toBe("major       2.0.0");
    expect((await fw(["version", "recommend", "1.0.0", "giant"])).stderr).toMatch(
      /^fw: "giant" is not a release type; use one of major, minor, patch/,
    );
  });
});

describe("fw version graph from a packument file", () => {
  it("draws every format, without colour in a pipe", async () => {
    const ascii = await fw(["version", "graph", widget, "--width", "100"], { FORCE_COLOR: "" });
    expect(ascii.code).toBe(0);
    expect(ascii.stdout.split("\n").slice(0, 4)).toEqual([
      "@fixtures/widget",
      "==================================================",
      "22 versions · latest 2.3.2 · 4 other lanes",
      "",
    ]);
    expect(ascii.stdout).toContain("├── v2.3.2          [Current]         2023-01-25  alice  latest\n");
    expect(ascii.stdout).not.toContain("\u001b[");
    const forced = await fw(["version", "graph", widget], { FORCE_COLOR: "1" });
    expect(forced.stdout).toContain("\u001b[");
    const noColor = await fw(["version", "graph", widget], { FORCE_COLOR: "1", NO_COLOR: "1" });
    expect(noColor.stdout).not.toContain("\u001b[");

    expect((await fw(["version", "graph", widget, "mermaid"])).stdout).toMatch(/^flowchart TD\n {2}subgraph lane_main/);
    expect((await fw(["version", "graph", widget, "svg"])).stdout).toMatch(
      /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/,
    );
    const d3 = JSON.parse((await fw(["version", "graph", widget, "json"])).stdout) as {
      nodes: unknown[];
      links: unknown[];
    };
    expect(d3.nodes).toHaveLength(22);
    expect(d3.links).toHaveLength(21);
    const window = JSON.parse((await fw(["version", "graph", widget, "--json", "--window", "1"])).stdout) as {
      nodes: { id: string; status: string }[];
    };
    expect(window.nodes.filter((node) => node.status === "rollback").map((node) => node.id)).toEqual(["2.3.0"]);
  });

  it("says what is wrong with the input in one line", async () => {
    expect((await fw(["version", "graph", widget, "png"])).stderr).toBe(
      'fw: unknown format "png"; use one of ascii, mermaid, json, svg\n',
    );
    expect((await fw(["version", "graph", "./missing.json"])).stderr).toBe("fw: cannot read ./missing.json: ENOENT\n");
    expect((await fw(["version", "graph", widget, "--width", "wide"])).stderr).toBe(
      'fw: --width must be a whole number, not "wide"\n',
    );
    expect((await fw(["version"])).stderr).toBe(
      'fw: "fw version" needs a command: parse, compare, recommend, graph, rollback\n',
    );
  });
});
