import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "semver-graph",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // Some tests start Bun or parse Mermaid in happy-dom: slow to start on a busy CI machine.
    testTimeout: 60_000,
  },
});
