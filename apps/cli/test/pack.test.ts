import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { tempDir } from "@fw/tooling/test";
import { describe, expect, it } from "vitest";
import { cleanEnv, runFw, startFw } from "./helpers.js";

const exec = promisify(execFile);
const root = fileURLToPath(new URL("../../../", import.meta.url));
/** What `npm install -g @fw/cli` pulls from this repo; everything else comes from the configured npm registry. */
const PACKAGES = [
  "packages/storage-r2",
  "packages/auth",
  "packages/semver-graph",
  "packages/secrets",
  "apps/server",
  "apps/cli",
];

describe.skipIf(process.platform === "win32")("the packed tarballs", () => {
  it("install globally with npm and run `fw`", async () => {
    for (const dir of PACKAGES) {
      if (!existsSync(join(root, dir, "dist"))) throw new Error(`${dir}/dist is missing: run \`pnpm build\` first`);
    }
    await using tmp = await tempDir("fw-pack-");
    const packs = join(tmp.path, "packs");
    await mkdir(packs);
    for (const dir of PACKAGES) await exec("pnpm", ["pack", "--pack-destination", packs], { cwd: join(root, dir) });
    const tarballs = (await readdir(packs)).filter((name) => name.endsWith(".tgz")).map((name) => join(packs, name));
    expect(tarballs).toHaveLength(PACKAGES.length);

    const prefix = join(tmp.path, "global");
    // All at once, so npm satisfies @fw/cli's and @fw/server's workspace dependencies with them.
    await exec("npm", ["install", "--global", "--prefix", prefix, "--no-audit", "--no-fund", ...tarballs], {
      env: cleanEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
    const bin = join(prefix, "bin", "fw");
    expect(existsSync(bin)).toBe(true);

    const work = join(tmp.path, "work");
    await mkdir(work);
    const help = await runFw(["--help"], { cwd: work, bin });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("registry start");

    const running = await startFw(["registry", "start", "--port", "0"], { cwd: work, bin });
    expect(running.line).toMatch(/^fw registry listening on http:\/\/127\.0\.0\.1:\d+ \(storage: fs \.\/storage\)$/);
    expect((await fetch(`${running.url}/-/ping`)).status).toBe(200);
    expect(await running.stop()).toMatchObject({ code: 0, signal: null });
  });
});
