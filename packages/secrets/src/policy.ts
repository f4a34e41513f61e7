import { BUILTIN_ROLES, compareSpecificity, type Identity, type Policy } from "@fw/auth";
import { z } from "zod";
import { SecretsError } from "./errors.js";
import { DURATION, parseDuration } from "./names.js";

export type SecretAction = "read" | "write";
export const SECRET_ACTIONS: readonly SecretAction[] = ["read", "write"];

const PART =
  /^(\$all|\$authenticated|env:[a-z0-9][a-z0-9._-]{0,31}|(user:|role:)?[a-z0-9][a-z0-9._-]{0,63}|(team:)?[a-z0-9][a-z0-9._~-]*:[a-z0-9][a-z0-9._~-]*)$/i;
const PATTERN_SEGMENT = /^(\*\*|[A-Za-z0-9_*][A-Za-z0-9._*-]{0,99})$/;

const principalList = z
  .union([z.string(), z.array(z.string())], { error: "expected a list of principals or a space-separated string" })
  .transform((value) => (typeof value === "string" ? value.split(/\s+/).filter(Boolean) : value))
  .pipe(
    z.array(
      z.string().refine((entry) => entry.split("+").every((part) => PART.test(part)), {
        error:
          "expected $all, $authenticated, a user, role:<name>, a team as org:team, env:<token environment>, or several joined with + (all must hold)",
      }),
    ),
  );

const secretRule = z
  .strictObject({
    read: principalList.optional().meta({ description: "Who may read values. Missing: inherited; else admins only." }),
    write: principalList
      .optional()
      .meta({ description: "Who may set, rotate and delete. Missing: inherited; else admins only." }),
    rotateEvery: z
      .string()
      .regex(DURATION, { error: "expected a duration such as 12h, 90d or 2w" })
      .optional()
      .meta({ description: "How often matching secrets should be rotated; `fw secrets due` lists the late ones." }),
  })
  .meta({ title: "secret rule" });

/** The `secrets` section of the registry config. */
export const secretsConfigSchema = z
  .strictObject({
    rules: z
      .record(
        z.string().refine((pattern) => pattern.split("/").every((segment) => PATTERN_SEGMENT.test(segment)), {
          error: 'expected a secret name or pattern such as "uplinks/*/token", "storage/*" or "**"',
        }),
        secretRule,
      )
      .optional()
      .meta({
        description:
          "Secret name pattern → who may read and write, and how often to rotate. The most specific pattern wins; admins pass every rule.",
      }),
  })
  .meta({ title: "fw secrets policy" });

export type SecretsConfig = z.input<typeof secretsConfigSchema>;

/** JSON Schema (draft 2020-12) of the `secrets` section, for the server's config schema and editors. */
export function secretsJsonSchema(): object {
  return z.toJSONSchema(secretsConfigSchema, { io: "input", target: "draft-2020-12" });
}

type Part = { kind: "all" | "authenticated" } | { kind: "user" | "role" | "team" | "env"; name: string };

export interface SecretRule {
  pattern: string;
  /** Position in the config, the last tie-breaker. */
  index: number;
  read?: readonly string[];
  write?: readonly string[];
  rotateEvery?: string;
  rotateEveryMs?: number;
  matches(name: string): boolean;
}

/** A validated secrets policy, most specific rule first. Build it once with `parseSecretsPolicy`. */
export interface SecretsPolicy {
  rules: readonly SecretRule[];
  /** Role names a bare principal is read as (built-in and the access policy's). */
  roles: ReadonlySet<string>;
}

export interface SecretDecision {
  allowed: boolean;
  /** Why, for people and the audit trail. */
  reason: string;
  /** The rule whose list decided; `null` for admins or when no rule has a list for the action. */
  rule: string | null;
}

function globRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === "*" && pattern[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (char === "*") source += "[^/]*";
    else source += char.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

function parsePart(entry: string, roles: ReadonlySet<string>): Part {
  if (entry === "$all") return { kind: "all" };
  if (entry === "$authenticated") return { kind: "authenticated" };
  const lower = entry.toLowerCase();
  for (const kind of ["user", "role", "team", "env"] as const) {
    if (lower.startsWith(`${kind}:`)) return { kind, name: lower.slice(kind.length + 1) };
  }
  if (lower.includes(":")) return { kind: "team", name: lower };
  // As in @fw/auth: a bare name that is a role is the role, never a user of that name.
  return roles.has(lower) ? { kind: "role", name: lower } : { kind: "user", name: lower };
}

function holds(identity: Identity, part: Part): boolean {
  if (part.kind === "all") return true;
  if (identity.kind === "anonymous") return false;
  switch (part.kind) {
    case "authenticated":
      return true;
    case "user":
      return identity.name.toLowerCase() === part.name;
    case "role":
      return identity.roles.includes(part.name);
    case "team":
      return identity.teams.includes(part.name);
    case "env":
      return identity.token?.environment?.toLowerCase() === part.name;
  }
}

function formatIssues(error: z.ZodError, root: string): string {
  return error.issues
    .map((issue) => {
      // A bad record key nests its own issue; its message says what was expected.
      const message = issue.code === "invalid_key" ? (issue.issues[0]?.message ?? issue.message) : issue.message;
      return `${[root, ...issue.path.map(String)].filter(Boolean).join(".")}: ${message}`;
    })
    .join("; ");
}

/**
 * Parse → validate → normalise → cross-check the `secrets` config section. Pass the registry's access
 * policy so bare role names and teams are recognised and checked. Errors name the dotted path
 * (`secrets.rules.uplinks/*.read.0`) and throw `E_BAD_REQUEST`, so a server refuses to start.
 */
export function parseSecretsPolicy(input: unknown, options: { access?: Policy; root?: string } = {}): SecretsPolicy {
  const root = options.root ?? "secrets";
  const parsed = secretsConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new SecretsError("E_BAD_REQUEST", `invalid secrets policy: ${formatIssues(parsed.error, root)}`);
  }
  const roles = new Set<string>([...BUILTIN_ROLES, ...(options.access ? options.access.roles.keys() : [])]);
  const problems: string[] = [];
  const rules = Object.entries(parsed.data.rules ?? {}).map(([pattern, rule], index): SecretRule => {
    for (const action of SECRET_ACTIONS) {
      for (const entry of rule[action] ?? []) {
        for (const part of entry.split("+").map((text) => parsePart(text, roles))) {
          const at = `${root}.rules.${pattern}.${action}`;
          if (options.access && part.kind === "team" && !options.access.teams.has(part.name)) {
            problems.push(`${at}: unknown team "${part.name}" (add it under teams)`);
          }
          if (options.access && part.kind === "role" && !roles.has(part.name)) {
            problems.push(`${at}: unknown role "${part.name}" (add it under roles)`);
          }
        }
      }
    }
    const regex = globRegExp(pattern);
    return {
      pattern,
      index,
      ...(rule.read && { read: rule.read }),
      ...(rule.write && { write: rule.write }),
      ...(rule.rotateEvery && {
        rotateEvery: rule.rotateEvery,
        rotateEveryMs: parseDuration(rule.rotateEvery, `${root}.rules.${pattern}.rotateEvery`),
      }),
      matches: (name: string) => regex.test(name),
    };
  });
  if (problems.length > 0) throw new SecretsError("E_BAD_REQUEST", `invalid secrets policy: ${problems.join("; ")}`);
  return { rules: rules.sort(compareSpecificity), roles };
}

/** No rules: only admins read or write. */
export const ADMINS_ONLY: SecretsPolicy = parseSecretsPolicy({});

function describeWho(identity: Identity): string {
  if (identity.kind === "anonymous") return "anonymous";
  return identity.token ? `${identity.name} (token ${identity.token.prefix}…)` : identity.name;
}

/**
 * May `identity` `action` the secret `name`? Admins always may. Otherwise the most specific matching
 * rule that has a list for the action decides; an entry matches when every `+`-joined part holds
 * (`role:deployer+env:prod`: a deployer using a token labelled prod). With no list, only admins may.
 */
export function authorizeSecret(
  policy: SecretsPolicy,
  identity: Identity,
  action: SecretAction,
  name: string,
): SecretDecision {
  const who = describeWho(identity);
  if (identity.kind === "user" && identity.admin) {
    return { allowed: true, reason: `${who} is an admin`, rule: null };
  }
  const rule = policy.rules.find((candidate) => candidate.matches(name) && candidate[action] !== undefined);
  const list = rule?.[action];
  if (!rule || !list) {
    return {
      allowed: false,
      reason: `${who} may not ${action} secret ${name}: no rule gives ${action} access, so only admins may`,
      rule: null,
    };
  }
  const allowed = list.some((entry) =>
    entry.split("+").every((part) => holds(identity, parsePart(part, policy.roles))),
  );
  const listText = list.length > 0 ? list.join(", ") : "nobody";
  return {
    allowed,
    reason: `${allowed ? `${who} may` : `${who} may not`} ${action} secret ${name}: rule "${rule.pattern}" allows ${listText}`,
    rule: rule.pattern,
  };
}

/** The rotation schedule the policy sets for `name`: the most specific matching rule with `rotateEvery`. */
export function rotationFor(policy: SecretsPolicy, name: string): { rotateEvery: string; ms: number } | undefined {
  const rule = policy.rules.find((candidate) => candidate.matches(name) && candidate.rotateEveryMs !== undefined);
  return rule?.rotateEvery && rule.rotateEveryMs !== undefined
    ? { rotateEvery: rule.rotateEvery, ms: rule.rotateEveryMs }
    : undefined;
}
