import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "cli",
    // These tests run the built bin (dist/fw.js) as a user would: `pnpm build` first.
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
