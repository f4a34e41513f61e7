import { describe, expect, it } from "vitest";
import {
  compareVersions,
  order,
  parseVersion,
  recommendAll,
  recommendNext,
  satisfies,
  versionDiff,
} from "./version.js";

describe("parseVersion", () => {
  it("splits a version into its parts", () => {
    expect(parseVersion("1.2.3")).toEqual({
      valid: true,
      version: "1.2.3",
      parsed: { major: 1, minor: 2, patch: 3, prerelease: [], build: [] },
    });
    expect(parseVersion("v2.0.0-beta.11+linux.x64")).toEqual({
      valid: true,
      version: "2.0.0-beta.11",
      parsed: { major: 2, minor: 0, patch: 0, prerelease: ["beta", 11], build: ["linux", "x64"] },
    });
  });

  it("says why a string is not a version instead of throwing", () => {
    for (const input of ["", "1.2", "1.2.3.4", "01.2.3", "1.2.3-", "latest", "^1.2.3"]) {
      const result = parseVersion(input);
      expect(result.valid, input).toBe(false);
      expect(result).toMatchObject({ version: null, parsed: null });
      if (!result.valid) expect(result.error).toContain(`"${input}" is not a semantic version`);
    }
  });
});

describe("compareVersions and order", () => {
  it("orders by semver precedence, pre-releases before their release, build ignored", () => {
    const sorted = [
      "1.0.0-alpha",
      "1.0.0-alpha.1",
      "1.0.0-alpha.beta",
      "1.0.0-beta",
      "1.0.0-beta.2",
      "1.0.0-beta.11",
      "1.0.0-rc.1",
      "1.0.0",
      "1.0.1",
      "1.10.0",
      "2.0.0",
    ];
    expect([...sorted].reverse().sort(compareVersions)).toEqual(sorted);
    expect(compareVersions("1.2.3", "1.2.4")).toBe(-1);
    expect(compareVersions("1.2.4", "1.2.3")).toBe(1);
    expect(compareVersions("1.0.0+a", "1.0.0+b")).toBe(0);
    expect(order("1.0.0-alpha.10", "1.0.0-alpha.9")).toBe(1);
  });

  it("throws a TypeError naming the bad argument", () => {
    expect(() => compareVersions("1.2.3", "one")).toThrow(TypeError);
    expect(() => order("garbage", "1.0.0")).toThrow('"garbage" is not a semantic version');
  });

  it("names the part that differs", () => {
    expect(versionDiff("1.2.3", "2.0.0")).toBe("major");
    expect(versionDiff("1.2.3", "1.3.0")).toBe("minor");
    expect(versionDiff("2.0.0-rc.1", "2.0.0")).toBe("major");
    expect(versionDiff("1.2.3", "1.2.3")).toBeNull();
  });
});

describe("recommendNext", () => {
  it.each([
    ["1.2.3", "major", {}, "2.0.0"],
    ["1.2.3", "minor", {}, "1.3.0"],
    ["1.2.3", "patch", {}, "1.2.4"],
    ["1.2.3", "premajor", { preid: "beta" }, "2.0.0-beta.0"],
    ["1.2.3", "preminor", { preid: "alpha" }, "1.3.0-alpha.0"],
    ["1.2.3", "prepatch", {}, "1.2.4-0"],
    ["1.2.3", "prerelease", { preid: "rc" }, "1.2.4-rc.0"],
    ["2.0.0-beta.3", "prerelease", { preid: "beta" }, "2.0.0-beta.4"],
    ["2.0.0-beta.3", "prerelease", { preid: "rc" }, "2.0.0-rc.0"],
    ["2.0.0-beta.3", "major", {}, "2.0.0"],
    ["1.2.3-rc.1", "patch", {}, "1.2.3"],
    ["1.2.3-rc.1", "release", {}, "1.2.3"],
    ["1.2.3", "premajor", { preid: "beta", identifierBase: "1" as const }, "2.0.0-beta.1"],
    ["1.2.3", "premajor", { preid: "beta", identifierBase: false as const }, "2.0.0-beta"],
  ])("%s %s %j → %s", (version, type, options, next) => {
    expect(recommendNext(version, type, options)).toBe(next);
  });

  it("refuses what npm version would refuse", () => {
    expect(() => recommendNext("1.2", "patch")).toThrow('"1.2" is not a semantic version');
    expect(() => recommendNext("1.2.3", "huge")).toThrow('"huge" is not a release type; use one of major, minor');
    expect(() => recommendNext("1.2.3", "release")).toThrow("cannot compute a release release after 1.2.3");
    expect(() => recommendNext("1.2.3", "premajor", { preid: "be ta" })).toThrow("not a pre-release identifier");
  });

  it("lists every bump", () => {
    expect(recommendAll("1.2.3", { preid: "beta" })).toEqual({
      major: "2.0.0",
      minor: "1.3.0",
      patch: "1.2.4",
      premajor: "2.0.0-beta.0",
      preminor: "1.3.0-beta.0",
      prepatch: "1.2.4-beta.0",
      prerelease: "1.2.4-beta.0",
    });
    expect(recommendAll("3.0.0-rc.2").release).toBe("3.0.0");
  });
});

describe("satisfies", () => {
  it.each([
    ["1.2.3", "^1.0.0", true],
    ["2.0.0", "^1.0.0", false],
    ["1.2.3", "~1.2", true],
    ["1.3.0", "~1.2", false],
    ["1.2.3", "1.x || >=3", true],
    ["1.2.3", "1.0.0 - 1.2.2", false],
    ["1.0.0-beta.1", "^1.0.0", false],
    ["1.0.0-beta.2", ">=1.0.0-beta.1 <1.0.0", true],
    ["1.1.0-beta.1", "^1.0.0-beta.0", false],
    ["1.2.3", "*", true],
    ["1.2.3-rc.1", "*", false],
    ["1.2.3", "latest", false],
    ["1.2.3", "1.2.3 || garbage", false],
    ["not-a-version", "*", false],
  ])("%s in %s: %s", (version, range, expected) => {
    expect(satisfies(version, range)).toBe(expected);
  });
});
