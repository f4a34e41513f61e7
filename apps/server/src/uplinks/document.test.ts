import { describe, expect, it } from "vitest";
import { applyTakedowns, type CachedPackument, sanitizeUpstream, UnusableDocument } from "./document.js";

const version = (name: string, v: string, extra: Record<string, unknown> = {}) => ({
  name,
  version: v,
  dist: { tarball: `https://upstream.example/${name}/-/${name}-${v}.tgz`, integrity: "sha512-x", shasum: "0" },
  ...extra,
});

describe("sanitizeUpstream", () => {
  it("keeps a packument as the package's own: names pinned, fw's fields and bad versions dropped", () => {
    const doc = sanitizeUpstream("pkg", {
      _id: "pkg",
      name: "pkg",
      "dist-tags": { latest: "1.1.0", beta: "9.0.0", broken: 3 },
      versions: {
        "1.0.0": version("evil", "6.6.6", { dist: { tarball: "x", attestations: { url: "u" } } }),
        "1.1.0": version("pkg", "1.1.0"),
        "not-semver": version("pkg", "not-semver"),
        "2.0.0": { name: "pkg", version: "2.0.0" },
      },
      time: { modified: "2020-01-01T00:00:00.000Z", bogus: 1 },
      readme: "# pkg",
      _fwPublished: ["1.0.0"],
      _fwUnpublished: { time: "", by: "", versions: [] },
      _attachments: {},
    });
    expect(Object.keys(doc.versions)).toEqual(["1.0.0", "1.1.0"]);
    expect(doc.versions["1.0.0"]).toMatchObject({ name: "pkg", version: "1.0.0", dist: { tarball: "x" } });
    expect(doc.versions["1.0.0"]?.dist.attestations).toBeUndefined();
    expect(doc["dist-tags"]).toEqual({ latest: "1.1.0" });
    expect(doc.time).toEqual({ modified: "2020-01-01T00:00:00.000Z" });
    expect(doc.readme).toBe("# pkg");
    expect(Object.keys(doc).filter((key) => key.startsWith("_fw") || key === "_attachments")).toEqual([]);
  });

  it("refuses another package's document and documents without versions", () => {
    expect(() => sanitizeUpstream("pkg", { name: "other", versions: {} })).toThrow(UnusableDocument);
    expect(() => sanitizeUpstream("pkg", { name: "pkg" })).toThrow(/no versions/);
    expect(() => sanitizeUpstream("pkg", [])).toThrow(/not a JSON object/);
  });
});

describe("applyTakedowns", () => {
  const previous = {
    ...sanitizeUpstream("pkg", {
      name: "pkg",
      "dist-tags": { latest: "1.1.0" },
      versions: { "1.0.0": version("pkg", "1.0.0"), "1.1.0": version("pkg", "1.1.0") },
    }),
    _fwUplink: { uplink: "public", url: "u", fetchedAt: 0 },
  } as CachedPackument;
  const next = sanitizeUpstream("pkg", {
    name: "pkg",
    "dist-tags": { latest: "1.0.0" },
    versions: { "1.0.0": version("pkg", "1.0.0"), "0.9.0": version("pkg", "0.9.0") },
  });

  it('drops versions removed upstream with "remove" and names them', () => {
    const { doc, removed, kept } = applyTakedowns(previous, next, "remove");
    expect(Object.keys(doc.versions)).toEqual(["1.0.0", "0.9.0"]);
    expect(removed).toEqual(["1.1.0"]);
    expect(kept).toEqual([]);
  });

  it('keeps them, in semver order, with "keep"', () => {
    const { doc, removed, kept } = applyTakedowns(previous, next, "keep");
    expect(Object.keys(doc.versions)).toEqual(["0.9.0", "1.0.0", "1.1.0"]);
    expect(removed).toEqual([]);
    expect(kept).toEqual(["1.1.0"]);
    expect(doc["dist-tags"]).toEqual({ latest: "1.0.0" });
  });

  it("has nothing to do for a first fetch", () => {
    expect(applyTakedowns(undefined, next, "remove")).toEqual({ doc: next, removed: [], kept: [] });
  });
});
