/**
 * The single list of test projects. The root vitest.config.ts hands it to `test.projects`; each entry
 * is a package's own config, so `pnpm --filter <pkg> test` runs the same tests alone.
 */
export default [
  "packages/storage-r2/vitest.config.ts",
  "packages/storage-r2/vitest.workers.config.ts",
  "packages/auth/vitest.config.ts",
  "packages/semver-graph/vitest.config.ts",
  "packages/secrets/vitest.config.ts",
  "apps/server/vitest.config.ts",
  "apps/cli/vitest.config.ts",
  "bench/vitest.config.ts",
];
