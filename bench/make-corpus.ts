// Builds a benchmark corpus from any package.json, through the npm client and whatever registry it
// is configured with:
//   node make-corpus.ts <package.json> <outdir> [--concurrency 4] [--lockfile package-lock.json] [--no-pnpm]
// 1. `npm install --package-lock-only --ignore-scripts` resolves the tree (or --lockfile reuses one);
// 2. `npm pack <name>@<version>` fetches each locked tarball, checked against the lockfile integrity;
// 3. `pnpm import` turns the npm lockfile into pnpm-lock.yaml (integrity only, so registry-neutral).
// Output: package.json, package-lock.json (resolved URLs on http://registry.invalid), pnpm-lock.yaml,
// tarballs/*.tgz and manifest.json — the layout bench.ts reads.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { corpusFileName, integrityOf, PLACEHOLDER_ORIGIN, tarballPath } from "./src/corpus.ts";
import { cleanEnv, Processes, runCommand } from "./src/procs.ts";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: "string", default: "4" },
    lockfile: { type: "string" },
    "no-pnpm": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
const [packageJsonArg, outArg] = positionals;
if (values.help || !packageJsonArg || !outArg) {
  console.error("usage: node make-corpus.ts <package.json> <outdir> [--concurrency 4] [--lockfile FILE] [--no-pnpm]");
  process.exit(values.help ? 0 : 2);
}

interface LockEntry {
  name?: string;
  version?: string;
  resolved?: string;
  integrity?: string;
  link?: boolean;
  inBundle?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}
interface Lockfile {
  packages?: Record<string, LockEntry>;
}

const processes = new Processes();
process.on("exit", () => processes.killAllNow());
const out = resolve(outArg);
const scratch = mkdtempSync(join(tmpdir(), "fw-make-corpus-"));
const env = cleanEnv();

function registryEntries(lock: Lockfile): { key: string; name: string; version: string; integrity: string }[] {
  const entries = [];
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (!key || entry.link || entry.inBundle || !entry.version) continue;
    // registry packages have an integrity and an http(s) `resolved` (or none, with omit-lockfile-registry-resolved)
    if (!entry.integrity || (entry.resolved && !/^https?:\/\//.test(entry.resolved))) {
      console.warn(`skipping ${key}: not a registry package`);
      continue;
    }
    const name = entry.name ?? key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    entries.push({ key, name, version: entry.version, integrity: entry.integrity });
  }
  return entries;
}

/** `npm ci` rejects a lockfile where a dependency has no entry, e.g. a platform package npm skipped. */
function missingEdges(lock: Lockfile): string[] {
  const packages = lock.packages ?? {};
  const missing: string[] = [];
  for (const [key, entry] of Object.entries(packages)) {
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      let base = key;
      let found = false;
      for (;;) {
        if (packages[`${base ? `${base}/` : ""}node_modules/${dep}`]) {
          found = true;
          break;
        }
        if (!base) break;
        const at = base.lastIndexOf("/node_modules/");
        base = at === -1 ? "" : base.slice(0, at);
      }
      if (!found && !entry.optionalDependencies?.[dep]) missing.push(`${key || "(root)"} → ${dep}`);
    }
  }
  return missing;
}

try {
  copyFileSync(resolve(packageJsonArg), join(scratch, "package.json"));
  if (values.lockfile) {
    copyFileSync(resolve(values.lockfile), join(scratch, "package-lock.json"));
  } else {
    console.log("resolving the dependency tree with npm install --package-lock-only …");
    const run = await runCommand(
      processes,
      "npm",
      ["install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
      { cwd: scratch, env, timeoutMs: 600_000 },
    );
    if (run.code !== 0) throw new Error(`npm install --package-lock-only failed:\n${run.stderr.slice(-2000)}`);
  }
  const lock = JSON.parse(readFileSync(join(scratch, "package-lock.json"), "utf8")) as Lockfile;
  const missing = missingEdges(lock);
  if (missing.length > 0)
    throw new Error(`the lockfile is incomplete, npm ci would refuse it:\n  ${missing.slice(0, 20).join("\n  ")}`);

  const unique = new Map<string, { name: string; version: string; integrity: string }>();
  for (const e of registryEntries(lock)) unique.set(`${e.name}@${e.version}`, e);
  console.log(`${unique.size} registry packages in the lockfile`);

  mkdirSync(join(out, "tarballs"), { recursive: true });
  const queue = [...unique.values()];
  const manifest: { name: string; version: string; file: string; integrity: string; shasum: string; size: number }[] =
    [];
  const failures: string[] = [];
  let done = 0;
  const worker = async () => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const file = corpusFileName(item.name, item.version);
      const target = join(out, "tarballs", file);
      try {
        if (!existsSync(target)) {
          const dir = mkdtempSync(join(scratch, "pack-"));
          const run = await runCommand(
            processes,
            "npm",
            ["pack", `${item.name}@${item.version}`, "--pack-destination", dir, "--ignore-scripts", "--loglevel=error"],
            { cwd: scratch, env, timeoutMs: 180_000 },
          );
          const packed = readdirSync(dir).filter((f) => f.endsWith(".tgz"));
          if (run.code !== 0 || packed.length !== 1) throw new Error(`npm pack failed: ${run.stderr.slice(-300)}`);
          renameSync(join(dir, packed[0] as string), target);
        }
        const bytes = readFileSync(target);
        const digests = integrityOf(bytes);
        // lockfiles from old npm versions carry sha1 integrity only
        const expected = item.integrity.split(/\s+/);
        const ok = expected.some(
          (sri) => sri === digests.integrity || sri === `sha1-${Buffer.from(digests.shasum, "hex").toString("base64")}`,
        );
        if (!ok) {
          rmSync(target);
          throw new Error("integrity does not match the lockfile");
        }
        manifest.push({ name: item.name, version: item.version, file, ...digests, size: bytes.length });
      } catch (error) {
        failures.push(`${item.name}@${item.version}: ${(error as Error).message}`);
      }
      if (++done % 25 === 0 || done === unique.size)
        console.log(`fetched ${done}/${unique.size}, ${failures.length} failed`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(values.concurrency)) }, worker));
  if (failures.length > 0)
    throw new Error(`${failures.length} tarballs failed:\n  ${failures.slice(0, 20).join("\n  ")}`);

  if (!values["no-pnpm"]) {
    console.log("writing pnpm-lock.yaml with pnpm import …");
    const run = await runCommand(
      processes,
      "pnpm",
      ["import", "--config.minimum-release-age=0", `--store-dir=${join(scratch, "pnpm-store")}`],
      { cwd: scratch, env, timeoutMs: 600_000 },
    );
    if (run.code === 0 && existsSync(join(scratch, "pnpm-lock.yaml")))
      copyFileSync(join(scratch, "pnpm-lock.yaml"), join(out, "pnpm-lock.yaml"));
    else
      console.warn(
        `pnpm import failed, the corpus will have no pnpm lockfile:\n${(run.stderr || run.stdout).slice(-1000)}`,
      );
  }

  // Lockfile URLs on a placeholder origin; bench.ts points them at each registry under test.
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (!key || entry.link || entry.inBundle || !entry.version || !entry.integrity) continue;
    if (entry.resolved && !/^https?:\/\//.test(entry.resolved)) continue;
    const name = entry.name ?? key.slice(key.lastIndexOf("node_modules/") + "node_modules/".length);
    entry.resolved = PLACEHOLDER_ORIGIN + tarballPath(name, entry.version);
  }
  copyFileSync(join(scratch, "package.json"), join(out, "package.json"));
  writeFileSync(join(out, "package-lock.json"), `${JSON.stringify(lock, null, 2)}\n`);
  manifest.sort((a, b) => (a.name === b.name ? (a.version < b.version ? -1 : 1) : a.name < b.name ? -1 : 1));
  const totalBytes = manifest.reduce((t, m) => t + m.size, 0);
  writeFileSync(
    join(out, "manifest.json"),
    `${JSON.stringify(
      {
        format: 1,
        placeholderRegistry: PLACEHOLDER_ORIGIN,
        packageCount: manifest.length,
        packageNames: new Set(manifest.map((m) => m.name)).size,
        totalBytes,
        packages: manifest,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`corpus written to ${out}: ${manifest.length} tarballs, ${(totalBytes / 1e6).toFixed(1)} MB`);
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
