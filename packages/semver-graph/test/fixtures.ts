import { readFileSync } from "node:fs";
import type { PackumentLike } from "../src/index.js";

/**
 * Packuments fw served for release histories replayed on it by apps/cli/test/version-registry.test.ts
 * (times replaced by one publish a day, in publish order); `vitest -u` there rewrites them.
 */
export function fixture(name: "widget" | "many-versions"): PackumentLike {
  return JSON.parse(
    readFileSync(new URL(`./fixtures/${name}.generated.json`, import.meta.url), "utf8"),
  ) as PackumentLike;
}
