import type { CAC } from "cac";
import { CONFIG_FLAG, clientFlags, type Flags, registryFlags, text } from "../../flags.js";

/** Adds `fw registry publish|info|search|list`: the registry's client side, as npm users know it. */
export function registerRegistryClientCommands(cli: CAC): void {
  registryFlags(
    cli.command("registry publish [path]", "Pack a folder like npm pack (files, .npmignore) and publish it"),
  )
    .option("--tag <tag>", "The dist-tag to set (default: publishConfig.tag, else latest)")
    .option("--access <access>", "public or restricted (scoped packages; default: publishConfig.access)")
    .option("--otp <code>", "One-time password from your authenticator app, for accounts with 2FA")
    .option("--dry-run", "Pack and print what would be published, without publishing")
    .option("--json", "Print JSON")
    .example("  $ fw registry publish ./packages/web --tag next")
    .example("  $ fw registry publish --dry-run")
    .action(async (path: unknown, flags: Flags) => {
      const { run } = await import("./publish.js");
      await run({
        ...clientFlags(flags),
        path: text(path) ?? ".",
        tag: text(flags.tag),
        access: text(flags.access),
        otp: text(flags.otp),
        dryRun: flags.dryRun === true,
        json: flags.json === true,
      });
    });

  registryFlags(
    cli.command(
      "registry info <pkg>",
      "Show a package like npm view: description, dist-tags, dependencies, maintainers, tarball (pkg@version or pkg@tag for another version)",
    ),
  )
    .option("--json", "Print JSON")
    .example("  $ fw registry info @acme/web@next")
    .action(async (pkg: unknown, flags: Flags) => {
      const { run } = await import("./info.js");
      await run({ ...clientFlags(flags), pkg: String(pkg), json: flags.json === true });
    });

  registryFlags(
    cli.command("registry search <...query>", "Search the registry's packages by name, description, keywords"),
  )
    .option("--limit <n>", "Most results, 1 to 250 (default 20)")
    .option("--json", "Print JSON")
    .example('  $ fw registry search "date format" --limit 5')
    .action(async (query: unknown, flags: Flags) => {
      const { run } = await import("./search.js");
      const limit = text(flags.limit);
      await run({
        ...clientFlags(flags),
        query: (Array.isArray(query) ? query : [query]).map(String).join(" "),
        limit: limit === undefined ? undefined : Number(limit),
        json: flags.json === true,
      });
    });

  cli
    .command(
      "registry list",
      "List the packages in the registry's storage: local (published here) and cached from uplinks; works with the registry stopped",
    )
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { run } = await import("./list.js");
      const config = text(flags.config);
      await run({ ...(config !== undefined && { config }), json: flags.json === true });
    });
}
