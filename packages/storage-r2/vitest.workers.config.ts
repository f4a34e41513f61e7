import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineProject } from "vitest/config";

export default defineProject({
  plugins: [
    cloudflareTest({
      miniflare: {
        compatibilityDate: "2026-11-01",
        r2Buckets: ["BUCKET"],
      },
    }),
  ],
  test: {
    name: "storage-r2-workers",
    include: ["test/workers/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
