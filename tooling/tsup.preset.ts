import { defineConfig, type Options } from "tsup";

/**
 * The one build preset for every fw package: ESM with type declarations and source maps, for
 * Node 22.12+ (and Bun, and workerd for the Worker-safe entries). Dependencies stay external.
 */
export function libraryPreset(options: Options) {
  return defineConfig({
    format: ["esm"],
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
    treeshake: true,
    target: "node22",
    platform: "node",
    outDir: "dist",
    ...options,
  });
}
