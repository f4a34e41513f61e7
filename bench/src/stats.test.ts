import { describe, expect, it } from "vitest";
import { median, rotated } from "./stats.ts";

describe("rotated", () => {
  it("starts each round with the next item, so every item leads once per cycle", () => {
    const servers = ["nginx", "verdaccio", "fw", "fw-bun"];
    const rounds = [0, 1, 2, 3, 4].map((round) => rotated(servers, round));
    expect(rounds.map((order) => order[0])).toEqual(["nginx", "verdaccio", "fw", "fw-bun", "nginx"]);
    expect(rounds[1]).toEqual(["verdaccio", "fw", "fw-bun", "nginx"]);
    for (const order of rounds) expect([...order].sort()).toEqual([...servers].sort());
    expect(servers).toEqual(["nginx", "verdaccio", "fw", "fw-bun"]);
  });

  it("handles an empty list and negative rounds", () => {
    expect(rotated([], 3)).toEqual([]);
    expect(rotated(["a", "b", "c"], -1)).toEqual(["c", "a", "b"]);
  });
});

describe("median", () => {
  it("is the middle run of an odd count, the lower middle of an even one", () => {
    expect(median([6.56, 5.56, 5.74, 5.87, 5.98])).toBe(5.87);
    expect(median([2, 1])).toBe(1);
  });
});
