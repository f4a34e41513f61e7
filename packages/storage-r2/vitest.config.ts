import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "storage-r2",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    exclude: ["test/workers/**", "**/node_modules/**"],
    globalSetup: ["@fw/tooling/test/ceph-global-setup"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
