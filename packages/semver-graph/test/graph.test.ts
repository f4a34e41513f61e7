import { describe, expect, it } from "vitest";
import { buildVersionGraph, findNode, planRollback, rollbackTargets } from "../src/index.js";
import { fixture } from "./fixtures.js";
import { syntheticPackument } from "./synthetic.js";

describe("buildVersionGraph on a real packument (widget)", () => {
  const graph = buildVersionGraph(fixture("widget"));

  it("gives every version, unpublished ones too, a status by the documented rule", () => {
    expect(graph.current).toBe("2.3.2");
    expect(Object.fromEntries(graph.nodes.map((node) => [node.version, node.status]))).toEqual({
      "1.0.0": "archived",
      "1.0.1": "archived",
      "1.1.0": "archived",
      "1.1.1": "deprecated",
      "1.2.0": "archived",
      "1.2.1": "archived",
      "1.2.2": "archived",
      "1.2.3": "archived",
      "2.0.0-beta.0": "prerelease",
      "2.0.0-beta.1": "prerelease",
      "2.0.0-rc.0": "prerelease",
      "2.0.0": "archived",
      "2.0.1": "archived",
      "2.1.0": "archived",
      "2.1.1": "archived",
      "2.1.2": "rollback",
      "2.2.0": "deprecated",
      "2.2.1": "rollback",
      "2.3.0": "rollback",
      "2.3.1": "unpublished",
      "2.3.2": "current",
      "3.0.0-alpha.0": "prerelease",
    });
  });

  it("keeps publish facts, tags and deprecation messages", () => {
    expect(findNode(graph, "2.3.2")).toMatchObject({
      published: "2023-01-25T03:00:00.000Z",
      publisher: "alice",
      tags: ["latest"],
      deprecated: null,
      lane: "main",
      parent: "2.3.1",
      edge: "patch",
    });
    expect(findNode(graph, "2.2.0")?.deprecated).toBe("leaks file handles; use 2.2.1");
    expect(findNode(graph, "1.2.3")).toMatchObject({ tags: ["legacy"], publisher: "bob" });
    expect(findNode(graph, "2.3.1")).toMatchObject({ publisher: null, tags: [] });
  });

  it("draws maintenance and pre-release lines as their own lanes", () => {
    expect(graph.lanes.map((lane) => [lane.id, lane.kind, lane.branchFrom, lane.versions])).toEqual([
      [
        "main",
        "main",
        null,
        [
          "1.0.0",
          "1.0.1",
          "1.1.0",
          "1.1.1",
          "1.2.0",
          "1.2.1",
          "2.0.0",
          "2.0.1",
          "2.1.0",
          "2.1.1",
          "2.2.0",
          "2.2.1",
          "2.3.0",
          "2.3.1",
          "2.3.2",
        ],
      ],
      ["2.0.0-pre", "prerelease", "1.2.0", ["2.0.0-beta.0", "2.0.0-beta.1", "2.0.0-rc.0"]],
      ["1.x", "maintenance", "1.2.1", ["1.2.2", "1.2.3"]],
      ["2.1.x", "maintenance", "2.1.1", ["2.1.2"]],
      ["3.0.0-pre", "prerelease", "2.3.1", ["3.0.0-alpha.0"]],
    ]);
    expect(graph.lanes.map((lane) => lane.label)).toEqual([
      "main",
      "2.0.0 pre-releases",
      "1.x maintenance",
      "2.1.x maintenance",
      "3.0.0 pre-releases",
    ]);
  });

  it("types each edge from the version it grew from", () => {
    const edges = Object.fromEntries(graph.edges.map((edge) => [edge.to, `${edge.from} ${edge.type}`]));
    expect(edges).toMatchObject({
      "1.0.1": "1.0.0 patch",
      "1.1.0": "1.0.1 minor",
      "2.0.0-beta.0": "1.2.0 prerelease",
      "2.0.0-beta.1": "2.0.0-beta.0 prerelease",
      "1.2.1": "1.2.0 patch",
      "2.0.0": "2.0.0-rc.0 major",
      "1.2.2": "1.2.1 patch",
      "1.2.3": "1.2.2 patch",
      "2.1.2": "2.1.1 patch",
      "2.2.1": "2.2.0 patch",
    });
    expect(graph.edges).toHaveLength(graph.nodes.length - 1);
    expect(findNode(graph, "1.0.0")).toMatchObject({ parent: null, edge: null });
  });

  it("lists the Rollback Ready versions for any version", () => {
    expect(rollbackTargets(graph, "2.3.2").map((node) => node.version)).toEqual(["2.3.0", "2.2.1", "2.1.2"]);
    expect(rollbackTargets(graph, "2.3.2", 5).map((node) => node.version)).toEqual([
      "2.3.0",
      "2.2.1",
      "2.1.2",
      "2.1.1",
      "2.1.0",
    ]);
    expect(rollbackTargets(graph, "2.0.0-rc.0").map((node) => node.version)).toEqual([
      "2.0.0-beta.1",
      "2.0.0-beta.0",
      "1.2.3",
    ]);
  });
});

describe("buildVersionGraph on other documents", () => {
  it("reads a 137-version history into main, 2 maintenance and 3 pre-release lanes", () => {
    const graph = buildVersionGraph(fixture("many-versions"));
    expect(graph.nodes).toHaveLength(137);
    expect(graph.lanes.map((lane) => `${lane.id}:${lane.versions.length}<${lane.branchFrom}`)).toEqual([
      "main:119<null",
      "1.0.0-pre:3<0.6.4",
      "2.0.0-pre:4<1.9.2",
      "1.x:4<1.9.2",
      "2.2.x:1<2.2.7",
      "3.0.0-pre:6<2.3.7",
    ]);
    expect(graph.nodes.filter((node) => node.status === "deprecated")).toHaveLength(30);
  });

  it("orders by semver when there are no times (an abbreviated packument)", () => {
    const graph = buildVersionGraph({
      name: "abbrev",
      "dist-tags": { latest: "1.1.0" },
      versions: { "1.1.0": {}, "1.0.0": {}, "0.9.0": {}, "1.2.0-rc.0": {} },
    });
    expect(graph.nodes.map((node) => [node.version, node.lane, node.parent, node.published])).toEqual([
      ["0.9.0", "main", null, null],
      ["1.0.0", "main", "0.9.0", null],
      ["1.1.0", "main", "1.0.0", null],
      ["1.2.0-rc.0", "1.2.0-pre", "1.1.0", null],
    ]);
    expect(graph.nodes.map((node) => node.status)).toEqual(["rollback", "rollback", "current", "prerelease"]);
  });

  it("leaves out keys that are not versions and copes with an empty document", () => {
    const graph = buildVersionGraph({
      name: "odd",
      versions: { "1.0.0": {}, "v2.0.0": {}, banana: {} },
      time: { created: "2024-01-01T00:00:00.000Z", modified: "x", "1.0.0": "2024-01-01T00:00:00.000Z" },
    });
    expect(graph.ignored).toEqual(["v2.0.0", "banana"]);
    expect(graph.current).toBeNull();
    expect(graph.nodes.map((node) => node.status)).toEqual(["archived"]);
    expect(buildVersionGraph({ name: "empty" })).toMatchObject({ nodes: [], edges: [], lanes: [], current: null });
  });

  it("builds a 3,000-version history with one edge per version after the first", () => {
    const graph = buildVersionGraph(syntheticPackument("big", 3000));
    expect(graph.nodes).toHaveLength(3000);
    expect(graph.edges).toHaveLength(2999);
    expect(graph.nodes.filter((node) => node.status === "current")).toHaveLength(1);
    expect(graph.nodes.filter((node) => node.status === "rollback")).toHaveLength(3);
  });
});

describe("planRollback", () => {
  const graph = buildVersionGraph(fixture("widget"));
  const codes = (version: string, tag?: string) =>
    planRollback(graph, version, tag === undefined ? {} : { tag }).problems.map(
      (p) => `${p.code}${p.forceable ? "" : "!"}`,
    );

  it("accepts a Rollback Ready target and says what moves", () => {
    expect(planRollback(graph, "2.2.1")).toMatchObject({
      name: "@fixtures/widget",
      tag: "latest",
      from: "2.3.2",
      to: "2.2.1",
      changed: true,
      targets: ["2.3.0", "2.2.1", "2.1.2"],
      problems: [],
    });
    expect(planRollback(graph, "2.3.2")).toMatchObject({ changed: false, problems: [] });
  });

  it("refuses the rest, with --force only where a tag could point", () => {
    expect(codes("2.3.1")).toEqual(["E_UNPUBLISHED!"]);
    expect(codes("9.9.9")).toEqual(["E_NOT_FOUND!"]);
    expect(codes("^2.0.0")).toEqual(["E_INVALID_VERSION!"]);
    expect(codes("2.2.0")).toEqual(["E_DEPRECATED"]);
    expect(codes("3.0.0-alpha.0")).toEqual(["E_PRERELEASE", "E_NOT_EARLIER"]);
    expect(codes("2.0.0-rc.0")).toEqual(["E_PRERELEASE"]);
    expect(codes("2.1.1")).toEqual(["E_OUTSIDE_WINDOW"]);
    expect(codes("2.0.0", "nightly")).toEqual(["E_NO_TAG"]);
    expect(codes("2.0.0-beta.1", "next")).toEqual([]);
    expect(planRollback(graph, "2.1.1").problems[0]?.message).toBe(
      '2.1.1 is not Rollback Ready for "latest" (the 3 highest published, undeprecated versions below 2.3.2: 2.3.0, 2.2.1, 2.1.2)',
    );
  });
});
