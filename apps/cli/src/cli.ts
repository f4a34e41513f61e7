import { readFileSync } from "node:fs";
import type { ConfigOverrides } from "@fw/server";
import { type CAC, type Command, cac } from "cac";
import { registerRegistryClientCommands } from "./commands/registry/client-register.js";
import { registerSecretsCommands } from "./commands/secrets/register.js";
import { registerVersionCommands } from "./commands/version/register.js";
import { CONFIG_FLAG, type Flags, last, restoreTypedValues, text } from "./flags.js";

function overrideFlags(command: Command): Command {
  return command
    .option("--host <host>", "Interface to listen on (FW_HOST)")
    .option("--port <port>", "Port; 0 picks a free one (FW_PORT)")
    .option("--public-url <url>", "URL clients reach the registry at (FW_PUBLIC_URL)")
    .option("--storage-path <path>", "Keep packages in this folder (FW_STORAGE_PATH)")
    .option("--log-level <level>", "debug, info, warn, error or silent (FW_LOG_LEVEL)")
    .option("--log-format <format>", "pretty or json (FW_LOG_FORMAT)");
}

function overrides(flags: Flags): ConfigOverrides {
  const port = last(flags.port);
  return {
    host: text(flags.host),
    port: typeof port === "number" ? port : text(port),
    publicUrl: text(flags.publicUrl),
    storagePath: text(flags.storagePath),
    logLevel: text(flags.logLevel),
    logFormat: text(flags.logFormat),
  };
}

function storeFlags(flags: Flags): { config?: string; json: boolean } {
  const config = text(flags.config);
  return { ...(config !== undefined && { config }), json: flags.json === true };
}

function createCli(): CAC {
  const cli = cac("fw");
  cli.option("--debug", "Print stack traces with errors");
  cli.option("-v, --version", "Print the version");
  // Shown in help as "fw/<version>"; `--version` itself is answered in runCli, as the bare number.
  cli.globalCommand.versionNumber = version();
  cli.help();

  overrideFlags(cli.command("registry start", "Start the registry"))
    .option(...CONFIG_FLAG)
    .option("--json", "Print the address as JSON")
    .example("  $ fw registry start --port 0")
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/start.js");
      await run({ config: text(flags.config), overrides: overrides(flags), json: flags.json === true });
    });

  overrideFlags(cli.command("registry config", "Print the effective config (secrets redacted) and its sources"))
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/config.js");
      await run({ config: text(flags.config), overrides: overrides(flags), json: flags.json === true });
    });

  cli
    .command("registry config init", "Write a commented config file with every default")
    .option("--config <file>", "File to write (default: ./fw.config.json5)")
    .option("--force", "Overwrite an existing file")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { runInit } = await import("./commands/registry/config.js");
      await runInit({ config: text(flags.config), force: flags.force === true, json: flags.json === true });
    });

  cli
    .command("registry config load [file]", "Check a config file on its own and print it (secrets redacted)")
    .option("--json", "Print JSON")
    .action(async (file: unknown, flags: Flags) => {
      const { runLoad } = await import("./commands/registry/config.js");
      await runLoad({ file: text(file), json: flags.json === true });
    });

  overrideFlags(
    cli.command("registry config save", "Write the effective config (file, environment and flags) as JSON5"),
  )
    .option(...CONFIG_FLAG)
    .option("--out <file>", "File to write (default: the config file read, else ./fw.config.json5)")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { runSave } = await import("./commands/registry/config.js");
      await runSave({
        config: text(flags.config),
        out: text(flags.out),
        overrides: overrides(flags),
        json: flags.json === true,
      });
    });

  cli
    .command("registry user add <name>", "Create a user in the registry's storage")
    .option(...CONFIG_FLAG)
    .option("--email <email>", "The user's email")
    .option("--admin", "Make the user an administrator")
    .option("--password-stdin", "Read the password from stdin")
    .option("--password <password>", "The password (visible to other users in ps; prefer --password-stdin)")
    .option("--json", "Print JSON")
    .action(async (name: unknown, flags: Flags) => {
      const { runAdd } = await import("./commands/registry/user.js");
      await runAdd({
        ...storeFlags(flags),
        name: String(name),
        email: text(flags.email),
        admin: flags.admin === true,
        password: text(flags.password),
        passwordStdin: flags.passwordStdin === true,
      });
    });

  cli
    .command("registry user list", "List the registry's users")
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { runList } = await import("./commands/registry/user.js");
      await runList(storeFlags(flags));
    });

  for (const [verb, disabled] of [
    ["disable", true],
    ["enable", false],
  ] as const) {
    cli
      .command(
        `registry user ${verb} <name>`,
        `${disabled ? "Disable" : "Enable"} a user: ${disabled ? "its logins and tokens stop working" : "it may sign in again"}`,
      )
      .option(...CONFIG_FLAG)
      .option("--reason <text>", "Why (kept in the profile)")
      .option("--json", "Print JSON")
      .action(async (name: unknown, flags: Flags) => {
        const { runSetDisabled } = await import("./commands/registry/user.js");
        await runSetDisabled({ ...storeFlags(flags), name: String(name), disabled, reason: text(flags.reason) });
      });
  }

  cli
    .command("registry user reset-password <name>", "Set a new password and revoke the user's tokens")
    .option(...CONFIG_FLAG)
    .option("--password-stdin", "Read the password from stdin")
    .option("--password <password>", "The password (visible to other users in ps; prefer --password-stdin)")
    .option("--keep-tokens", "Do not revoke the user's tokens")
    .option("--json", "Print JSON")
    .action(async (name: unknown, flags: Flags) => {
      const { runResetPassword } = await import("./commands/registry/user.js");
      await runResetPassword({
        ...storeFlags(flags),
        name: String(name),
        password: text(flags.password),
        passwordStdin: flags.passwordStdin === true,
        keepTokens: flags.keepTokens === true,
      });
    });

  cli
    .command("registry token create <user>", "Create a token for a user and print it once")
    .option(...CONFIG_FLAG)
    .option("--name <name>", "What the token is for")
    .option("--description <text>", "Longer description")
    .option("--read-only", "The token may only read")
    .option("--expires <days>", "Days until the token stops working")
    .option("--cidr <ranges>", "Comma-separated CIDR ranges the token may be used from")
    .option("--packages <names>", "Comma-separated packages the token is limited to")
    .option("--scopes <scopes>", "Comma-separated scopes (@acme) the token is limited to")
    .option("--environment <label>", "Environment label (e.g. ci) for rules with environments")
    .option("--json", "Print JSON")
    .action(async (user: unknown, flags: Flags) => {
      const { runCreate } = await import("./commands/registry/token.js");
      const expires = text(flags.expires);
      await runCreate({
        ...storeFlags(flags),
        user: String(user),
        name: text(flags.name),
        description: text(flags.description),
        readOnly: flags.readOnly === true,
        expires: expires === undefined ? undefined : Number(expires),
        cidr: text(flags.cidr),
        packages: text(flags.packages),
        scopes: text(flags.scopes),
        environment: text(flags.environment),
      });
    });

  cli
    .command("registry token list <user>", "List a user's tokens (never the secrets)")
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (user: unknown, flags: Flags) => {
      const { runList } = await import("./commands/registry/token.js");
      await runList({ ...storeFlags(flags), user: String(user) });
    });

  cli
    .command("registry token revoke <user> <key>", "Revoke a user's token by key (or a 6+ character key prefix)")
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (user: unknown, key: unknown, flags: Flags) => {
      const { runRevoke } = await import("./commands/registry/token.js");
      await runRevoke({ ...storeFlags(flags), user: String(user), key: String(key) });
    });

  cli
    .command("registry token due", "Tokens and passwords that expire soon or already have")
    .option(...CONFIG_FLAG)
    .option("--within <days>", "How far ahead to look (default 14)")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { runDue } = await import("./commands/registry/token.js");
      const within = text(flags.within);
      await runDue({ ...storeFlags(flags), within: within === undefined ? undefined : Number(within) });
    });

  cli
    .command(
      "registry access check <who> <action> <pkg>",
      "Explain whether a user, token or anonymous may access, publish or unpublish a package",
    )
    .option(...CONFIG_FLAG)
    .option("--json", "Print JSON")
    .action(async (who: unknown, action: unknown, pkg: unknown, flags: Flags) => {
      const { run } = await import("./commands/registry/access.js");
      await run({ ...storeFlags(flags), who: String(who), action: String(action), pkg: String(pkg) });
    });

  cli
    .command("registry audit", "Print the audit trail: logins, tokens, publishes, refused writes")
    .option(...CONFIG_FLAG)
    .option("--since <date>", "Events at or after this time")
    .option("--user <name>", "Events by this user")
    .option("--package <name>", "Events about this package")
    .option("--action <action>", "An action, or a family such as token")
    .option("--limit <n>", "Most events (default 1000)")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/audit.js");
      const limit = text(flags.limit);
      await run({
        ...storeFlags(flags),
        since: text(flags.since),
        user: text(flags.user),
        package: text(flags.package),
        action: text(flags.action),
        limit: limit === undefined ? undefined : Number(limit),
      });
    });

  cli
    .command(
      "registry import verdaccio",
      "Import a Verdaccio registry: config, htpasswd users and storage (exit code 1 when anything could not be imported)",
    )
    .option("--config <file>", "Verdaccio's config.yaml")
    .option("--storage <dir>", "Verdaccio's storage folder (default: the config's storage)")
    .option("--htpasswd <file>", "Verdaccio's htpasswd file (default: the config's auth.htpasswd.file)")
    .option(
      "--out <file>",
      "fw config to write (default: ./fw.config.json5; packages and users go to ./storage beside it)",
    )
    .option("--into <file>", "Import into the storage of this existing fw config instead")
    .option(
      "--owners <users>",
      "Comma-separated owners of packages whose storage records none (default: who may publish them)",
    )
    .option("--force", "Overwrite the --out file")
    .option("--dry-run", "Check everything and print the report; write nothing")
    .option("--json", "Print the report as JSON")
    .example(
      "  $ fw registry import verdaccio --config /etc/verdaccio/config.yaml --storage /var/lib/verdaccio/storage",
    )
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/import.js");
      await run({
        config: text(flags.config),
        storage: text(flags.storage),
        htpasswd: text(flags.htpasswd),
        out: text(flags.out),
        into: text(flags.into),
        owners: text(flags.owners),
        force: flags.force === true,
        dryRun: flags.dryRun === true,
        json: flags.json === true,
      });
    });

  registerRegistryClientCommands(cli);
  cli
    .command("registry stats", "Packages, versions, storage use and the largest packages, read from storage")
    .option(...CONFIG_FLAG)
    .option("--top <n>", "How many packages to list (default 10)")
    .option("--by <what>", "Rank packages by size or versions (default size)")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/stats.js");
      await run({ ...storeFlags(flags), top: text(flags.top), by: text(flags.by) });
    });

  cli
    .command("registry gc", "List tarballs and attestations no packument references; --apply deletes them")
    .option(...CONFIG_FLAG)
    .option("--apply", "Delete them (default: a dry run that only lists them)")
    .option("--grace <duration>", "Leave objects younger than this, e.g. 30m, 2h, 1d (default 10m, as the server)")
    .option("--json", "Print JSON")
    .action(async (flags: Flags) => {
      const { run } = await import("./commands/registry/gc.js");
      await run({ ...storeFlags(flags), apply: flags.apply === true, grace: text(flags.grace) });
    });

  registerVersionCommands(cli);
  registerSecretsCommands(cli);
  return cli;
}

/**
 * cac matches a command by its first word only, so "registry config init" is handed over as one
 * argument: the leading positional words that spell the longest known command are joined.
 */
function joinCommandWords(argv: readonly string[], cli: CAC): string[] {
  const names = cli.commands.map((command) => command.name);
  const valueFlags = new Set<string>();
  for (const option of [...cli.globalCommand.options, ...cli.commands.flatMap((command) => command.options)]) {
    // `required` is set (true or false) exactly when the option takes a value: `<value>` or `[value]`.
    if (option.required !== undefined)
      for (const flag of option.rawName.match(/--?[A-Za-z][\w-]*/g) ?? []) valueFlags.add(flag);
  }
  const positions: number[] = [];
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] as string;
    if (token === "--") break;
    if (token.startsWith("-") && token !== "-") {
      if (!token.includes("=") && valueFlags.has(token)) index++;
      continue;
    }
    positions.push(index);
  }
  const words = positions.map((index) => argv[index] as string);
  const spelled = (count: number) => words.slice(0, count).join(" ");
  let count = words.length;
  while (count > 0 && !names.includes(spelled(count))) count--;

  const isGroup = (prefix: string) => names.some((name) => name.startsWith(`${prefix} `));
  if (count === 0) {
    if (words.length === 0) return [...argv];
    let group = words.length;
    while (group > 0 && !isGroup(spelled(group))) group--;
    if (group === 0) throw new Error(`unknown command "${words[0]}"; run \`fw --help\` for the list`);
    const prefix = spelled(group);
    const choices = names.filter((name) => name.startsWith(`${prefix} `)).map((name) => name.slice(prefix.length + 1));
    throw new Error(`"fw ${prefix}" needs a command: ${choices.join(", ")}`);
  }
  const command = cli.commands.find((candidate) => candidate.name === spelled(count));
  if (command && command.args.length === 0 && words.length > count && isGroup(spelled(count))) {
    throw new Error(`unknown command "${spelled(count + 1)}"; run \`fw --help\` for the list`);
  }
  const used = new Set(positions.slice(0, count));
  const first = positions[0] as number;
  return [
    ...argv.slice(0, first),
    spelled(count),
    ...argv.slice(first).filter((_, offset) => !used.has(first + offset)),
  ];
}

/** The version in this package's package.json (from `dist/` or `src/`, both one level below it). */
function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
  return typeof pkg === "object" && pkg !== null && "version" in pkg ? String(pkg.version) : "unknown";
}

/**
 * Runs `fw` with `argv` (without the node and script paths). Throws on failure; printing the error
 * and the exit code are the caller's (see `fw.ts`). `registry start` resolves once the server listens.
 */
export async function runCli(argv: readonly string[]): Promise<void> {
  const cli = createCli();
  cli.parse(["node", "fw", ...joinCommandWords(argv, cli)], { run: false });
  restoreTypedValues(cli);
  if (cli.options.help) return;
  if (cli.options.version) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (!cli.matchedCommand) {
    cli.outputHelp();
    return;
  }
  await cli.runMatchedCommand();
}
