import { z } from "zod";
import { AuthError } from "./errors.js";
import type { Identity } from "./identity.js";
import { type TrustedPublisherOrigin, tokenCoversPackage } from "./tokens.js";

export type Action = "access" | "publish" | "unpublish";
export const ACTIONS: readonly Action[] = ["access", "publish", "unpublish"];

/** Roles that always exist. Only `admin` means something by itself; the others are there to be named in rules. */
export const BUILTIN_ROLES = ["admin", "publisher", "reader"] as const;
export const SPECIAL_PRINCIPALS = ["$all", "$anonymous", "$authenticated"] as const;

const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
const TEAM = /^[a-z0-9][a-z0-9._~-]*:[a-z0-9][a-z0-9._~-]*$/;
/** A package name or a pattern of them: `lodash`, `@acme/web`, `@acme/*`, `**`. */
export const PACKAGE_PATTERN = /^(@[a-z0-9*][a-z0-9._~*-]*\/)?[a-z0-9*][a-z0-9._~*-]*$|^\*\*$/;
const ENVIRONMENT = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const MEMBER = /^([a-z0-9][a-z0-9._-]{0,63}|[a-z0-9][a-z0-9._~-]*:[a-z0-9][a-z0-9._~-]*)$/i;
/** `$all`, `user:alice`, `role:publisher`, `team:acme:devs`, or bare `alice`, `publisher`, `acme:devs`. */
const PRINCIPAL =
  /^(\$all|\$anonymous|\$authenticated|(user:|role:)?[a-z0-9][a-z0-9._-]{0,63}|(team:)?[a-z0-9][a-z0-9._~-]*:[a-z0-9][a-z0-9._~-]*)$/i;

const principalList = z
  .union([z.string(), z.array(z.string())], { error: "expected a list of names or a space-separated string" })
  .transform((value) => (typeof value === "string" ? value.split(/\s+/).filter(Boolean) : value))
  .pipe(
    z.array(
      z.string().regex(PRINCIPAL, {
        error: "expected $all, $anonymous, $authenticated, a user, a role, or a team as org:team",
      }),
    ),
  );

const packageRule = z
  .strictObject({
    access: principalList.optional().meta({ description: "Who may install and view. Missing: inherited." }),
    publish: principalList.optional().meta({ description: "Who may publish new versions. Missing: inherited." }),
    unpublish: principalList
      .optional()
      .meta({ description: "Who may unpublish or deprecate. Missing: inherited, and from publish last." }),
    environments: z
      .array(z.string().regex(ENVIRONMENT, { error: "expected an environment label such as ci or prod" }))
      .min(1)
      .optional()
      .meta({ description: "Publishing and unpublishing need a token of one of these environments." }),
  })
  .meta({ title: "package rule" });

/** The `roles`, `teams` and `packages` sections of the registry config. */
export const policyConfigSchema = z
  .strictObject({
    roles: z
      .record(
        z.string().regex(NAME, { error: "expected a role name (letters, digits, '.', '_', '-')" }),
        z.array(
          z.string().regex(MEMBER, {
            error: "expected a user name or a team as org:team",
          }),
        ),
      )
      .optional()
      .meta({ description: "Role → members (users or org:team). admin, publisher and reader always exist." }),
    teams: z
      .record(
        z.string().regex(TEAM, { error: "expected a team name as org:team, like npm team" }),
        z.array(z.string().regex(NAME, { error: "expected a user name" })),
      )
      .optional()
      .meta({ description: "Team (org:team) → member user names." }),
    packages: z
      .record(
        z
          .string()
          .regex(PACKAGE_PATTERN, { error: 'expected a package name or pattern such as "@acme/*", "*" or "**"' }),
        packageRule,
      )
      .optional()
      .meta({
        description: "Package pattern → who may access, publish and unpublish. The most specific pattern wins.",
      }),
  })
  .meta({ title: "fw access policy" });

export type PolicyConfig = z.input<typeof policyConfigSchema>;

export type Principal =
  | { kind: "special"; name: (typeof SPECIAL_PRINCIPALS)[number] }
  | { kind: "user" | "role" | "team"; name: string };

export interface CompiledRule {
  pattern: string;
  /** Position in the config, the last tie-breaker. */
  index: number;
  access?: string[];
  publish?: string[];
  unpublish?: string[];
  environments?: string[];
  matches(pkg: string): boolean;
}

/** A validated, normalised policy. Build it once at start-up with `parsePolicy`. */
export interface Policy {
  /** Role → lowercased members (user names and `org:team`s); includes the built-in roles. */
  roles: ReadonlyMap<string, readonly string[]>;
  /** `org:team` → lowercased user names. */
  teams: ReadonlyMap<string, readonly string[]>;
  /** Most specific first. */
  rules: readonly CompiledRule[];
}

/** Used for whatever no configured rule says: like Verdaccio's defaults and fw's behaviour before rules. */
export const DEFAULT_RULE: CompiledRule = {
  pattern: "(default)",
  index: Number.MAX_SAFE_INTEGER,
  access: ["$all"],
  publish: ["$authenticated"],
  matches: () => true,
};

/** `*` within a path segment, `**` across: the package patterns of rules and trusted publishers. */
export function globRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === "*" && pattern[i + 1] === "*") {
      source += ".*";
      i++;
    } else if (char === "*") {
      source += "[^/]*";
    } else {
      source += char.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${source}$`);
}

/**
 * Orders patterns most specific first: an exact name beats any wildcard; then more literal characters
 * win (`@acme/web-*` over `@acme/*`, and that over a pattern for every scope); then fewer `**`; then the one written first.
 */
export function compareSpecificity(
  a: Pick<CompiledRule, "pattern" | "index">,
  b: Pick<CompiledRule, "pattern" | "index">,
) {
  const score = (pattern: string) => {
    const exact = pattern.includes("*") ? 0 : 1;
    const literal = pattern.replace(/\*/g, "").length;
    const globstars = (pattern.match(/\*\*/g) ?? []).length;
    return [exact, literal, -globstars];
  };
  const x = score(a.pattern);
  const y = score(b.pattern);
  for (let i = 0; i < x.length; i++) {
    const diff = (y[i] as number) - (x[i] as number);
    if (diff !== 0) return diff;
  }
  return a.index - b.index;
}

export function parsePrincipal(entry: string, roles: ReadonlyMap<string, unknown>): Principal {
  if (entry === "$all" || entry === "$anonymous" || entry === "$authenticated") return { kind: "special", name: entry };
  const lower = entry.toLowerCase();
  if (lower.startsWith("user:")) return { kind: "user", name: lower.slice(5) };
  if (lower.startsWith("role:")) return { kind: "role", name: lower.slice(5) };
  if (lower.startsWith("team:")) return { kind: "team", name: lower.slice(5) };
  if (lower.includes(":")) return { kind: "team", name: lower };
  // A bare name that is a role is the role, never a user of that name: see the README.
  return roles.has(lower) ? { kind: "role", name: lower } : { kind: "user", name: lower };
}

function formatIssues(error: z.ZodError, root: string): string {
  return error.issues
    .map((issue) => {
      const path = [root, ...issue.path.map(String)].filter(Boolean).join(".");
      return `${path}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * Parses → validates → normalises → cross-checks the policy sections of a config. Throws `E_BAD_REQUEST`
 * naming the dotted path of each problem (e.g. `packages.@acme/*.publish.0`), so a server refuses to
 * start with a bad policy. `root` prefixes paths when the sections sit inside a larger config.
 */
export function parsePolicy(input: unknown, root = ""): Policy {
  const parsed = policyConfigSchema.safeParse(input ?? {});
  if (!parsed.success)
    throw new AuthError("E_BAD_REQUEST", `invalid access policy: ${formatIssues(parsed.error, root)}`);
  const config = parsed.data;
  const at = (...path: string[]) => [root, ...path].filter(Boolean).join(".");

  const teams = new Map<string, string[]>();
  for (const [team, members] of Object.entries(config.teams ?? {})) {
    teams.set(team.toLowerCase(), [...new Set(members.map((m) => m.toLowerCase()))]);
  }
  const roles = new Map<string, string[]>(BUILTIN_ROLES.map((role) => [role, []]));
  const problems: string[] = [];
  for (const [role, members] of Object.entries(config.roles ?? {})) {
    const lowered = [...new Set(members.map((m) => m.toLowerCase()))];
    for (const member of lowered) {
      if (member.includes(":") && !teams.has(member)) problems.push(`${at("roles", role)}: unknown team "${member}"`);
    }
    roles.set(role.toLowerCase(), lowered);
  }

  const rules: CompiledRule[] = Object.entries(config.packages ?? {}).map(([pattern, rule], index) => {
    for (const action of ACTIONS) {
      for (const entry of rule[action] ?? []) {
        const principal = parsePrincipal(entry, roles);
        if (principal.kind === "team" && !teams.has(principal.name)) {
          problems.push(`${at("packages", pattern, action)}: unknown team "${principal.name}" (add it under teams)`);
        }
        if (principal.kind === "role" && !roles.has(principal.name)) {
          problems.push(`${at("packages", pattern, action)}: unknown role "${principal.name}" (add it under roles)`);
        }
      }
    }
    const regex = globRegExp(pattern);
    return {
      pattern,
      index,
      ...(rule.access && { access: rule.access }),
      ...(rule.publish && { publish: rule.publish }),
      ...(rule.unpublish && { unpublish: rule.unpublish }),
      ...(rule.environments && { environments: [...new Set(rule.environments)] }),
      matches: (pkg: string) => regex.test(pkg),
    };
  });
  if (problems.length > 0) throw new AuthError("E_BAD_REQUEST", `invalid access policy: ${problems.join("; ")}`);
  return { roles, teams, rules: rules.sort(compareSpecificity) };
}

/** JSON Schema (draft 2020-12) of the policy sections, for the server's config schema and editors. */
export function policyJsonSchema(): object {
  return z.toJSONSchema(policyConfigSchema, { io: "input", target: "draft-2020-12" });
}

export interface AuthorizeRequest {
  identity: Identity;
  action: Action;
  /** Full package name, with its scope: `@acme/web`. */
  pkg: string;
  /**
   * Maintainer names of the package as stored. Absent or empty for a package that does not exist yet:
   * then no ownership check applies (the publisher becomes its first maintainer).
   */
  packageMaintainers?: readonly string[];
  /**
   * The one-time password of this request, already checked with `UserStore.verifySecondFactor`:
   * `"valid"`, `"invalid"`, or absent when none was sent.
   */
  otp?: "valid" | "invalid";
  /**
   * For `publish`: the write adds versions (an `npm publish`), as opposed to changing owners, dist-tags or
   * deprecations, which the server also authorises as `publish`. Tokens minted by trusted publishing may
   * only do the former, so they are refused unless this is `true`.
   */
  newVersion?: boolean;
}

export type DenialCode = "E_UNAUTHORIZED" | "E_FORBIDDEN" | "E_OTP_REQUIRED" | "E_NOT_FOUND";

export interface Decision {
  allowed: boolean;
  /**
   * With `allowed: false`: answer as if the package did not exist (404 with the usual "not found" body,
   * not `reason`), so anonymous callers cannot probe for private names.
   */
  notFound?: boolean;
  /** With `allowed: false`: the error code to answer with. */
  code?: DenialCode;
  /** A sentence for people: why it was allowed or denied, and what to do. */
  reason: string;
  /**
   * The rule whose list decided, that list, and which action's list it is (`publish` when an unpublish
   * followed the publish list); `null` when a check before the rules decided.
   */
  rule: { pattern: string; action: Action; list: readonly string[] } | null;
}

export type CheckName = "token-package" | "token-permission" | "rule" | "environment" | "maintainer" | "otp";

export interface ExplainStep {
  check: CheckName;
  outcome: "pass" | "fail" | "skip";
  detail: string;
}

/** A decision with the whole evaluation: for `fw registry access check`. */
export interface Explanation extends Decision {
  action: Action;
  pkg: string;
  who: string;
  /** Patterns matching the package, most specific first (the built-in default last). */
  candidates: string[];
  steps: ExplainStep[];
}

function describeWho(identity: Identity): string {
  if (identity.kind === "anonymous") return "anonymous";
  return identity.token ? `${identity.name} (token ${identity.token.prefix}…)` : identity.name;
}

/** The list for `action` from the most specific matching rule that has one; unpublish falls back to publish. */
function resolveList(
  policy: Policy,
  pkg: string,
  action: Action,
): { rule: CompiledRule; list: string[]; from: Action } {
  const matching = [...policy.rules.filter((rule) => rule.matches(pkg)), DEFAULT_RULE];
  for (const rule of matching) {
    const list = rule[action];
    if (list) return { rule, list, from: action };
  }
  // Only unpublish reaches here (the default rule has access and publish): it follows publish.
  return resolveList(policy, pkg, "publish");
}

function environmentsFor(policy: Policy, pkg: string): CompiledRule | undefined {
  return policy.rules.find((rule) => rule.matches(pkg) && rule.environments);
}

function memberOf(identity: Identity, principal: Principal): boolean {
  if (principal.kind === "special") {
    if (principal.name === "$all") return true;
    return principal.name === "$anonymous" ? identity.kind === "anonymous" : identity.kind === "user";
  }
  if (identity.kind === "anonymous") return false;
  switch (principal.kind) {
    case "user":
      return identity.name.toLowerCase() === principal.name;
    case "role":
      return identity.roles.includes(principal.name);
    case "team":
      return identity.teams.includes(principal.name);
  }
}

/**
 * Evaluates a request; see the README for the order of the checks. Pure: no storage, no clock, so the
 * same policy gives the same answer on every replica and in `fw registry access check`.
 */
export function explain(policy: Policy, request: AuthorizeRequest): Explanation {
  const { identity, action, pkg } = request;
  const write = action !== "access";
  const steps: ExplainStep[] = [];
  const candidates = [
    ...policy.rules.filter((rule) => rule.matches(pkg)).map((rule) => rule.pattern),
    DEFAULT_RULE.pattern,
  ];
  const base = { action, pkg, who: describeWho(identity), candidates, steps };
  const deny = (code: DenialCode, reason: string, rule: Decision["rule"], notFound = false): Explanation => ({
    ...base,
    allowed: false,
    code,
    reason,
    rule,
    ...(notFound && { notFound: true }),
  });
  const token = identity.kind === "user" ? identity.token : undefined;

  // 1. The token's own limits: they hold whatever the rules say, even for admins.
  if (token) {
    if (!tokenCoversPackage(token, pkg)) {
      const allowedList = [...token.packages, ...token.scopes.map((s) => `${s}/*`)].join(", ");
      steps.push({ check: "token-package", outcome: "fail", detail: `token is limited to ${allowedList}` });
      return deny(
        "E_FORBIDDEN",
        `this token (${token.prefix}…) may only be used for ${allowedList}, not ${pkg}: use a token that covers it`,
        null,
      );
    }
    steps.push({ check: "token-package", outcome: "pass", detail: "token covers the package" });
    if (write && token.permission === "read-only") {
      steps.push({ check: "token-permission", outcome: "fail", detail: "token is read-only" });
      return deny(
        "E_FORBIDDEN",
        `this token (${token.prefix}…) is read-only: ${action} needs a read-write token`,
        null,
      );
    }
    if (token.trustedPublisher && write && (action !== "publish" || request.newVersion !== true)) {
      steps.push({ check: "token-permission", outcome: "fail", detail: "trusted publisher: publish only" });
      return deny(
        "E_FORBIDDEN",
        `this token (${token.prefix}…) was issued to the trusted publisher ${describePublisher(token.trustedPublisher)} and may only publish new versions of ${pkg}, not ${action === "unpublish" ? "unpublish" : "change owners, dist-tags or deprecations"}`,
        null,
      );
    }
    steps.push({ check: "token-permission", outcome: "pass", detail: `token is ${token.permission}` });
  } else {
    steps.push({ check: "token-package", outcome: "skip", detail: "no token" });
    steps.push({ check: "token-permission", outcome: "skip", detail: "no token" });
  }

  // 2. The most specific rule's list for the action. A trusted publisher's token needs none: the registry's
  // trust configuration named this CI identity for this package, and step 1 confined the token to it.
  const publisher = token?.trustedPublisher;
  const admin = identity.kind === "user" && identity.admin;
  let decided: Decision["rule"] = null;
  let allowedBy: string;
  if (publisher) {
    allowedBy = `trusted publisher ${describePublisher(publisher)}`;
    steps.push({ check: "rule", outcome: "pass", detail: `${allowedBy} of ${pkg}` });
  } else {
    const { rule, list, from } = resolveList(policy, pkg, action);
    decided = { pattern: rule.pattern, action: from, list };
    const listText = `${list.length > 0 ? list.join(", ") : "nobody"}${from === action ? "" : ` (its ${from} list)`}`;
    const member = list.some((entry) => memberOf(identity, parsePrincipal(entry, policy.roles)));
    allowedBy = `rule "${rule.pattern}" allows ${listText}${admin && !member ? " (as admin)" : ""}`;
    if (admin && !member) {
      steps.push({ check: "rule", outcome: "pass", detail: `admin; rule "${rule.pattern}" allows ${listText}` });
    } else if (member) {
      steps.push({ check: "rule", outcome: "pass", detail: `rule "${rule.pattern}" allows ${listText}` });
    } else {
      steps.push({ check: "rule", outcome: "fail", detail: `rule "${rule.pattern}" allows ${listText}` });
      if (identity.kind === "anonymous") {
        if (action === "access")
          return deny(
            "E_NOT_FOUND",
            `${pkg} is not visible without logging in (rule "${rule.pattern}")`,
            decided,
            true,
          );
        return deny("E_UNAUTHORIZED", `log in to ${action} ${pkg}`, decided);
      }
      return deny(
        "E_FORBIDDEN",
        `${identity.name} may not ${action} ${pkg}: rule "${rule.pattern}" allows ${listText}`,
        decided,
      );
    }
  }

  // 3. Required token environments, for writes.
  const envRule = write ? environmentsFor(policy, pkg) : undefined;
  if (envRule?.environments) {
    const wanted = envRule.environments.join(" or ");
    if (!token?.environment || !envRule.environments.includes(token.environment)) {
      steps.push({ check: "environment", outcome: "fail", detail: `rule "${envRule.pattern}" needs ${wanted}` });
      const used = token
        ? token.environment
          ? `a "${token.environment}" token`
          : "a token without environment"
        : "a login session";
      return deny(
        "E_FORBIDDEN",
        `${action} of ${pkg} needs a token for environment ${wanted} (rule "${envRule.pattern}"); this request used ${used}`,
        decided,
      );
    }
    steps.push({ check: "environment", outcome: "pass", detail: `token environment "${token.environment}"` });
  } else {
    steps.push({
      check: "environment",
      outcome: "skip",
      detail: write ? "no environment required" : "reads need none",
    });
  }

  // 4. Ownership: changing an existing package needs a maintainer (or an admin).
  const maintainers = (request.packageMaintainers ?? []).map((m) => m.toLowerCase());
  if (write && maintainers.length > 0 && identity.kind === "user") {
    if (publisher) {
      steps.push({ check: "maintainer", outcome: "pass", detail: "trusted publisher of the package" });
    } else if (maintainers.includes(identity.name.toLowerCase())) {
      steps.push({ check: "maintainer", outcome: "pass", detail: `${identity.name} is a maintainer` });
    } else if (admin) {
      steps.push({ check: "maintainer", outcome: "pass", detail: "admin; not a maintainer" });
    } else {
      steps.push({ check: "maintainer", outcome: "fail", detail: `maintainers: ${maintainers.join(", ")}` });
      return deny(
        "E_FORBIDDEN",
        `${identity.name} is not a maintainer of ${pkg}: ask one of ${maintainers.join(", ")} to run \`npm owner add ${identity.name} ${pkg}\``,
        decided,
      );
    }
  } else {
    steps.push({ check: "maintainer", outcome: "skip", detail: write ? "new package" : "reads need none" });
  }

  // 5. Second factor, last: nobody is asked for a code only to be refused afterwards.
  const needsOtp = write && identity.kind === "user" && identity.tfaMode === "auth-and-writes" && !token?.bypass2fa;
  if (needsOtp && request.otp !== "valid") {
    steps.push({
      check: "otp",
      outcome: "fail",
      detail: request.otp === "invalid" ? "wrong or reused code" : "no code",
    });
    return deny(
      "E_OTP_REQUIRED",
      request.otp === "invalid"
        ? "the one-time password is wrong or was already used: try the next code from your authenticator app"
        : `${action} needs a one-time password from your authenticator app (npm: --otp=<code>)`,
      decided,
    );
  }
  steps.push({
    check: "otp",
    outcome: needsOtp ? "pass" : "skip",
    detail: needsOtp ? "valid one-time password" : token?.bypass2fa && write ? "token bypasses 2FA" : "not required",
  });

  return {
    ...base,
    allowed: true,
    reason: `${describeWho(identity)} may ${action} ${pkg}: ${allowedBy}`,
    rule: decided,
  };
}

/** `GitHub Actions acme/web .github/workflows/release.yml@refs/heads/main (environment npm)`. */
export function describePublisher(origin: TrustedPublisherOrigin): string {
  const provider =
    origin.provider === "github" ? "GitHub Actions" : origin.provider === "gitlab" ? "GitLab CI" : origin.issuer;
  const what = origin.repository ?? origin.subject;
  const workflow = origin.workflow ? ` ${origin.workflow}${origin.ref ? `@${origin.ref}` : ""}` : "";
  const environment = origin.environment ? ` (environment ${origin.environment})` : "";
  return `${provider} ${what}${workflow}${environment}`;
}

/** `explain` without the trace: what the server calls on every request. */
export function authorize(policy: Policy, request: AuthorizeRequest): Decision {
  const { allowed, notFound, code, reason, rule } = explain(policy, request);
  return { allowed, reason, rule, ...(notFound && { notFound }), ...(code && { code }) };
}
