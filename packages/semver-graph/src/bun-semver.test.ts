import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { order, satisfies } from "./version.js";

/**
 * The README's table of where Bun.semver differs from this package, checked against the real Bun
 * (the `bun` package's binary): every "same" row must agree, every "differs" row must not.
 */
const SATISFIES: { version: string; range: string; bun: boolean; same: boolean }[] = [
  { version: "1.2.3", range: "^1.0.0 || ^2.0.0", bun: true, same: true },
  { version: "1.0.0-beta.1", range: "^1.0.0", bun: false, same: true },
  { version: "1.0.0-beta.1", range: ">=1.0.0-beta.0", bun: true, same: true },
  { version: "1.1.0-beta.1", range: "^1.0.0-beta.0", bun: false, same: true },
  { version: "1.2.3+build", range: "1.2.3", bun: true, same: true },
  { version: "v1.2.3", range: "^1.0.0", bun: true, same: true },
  { version: "1.2.3", range: "", bun: true, same: true },
  { version: "1.2.3", range: "garbage", bun: true, same: false },
  { version: "1.2.3", range: "latest", bun: true, same: false },
  { version: "1.2.3", range: "1.2.3 || garbage", bun: true, same: false },
  { version: "=1.2.3", range: "1.2.3", bun: true, same: false },
  { version: "01.2.3", range: "1.x", bun: true, same: false },
  { version: "999999999999999999.0.0", range: "*", bun: true, same: false },
];

const ORDER: { a: string; b: string; bun: number | "throws"; same: boolean }[] = [
  { a: "1.0.0-alpha", b: "1.0.0", bun: -1, same: true },
  { a: "1.0.0-alpha.10", b: "1.0.0-alpha.9", bun: 1, same: true },
  { a: "1.0.0+a", b: "1.0.0+b", bun: 0, same: true },
  { a: "v1.0.0", b: "1.0.0", bun: 0, same: true },
  { a: "garbage", b: "1.0.0", bun: "throws", same: true },
  { a: "1.0", b: "1.0.0", bun: 1, same: false },
  { a: "1.0.0-01", b: "1.0.0-1", bun: 0, same: false },
  { a: "=1.0.0", b: "1.0.0", bun: 0, same: false },
];

const bunBinary = join(dirname(createRequire(import.meta.url).resolve("bun/package.json")), "bin", "bun.exe");

function ours(run: () => number): number | "throws" {
  try {
    return run();
  } catch {
    return "throws";
  }
}

describe("Bun.semver beside this package", () => {
  it("behaves as the README says, checked against Bun itself", async () => {
    const script = `
      const out = { satisfies: [], order: [] };
      for (const [v, r] of ${JSON.stringify(SATISFIES.map((row) => [row.version, row.range]))}) out.satisfies.push(Bun.semver.satisfies(v, r));
      for (const [a, b] of ${JSON.stringify(ORDER.map((row) => [row.a, row.b]))}) { try { out.order.push(Bun.semver.order(a, b)); } catch { out.order.push("throws"); } }
      console.log(JSON.stringify(out));`;
    const { stdout } = await promisify(execFile)(bunBinary, ["-e", script]);
    const bun = JSON.parse(stdout) as { satisfies: boolean[]; order: (number | "throws")[] };
    expect(bun.satisfies).toEqual(SATISFIES.map((row) => row.bun));
    expect(bun.order).toEqual(ORDER.map((row) => row.bun));
    for (const row of SATISFIES)
      expect(satisfies(row.version, row.range) === row.bun, JSON.stringify(row)).toBe(row.same);
    for (const row of ORDER) expect(ours(() => order(row.a, row.b)) === row.bun, JSON.stringify(row)).toBe(row.same);
  });
});
