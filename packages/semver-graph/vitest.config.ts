import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "semver-graph",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
  },
});
