import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "server",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    globalSetup: ["@fw/tooling/test/ceph-global-setup"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
