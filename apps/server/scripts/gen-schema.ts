/**
 * Writes fw.config.schema.json (the JSON Schema editors use for fw.config.json5) from the zod schema.
 * `src/config/schema.test.ts` fails when the committed file is out of date.
 *
 *   pnpm --filter @fw/server gen:schema
 */
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { configJsonSchema } from "../src/config/schema.js";

const target = fileURLToPath(new URL("../fw.config.schema.json", import.meta.url));
await writeFile(target, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
// Format as the repo's `biome check` expects, so the generated file never fails lint.
const biome = join(dirname(createRequire(import.meta.url).resolve("@biomejs/biome/package.json")), "bin", "biome");
execFileSync(process.execPath, [biome, "format", "--write", target], { stdio: "inherit" });
console.log(`wrote ${target}`);
