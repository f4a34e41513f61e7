import { describe, expect, it } from "vitest";
import { rewriteNpmLock } from "./installs.ts";

describe("rewriteNpmLock", () => {
  it("points every registry entry at the registry under test and leaves links and bundles alone", () => {
    const lock = {
      packages: {
        "": { name: "app" },
        "node_modules/a": {
          version: "1.0.0",
          resolved: "http://registry.invalid/a/-/a-1.0.0.tgz",
          integrity: "sha512-x",
        },
        "node_modules/a/node_modules/@s/b": { version: "2.0.0", integrity: "sha512-y" },
        "node_modules/alias": {
          name: "real",
          version: "3.0.0",
          resolved: "http://registry.invalid/real/-/real-3.0.0.tgz",
          integrity: "sha512-z",
        },
        "node_modules/linked": { resolved: "../linked", link: true },
        "node_modules/gitdep": {
          version: "1.0.0",
          resolved: "git+ssh://git@example.com/x.git#abc",
          integrity: "sha512-w",
        },
      },
    };
    const out = rewriteNpmLock(lock, "http://127.0.0.1:4873/") as typeof lock;
    expect(out.packages["node_modules/a"].resolved).toBe("http://127.0.0.1:4873/a/-/a-1.0.0.tgz");
    expect(out.packages["node_modules/a/node_modules/@s/b"]).toMatchObject({
      resolved: "http://127.0.0.1:4873/@s/b/-/b-2.0.0.tgz",
    });
    expect(out.packages["node_modules/alias"].resolved).toBe("http://127.0.0.1:4873/real/-/real-3.0.0.tgz");
    expect(out.packages["node_modules/linked"].resolved).toBe("../linked");
    expect(out.packages["node_modules/gitdep"].resolved).toBe("git+ssh://git@example.com/x.git#abc");
    expect(lock.packages["node_modules/a"].resolved).toBe("http://registry.invalid/a/-/a-1.0.0.tgz");
  });
});
