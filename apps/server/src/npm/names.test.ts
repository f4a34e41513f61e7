import { describe, expect, it } from "vitest";
import { assertPublishableName, parsePackagePath } from "./names.js";

describe("package names", () => {
  it("accepts core module names that exist as real packages, and refuses what npm refuses", () => {
    for (const name of ["punycode", "string_decoder", "events", "@acme/widget", "left-pad"]) {
      expect(() => assertPublishableName(name), name).not.toThrow();
    }
    for (const name of ["Capital", "node_modules", "favicon.ico", ".hidden", "a b", "@scope/", "../x"]) {
      expect(() => assertPublishableName(name), name).toThrow(/invalid package name/);
    }
  });

  it("reads scoped names with an escaped or a plain slash, and refuses traversal", () => {
    expect(parsePackagePath("/@acme%2fwidget")).toEqual({ name: "@acme/widget", target: { kind: "packument" } });
    expect(parsePackagePath("/@acme/widget/-/widget-1.0.0.tgz")).toEqual({
      name: "@acme/widget",
      target: { kind: "tarball", filename: "widget-1.0.0.tgz" },
    });
    expect(() => parsePackagePath("/..%2f..%2fetc%2fpasswd")).toThrow(/invalid package name/);
  });
});
