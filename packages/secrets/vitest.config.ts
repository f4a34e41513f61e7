import { defineProject } from "vitest/config";

export default defineProject({
  test: {
    name: "secrets",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    // A real S3 server (Ceph RGW) for the at-rest scan, and a real Secret Service for the keychain provider.
    globalSetup: ["@fw/tooling/test/ceph-global-setup", "./test/keyring-global-setup.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
