import { describeToken, type TokenPermission } from "@fw/auth";
import { print, printJson } from "../../output.js";
import { openAuth } from "./auth-store.js";

export interface TokenOptions {
  config?: string;
  json: boolean;
}

const list = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(",")
        .map((part) => part.trim())
        .filter(Boolean);

/** `fw registry token create <user>`: prints the token once; only its hash is stored. */
export async function runCreate(
  opts: TokenOptions & {
    user: string;
    name?: string;
    description?: string;
    readOnly: boolean;
    expires?: number;
    cidr?: string;
    packages?: string;
    scopes?: string;
    environment?: string;
  },
): Promise<void> {
  const { tokens } = await openAuth(opts.config);
  const permission: TokenPermission | undefined = opts.readOnly ? "read-only" : undefined;
  const packages = list(opts.packages);
  const scopes = list(opts.scopes);
  const { token, record } = await tokens.create(opts.user, {
    ...(opts.name !== undefined && { name: opts.name }),
    ...(opts.description !== undefined && { description: opts.description }),
    readonly: opts.readOnly,
    ...(permission && { packagesAndScopesPermission: permission }),
    ...(opts.expires !== undefined && { expiresInDays: opts.expires }),
    cidr: list(opts.cidr) ?? [],
    ...(packages && { packages }),
    ...(scopes && { scopes }),
    ...(opts.environment !== undefined && { environment: opts.environment }),
  });
  if (opts.json) printJson({ token, ...describeToken(record) });
  else print(`${token}\nkey ${record.key}${record.expires ? `, expires ${record.expires}` : ""}`);
}

/** `fw registry token list <user>`. */
export async function runList(opts: TokenOptions & { user: string }): Promise<void> {
  const { tokens } = await openAuth(opts.config);
  const records = (await tokens.list(opts.user)).map(describeToken);
  if (opts.json) printJson(records);
  else
    print(
      records.length === 0
        ? "no tokens"
        : records
            .map(
              (t) =>
                `${t.prefix}… ${t.key} ${t.name ?? "(unnamed)"}${t.readonly ? " read-only" : ""}${t.expires ? ` expires ${t.expires}` : ""}`,
            )
            .join("\n"),
    );
}

/** `fw registry token revoke <user> <key>` (a key prefix of 6+ characters is enough). */
export async function runRevoke(opts: TokenOptions & { user: string; key: string }): Promise<void> {
  const { tokens } = await openAuth(opts.config);
  const record = await tokens.revoke(opts.user, opts.key);
  if (opts.json) printJson(describeToken(record));
  else print(`revoked ${record.prefix}… (${record.key})`);
}

/** `fw registry token due [--within days]`: tokens and passwords that expire soon or have. */
export async function runDue(opts: TokenOptions & { within?: number }): Promise<void> {
  const { tokens, users } = await openAuth(opts.config);
  const within = { withinDays: opts.within ?? 14 };
  const due = [...(await tokens.due(within)), ...(await users.passwordsDue(within))].sort((a, b) =>
    a.due.localeCompare(b.due),
  );
  if (opts.json) printJson(due);
  else
    print(
      due.length === 0
        ? "nothing due"
        : due
            .map(
              (d) => `${d.overdue ? "OVERDUE" : "due"} ${d.due} ${d.kind} ${d.user}${d.prefix ? ` ${d.prefix}…` : ""}`,
            )
            .join("\n"),
    );
}
