import type { CAC } from "cac";
import { clientFlags, type Flags, registryFlags, text } from "../../flags.js";

function count(flags: Flags, name: string): number | undefined {
  const value = text(flags[name]);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number, not "${value}"`);
  return n;
}

/** Adds the `fw version …` commands. */
export function registerVersionCommands(cli: CAC): void {
  cli
    .command("version parse <version>", "Split a version into major, minor, patch, pre-release and build")
    .option("--json", "Print JSON")
    .example("  $ fw version parse 2.0.0-rc.1+build.7")
    .action(async (version: unknown, flags: Flags) => {
      const { run } = await import("./parse.js");
      await run({ version: String(version), json: flags.json === true });
    });

  cli
    .command("version compare <a> <b>", "Which of two versions is higher, and what differs")
    .option("--json", "Print JSON")
    .action(async (a: unknown, b: unknown, flags: Flags) => {
      const { run } = await import("./compare.js");
      await run({ a: String(a), b: String(b), json: flags.json === true });
    });

  cli
    .command(
      "version recommend <version> [type]",
      "The next version for a bump (major, minor, patch, premajor, preminor, prepatch, prerelease, release); every bump without a type",
    )
    .option("--preid <id>", "Pre-release identifier, e.g. beta for 2.0.0-beta.0")
    .option("--json", "Print JSON")
    .example("  $ fw version recommend 1.4.2 premajor --preid beta")
    .action(async (version: unknown, type: unknown, flags: Flags) => {
      const { run } = await import("./recommend.js");
      await run({ version: String(version), type: text(type), preid: text(flags.preid), json: flags.json === true });
    });

  registryFlags(
    cli.command(
      "version graph <pkg> [format]",
      "Draw a package's versions as ascii (default), mermaid, json (D3) or svg, from the registry or a packument file",
    ),
  )
    .option("--all", "Show every version; by default old runs of patches are collapsed")
    .option("--width <columns>", "Width of the ascii tree (default: the terminal's, else 80)")
    .option("--window <n>", "How many versions below latest are Rollback Ready (default 3)")
    .option("--json", "Print the graph as one line of JSON (the json format)")
    .example("  $ fw version graph @acme/web mermaid > versions.mmd")
    .example("  $ fw version graph ./packument.json svg > versions.svg")
    .action(async (pkg: unknown, format: unknown, flags: Flags) => {
      const { run } = await import("./graph.js");
      await run({
        ...clientFlags(flags),
        pkg: String(pkg),
        format: text(format),
        all: flags.all === true,
        width: count(flags, "width"),
        window: count(flags, "window"),
        json: flags.json === true,
      });
    });

  registryFlags(
    cli.command(
      "version rollback <pkg> <version>",
      "Move latest (or --tag) back to an earlier version through the dist-tags API; nothing is deleted",
    ),
  )
    .option("--tag <tag>", "The dist-tag to move (default latest)")
    .option("--force", "Allow a deprecated, pre-release, newer or not Rollback Ready target")
    .option("--yes", "Do not ask for confirmation")
    .option("--dry-run", "Print what would change and stop")
    .option("--json", "Print JSON (needs --yes or --dry-run)")
    .example("  $ fw version rollback @acme/web 2.3.1")
    .action(async (pkg: unknown, version: unknown, flags: Flags) => {
      const { run } = await import("./rollback.js");
      await run({
        ...clientFlags(flags),
        pkg: String(pkg),
        version: String(version),
        tag: text(flags.tag) ?? "latest",
        force: flags.force === true,
        yes: flags.yes === true,
        dryRun: flags.dryRun === true,
        json: flags.json === true,
      });
    });
}
