import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parsePolicy } from "@fw/auth";
import { DEFAULT_CONFIG_FILE, type FwConfig, loadConfig, parseConfig } from "@fw/server";
import {
  type ConvertedConfig,
  convertVerdaccioConfig,
  type HtpasswdEntry,
  htpasswdPath,
  type ImportReport,
  importVerdaccio,
  parseHtpasswd,
  readVerdaccioYaml,
  renderConvertedConfig,
  storageFromConfig,
} from "@fw/server/node";
import { memoryDriver } from "@fw/storage-r2/memory";
import { describeStorage, displayPath, print, printJson } from "../../output.js";

export interface ImportVerdaccioOptions {
  /** Verdaccio's config.yaml. */
  config?: string;
  /** Verdaccio's storage folder; default: its config's `storage`. */
  storage?: string;
  /** The htpasswd file; default: its config's `auth.htpasswd.file`. */
  htpasswd?: string;
  /** The fw config to write; default ./fw.config.json5 (not written with `into` unless given). */
  out?: string;
  /** An existing fw config: import into the storage it names instead of a new ./storage. */
  into?: string;
  /** Comma-separated owners for packages whose storage records none. */
  owners?: string;
  force: boolean;
  dryRun: boolean;
  json: boolean;
}

/** Everything `fw registry import verdaccio` prints with `--json`. */
export interface ImportVerdaccioResult extends ImportReport {
  source: { config: string; storage: string; htpasswd?: string };
  target: { storage: string; config?: string };
  config: Pick<ConvertedConfig, "converted" | "notConverted" | "warnings"> & { written: boolean };
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${what} ${displayPath(path)}: ${(error as Error).message}`, { cause: error });
  }
}

function list(text: string | undefined): string[] | undefined {
  const items = text
    ?.split(",")
    .map((item) => item.trim())
    .filter(Boolean);
  return items && items.length > 0 ? items : undefined;
}

/**
 * `fw registry import verdaccio`: converts Verdaccio's config to an fw config, imports its htpasswd users
 * (their passwords keep working) and its storage folder (every tarball verified), and reports what was
 * imported and what was not. Sets exit code 1 when anything could not be imported.
 */
export async function run(opts: ImportVerdaccioOptions): Promise<ImportVerdaccioResult> {
  if (opts.config === undefined) throw new Error("give Verdaccio's config file with --config <config.yaml>");
  const configFile = resolve(opts.config);
  const configDir = dirname(configFile);
  const yaml = await readVerdaccioYaml(await readText(configFile, "the Verdaccio config"));

  const htpasswdFile = opts.htpasswd === undefined ? htpasswdPath(yaml, configDir) : resolve(opts.htpasswd);
  let entries: HtpasswdEntry[] = [];
  const htpasswdProblems: Array<{ name: string; reason: string }> = [];
  if (htpasswdFile !== undefined && (await isFile(htpasswdFile))) {
    const parsed = parseHtpasswd(await readText(htpasswdFile, "the htpasswd file"));
    entries = parsed.entries;
    for (const problem of parsed.problems)
      htpasswdProblems.push({ name: `htpasswd line ${problem.line}`, reason: problem.reason });
  }
  const converted = convertVerdaccioConfig(yaml, { configDir, users: entries.map((entry) => entry.name) });
  if (htpasswdFile === undefined) converted.warnings.push("no htpasswd file is configured: no users imported");
  else if (entries.length === 0 && !(await isFile(htpasswdFile)))
    converted.warnings.push(`${displayPath(htpasswdFile)} does not exist: no users imported`);
  if (converted.issues.length > 0) {
    const issues = converted.issues.map((issue) => `${issue.path || "(top)"}: ${issue.message}`).join("; ");
    throw new Error(`the converted config is not valid (a bug in the converter; please report it): ${issues}`);
  }
  const storageDir = opts.storage === undefined ? converted.storage : resolve(opts.storage);
  if (storageDir === undefined)
    throw new Error("the Verdaccio config names no storage folder: give it with --storage <dir>");

  // Verdaccio's rules, converted, decide owners; the fw config is written with its own storage.
  const fwConfig = parseConfig(
    { ...converted.config, storage: { driver: "fs", path: "./storage" } },
    { baseDir: dirname(resolve(opts.out ?? DEFAULT_CONFIG_FILE)) },
  );
  let targetConfig: FwConfig = fwConfig;
  let outFile: string | undefined;
  if (opts.into !== undefined) {
    targetConfig = (await loadConfig({ file: opts.into, overrides: {} })).config;
    if (opts.out !== undefined) outFile = resolve(opts.out);
  } else outFile = resolve(opts.out ?? DEFAULT_CONFIG_FILE);
  if (outFile !== undefined && !opts.dryRun && !opts.force && (await isFile(outFile))) {
    throw new Error(
      `${displayPath(outFile)} already exists: pass --force to overwrite it, or --into ${displayPath(outFile)} to import into the registry it configures`,
    );
  }

  // A dry run must not even create the storage folder; one that does not exist yet holds nothing.
  const target =
    opts.dryRun && targetConfig.storage.driver === "fs" && !(await exists(targetConfig.storage.path))
      ? memoryDriver()
      : await storageFromConfig(targetConfig);
  let report: ImportReport;
  try {
    report = await importVerdaccio({
      target,
      storageDir,
      extraStorage: converted.extraStorage,
      htpasswd: entries,
      policy: parsePolicy(fwConfig.access ?? {}),
      ...(list(opts.owners) && { owners: list(opts.owners) }),
      dryRun: opts.dryRun,
      ...(!opts.json &&
        process.stderr.isTTY && {
          onPackage: (name: string, outcome: string) => process.stderr.write(`  ${outcome.padEnd(8)} ${name}\n`),
        }),
    });
  } finally {
    await target.dispose?.();
  }
  if (htpasswdProblems.length > 0) {
    report.users.failed.push(...htpasswdProblems);
    report.counts.failed += htpasswdProblems.length;
    report.ok = false;
  }

  const written = outFile !== undefined && !opts.dryRun;
  if (written && outFile !== undefined) {
    await mkdir(dirname(outFile), { recursive: true });
    const text = renderConvertedConfig(converted, {
      source: configFile,
      ...(opts.into === undefined && { storage: { driver: "fs", path: "./storage" } }),
    });
    await writeFile(outFile, text, { flag: opts.force ? "w" : "wx" });
  }

  const result: ImportVerdaccioResult = {
    ...report,
    source: { config: configFile, storage: storageDir, ...(htpasswdFile !== undefined && { htpasswd: htpasswdFile }) },
    target: { storage: describeStorage(targetConfig.storage), ...(outFile !== undefined && { config: outFile }) },
    config: {
      converted: converted.converted,
      notConverted: converted.notConverted,
      warnings: converted.warnings,
      written,
    },
  };
  if (opts.json) printJson(result);
  else print(formatResult(result));
  if (!result.ok) process.exitCode = 1;
  return result;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** The report for people: totals first, then each list that has entries. */
export function formatResult(result: ImportVerdaccioResult): string {
  const { packages, users, counts } = result;
  const lines = [
    `${result.dryRun ? "Would import" : "Imported"} from Verdaccio (${displayPath(result.source.config)}, storage ${displayPath(result.source.storage)}) into ${result.target.storage}:`,
    `  packages: ${counts.packages} (${plural(counts.versions, "version")}, ${plural(counts.tarballs, "tarball")}), ${packages.skipped.length} skipped, ${packages.failed.length} failed`,
    `  users:    ${counts.users}, ${users.skipped.length} skipped, ${users.failed.length} failed`,
    `  config:   ${
      result.config.written && result.target.config
        ? `written to ${displayPath(result.target.config)}`
        : result.dryRun
          ? "not written (dry run)"
          : "not written"
    }; ${plural(result.config.notConverted.length, "setting")} not converted`,
  ];
  if (packages.imported.length > 0) {
    lines.push("", "Packages:");
    for (const each of packages.imported) {
      const tags = Object.entries(each.distTags)
        .map(([tag, version]) => `${tag}=${version}`)
        .join(" ");
      const owners = each.maintainers.length > 0 ? `${each.maintainers.join(", ")} (from ${each.ownersFrom})` : "none";
      lines.push(`  ${each.name}: ${plural(each.versions.length, "version")}; tags ${tags}; owners ${owners}`);
      if (each.deprecated.length > 0) lines.push(`    deprecated: ${each.deprecated.join(", ")}`);
      for (const warning of each.warnings) lines.push(`    note: ${warning}`);
    }
  }
  if (users.imported.length > 0) {
    lines.push("", "Users (their passwords keep working; fw replaces each hash with scrypt at the first login):");
    const scheme = (name: string) => (name === "plain" ? "plain text, hashed now" : name);
    lines.push(`  ${users.imported.map((user) => `${user.name} (${scheme(user.scheme)})`).join(", ")}`);
  }
  const problems = (title: string, items: Array<{ name: string; version?: string; reason: string }>) => {
    if (items.length === 0) return;
    lines.push("", title);
    for (const item of items) lines.push(`  ${item.name}${item.version ? `@${item.version}` : ""}: ${item.reason}`);
  };
  problems("Skipped packages:", packages.skipped);
  problems("Skipped users:", users.skipped);
  problems("Failed packages (not imported):", packages.failed);
  problems("Failed users (not imported):", users.failed);
  if (result.config.notConverted.length > 0) {
    lines.push("", "Not converted:");
    for (const item of result.config.notConverted) lines.push(`  ${item.key}: ${item.why}`);
  }
  if (result.config.warnings.length > 0) {
    lines.push("", "Check:");
    for (const warning of result.config.warnings) lines.push(`  ${warning}`);
  }
  lines.push(
    "",
    result.dryRun
      ? "Dry run: nothing was written."
      : result.ok
        ? "Everything was imported. Start fw with `fw registry start`; users log in again with their passwords."
        : "Some things could not be imported (see above); fix them and run the import again: what is already in fw is skipped.",
  );
  return lines.join("\n");
}
