import { describe, expect, it } from "vitest";
import type { Packument } from "../npm/packument.js";
import { SearchIndex } from "./search.js";

function doc(version: string, description: string, extra: Partial<Packument> = {}): Packument {
  return {
    _id: "widget",
    _rev: "1-a",
    name: "widget",
    "dist-tags": { latest: version },
    versions: {
      [version]: {
        name: "widget",
        version,
        description,
        keywords: ["gadget"],
        dist: { shasum: "", integrity: "", tarball: "" },
      },
    },
    time: { [version]: `2026-01-0${version.at(-1)}T00:00:00.000Z` },
    maintainers: [{ name: "alice" }],
    ...extra,
  };
}

const names = (index: SearchIndex, text: string) => index.search(text, 20, 0).objects.map((o) => o.package.name);

describe("SearchIndex", () => {
  it("shows a new version whose indexed text did not change, and re-indexes text that did", () => {
    const index = new SearchIndex();
    index.update(doc("1.0.1", "spins a wheel"));
    index.update(doc("1.0.2", "spins a wheel"));
    expect(index.search("wheel", 20, 0).objects.map((o) => [o.package.version, o.package.date])).toEqual([
      ["1.0.2", "2026-01-02T00:00:00.000Z"],
    ]);
    index.update(doc("1.0.3", "turns a crank"));
    expect(names(index, "wheel")).toEqual([]);
    expect(names(index, "crank")).toEqual(["widget"]);
    index.update(doc("1.0.4", "turns a crank", { maintainers: [{ name: "bob" }] }));
    expect(names(index, "alice")).toEqual([]);
    expect(names(index, "bob")).toEqual(["widget"]);
    expect(index.size).toBe(1);
  });

  it("removes a package that no longer has a latest version", () => {
    const index = new SearchIndex();
    index.update(doc("1.0.1", "spins a wheel"));
    index.update({ ...doc("1.0.1", "spins a wheel"), versions: {}, "dist-tags": {} });
    expect(names(index, "wheel")).toEqual([]);
    expect(index.size).toBe(0);
  });
});
