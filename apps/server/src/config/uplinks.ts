import { type CompiledRule, policyConfigSchema } from "@fw/auth";
import { z } from "zod";
import type { ConfigIssue } from "./types.js";
import { CREDENTIALS_IN_URL, urlProblem } from "./url.js";

/** Defaults of an uplink's settings, in one place: `normaliseUplinks` fills them in and the JSON Schema shows them. */
export const UPLINK_DEFAULTS = {
  /** Until the upstream's response headers arrive, connecting included. */
  responseTimeoutMs: 10_000,
  /** Longest wait for the next piece of a response body (a stalled transfer). */
  idleTimeoutMs: 10_000,
  /** Whole request, body included (large tarballs on slow links need more). */
  totalTimeoutMs: 120_000,
  retries: 2,
  /** Verdaccio's `maxage` default: cached metadata is revalidated after two minutes. */
  maxAgeMs: 120_000,
  circuitFailures: 3,
  circuitCooldownMs: 10_000,
  takedowns: "remove",
  audit: true,
  search: true,
} as const;

/** Uplink names are storage-key segments (`uplinks/<name>/…`) and words in `proxy` lists. */
export const UPLINK_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type TakedownMode = "remove" | "keep";

/**
 * Credentials sent to an uplink. The token is kept as configured — a literal, the name of an environment
 * variable (`tokenEnv`, read when a request is made) or a `secret:<name>` reference for @fw/secrets — and is
 * never logged; `redactConfig` hides literal tokens.
 */
export interface UplinkAuthConfig {
  /** `Authorization: Bearer <token>`, or `Basic <token>` (the token is then base64 of `user:password`). */
  type: "bearer" | "basic";
  token?: string;
  tokenEnv?: string;
}

/** One upstream registry, after validation with every default filled in. */
export interface UplinkConfig {
  /** Absolute http(s) URL of the registry, without a trailing slash. */
  url: string;
  timeouts: { responseMs: number; idleMs: number; totalMs: number };
  /** Extra attempts of a GET after a network error or a 5xx, with back-off. */
  retries: number;
  /** How long cached metadata is served before it is revalidated with the upstream (If-None-Match). */
  maxAgeMs: number;
  /** After `failures` failed calls in a row the uplink is not asked for `cooldownMs`: cached data is served at once. */
  circuit: { failures: number; cooldownMs: number };
  auth?: UplinkAuthConfig;
  /** What happens to versions a revalidation shows were removed upstream: dropped (default) or kept. */
  takedowns: TakedownMode;
  /** Whether `npm audit` requests are forwarded to this uplink. */
  audit: boolean;
  /**
   * Whether `npm search` (`/-/v1/search`) is forwarded to this uplink and its results shown after the hosted
   * ones. Default `true`; `false` keeps search local and no search text reaches the uplink. Optional so
   * that configs built in code before this setting existed keep working; `normaliseUplinks` fills it in.
   */
  search?: boolean;
}

function expected(what: string) {
  return { error: `expected ${what}` };
}

function strictObject<T extends z.ZodRawShape>(shape: T, what = "an object") {
  const keys = Object.keys(shape).join(", ");
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === "unrecognized_keys" ? `unknown key; expected one of: ${keys}` : `expected ${what}`,
  });
}

function milliseconds(what: string, min: number, fallback: number) {
  const message = `expected ${what} in ms (an integer of at least ${min})`;
  return z.int({ error: message }).min(min, { error: message }).meta({ default: fallback });
}

function uplinkUrlProblem(value: string): string | undefined {
  const problem = urlProblem(value);
  return problem === CREDENTIALS_IN_URL ? `${problem}; use auth.token` : problem;
}

const uplinkUrl = z
  .string(expected("an absolute http(s) URL of an npm registry"))
  .superRefine((value, ctx) => {
    const problem = uplinkUrlProblem(value);
    if (problem)
      ctx.addIssue({ code: "custom", message: `expected an absolute http(s) URL of an npm registry (${problem})` });
  })
  .meta({
    format: "uri",
    description: "The registry's URL; `fw registry config init` writes the one `npm config get registry` prints.",
  });

const uplinkAuth = strictObject({
  type: z.enum(["bearer", "basic"], expected('"bearer" or "basic"')).optional().meta({ default: "bearer" }),
  token: z.string(expected("a token")).min(1, expected("a token")).optional().meta({
    description: 'The token, or "secret:<name>" for a value kept in fw secrets. Prefer tokenEnv or a secret.',
  }),
  tokenEnv: z
    .string(expected("an environment variable name"))
    .regex(ENV_NAME, expected("an environment variable name"))
    .optional()
    .meta({ description: "Environment variable holding the token, read for each request." }),
})
  .superRefine((value, ctx) => {
    if ((value.token === undefined) === (value.tokenEnv === undefined))
      ctx.addIssue({ code: "custom", message: "expected exactly one of token and tokenEnv" });
  })
  .meta({ description: "Credentials for the uplink; never logged." });

const uplinkSchema = strictObject({
  url: uplinkUrl,
  timeouts: strictObject({
    responseMs: milliseconds("the wait for response headers", 1, UPLINK_DEFAULTS.responseTimeoutMs),
    idleMs: milliseconds("the longest pause in a response body", 1, UPLINK_DEFAULTS.idleTimeoutMs),
    totalMs: milliseconds("the longest whole request", 1, UPLINK_DEFAULTS.totalTimeoutMs),
  })
    .partial()
    .optional()
    .meta({ description: "Bounds on every upstream call; past them cached data is served, or 504." }),
  retries: z
    .int(expected("an integer from 0 to 10"))
    .min(0, expected("an integer from 0 to 10"))
    .max(10, expected("an integer from 0 to 10"))
    .optional()
    .meta({ description: "Extra attempts of a GET after a network error or 5xx.", default: UPLINK_DEFAULTS.retries }),
  maxAgeMs: milliseconds("the age after which cached metadata is revalidated", 0, UPLINK_DEFAULTS.maxAgeMs).optional(),
  circuit: strictObject({
    failures: z
      .int(expected("an integer of at least 1"))
      .min(1, expected("an integer of at least 1"))
      .meta({ default: UPLINK_DEFAULTS.circuitFailures }),
    cooldownMs: milliseconds("the pause after repeated failures", 0, UPLINK_DEFAULTS.circuitCooldownMs),
  })
    .partial()
    .optional()
    .meta({ description: "After this many failures in a row the uplink rests for cooldownMs." }),
  auth: uplinkAuth.optional(),
  takedowns: z.enum(["remove", "keep"], expected('"remove" or "keep"')).optional().meta({
    description: "Versions a revalidation shows were removed upstream: dropped with their tarballs, or kept.",
    default: UPLINK_DEFAULTS.takedowns,
  }),
  audit: z
    .boolean(expected("true or false"))
    .optional()
    .meta({ description: "Forward npm audit requests to this uplink.", default: UPLINK_DEFAULTS.audit }),
  search: z.boolean(expected("true or false")).optional().meta({
    description: "Forward npm search to this uplink and show its results after the hosted packages.",
    default: UPLINK_DEFAULTS.search,
  }),
}).meta({ title: "uplink" });

/** The `uplinks` section: name → upstream registry. */
const UPLINK_NAME_MESSAGE = "expected an uplink name (lowercase letters, digits, '-', '_'; at most 64 characters)";

export const uplinksSchema = z
  .record(z.string().regex(UPLINK_NAME, { error: UPLINK_NAME_MESSAGE }), uplinkSchema, {
    error: (issue) => (issue.code === "invalid_key" ? UPLINK_NAME_MESSAGE : "expected an object of uplinks by name"),
  })
  .meta({ description: "Upstream registries that packages not hosted in fw are fetched from, cached and served." });

const proxyList = z
  .array(
    z.string(expected("an uplink name")).regex(UPLINK_NAME, expected("an uplink name")),
    expected("a list of uplink names"),
  )
  .meta({
    description:
      "Uplinks asked, in order, for matching packages not hosted here. [] or no proxy: never asked. The most specific matching rule decides.",
  });

const policyPackages = policyConfigSchema.shape.packages.unwrap();

/** @fw/auth's `packages` rules with one more key, `proxy`, which this module takes out again before the policy sees them. */
export const packagesWithProxySchema = z
  .record(policyPackages.keyType, policyPackages.valueType.extend({ proxy: proxyList.optional() }))
  .meta({
    description:
      "Package pattern → who may access, publish and unpublish, and which uplinks serve it. The most specific pattern wins.",
  });

export type UplinksInput = z.input<typeof uplinksSchema>;
type PackagesInput = z.input<typeof packagesWithProxySchema>;

/** The uplinks with every default filled in; `url` without a trailing slash. */
export function normaliseUplinks(input: UplinksInput): Record<string, UplinkConfig> {
  const out: Record<string, UplinkConfig> = {};
  for (const [name, uplink] of Object.entries(input)) {
    const url = new URL(uplink.url);
    out[name] = {
      url: url.origin + url.pathname.replace(/\/+$/, ""),
      timeouts: {
        responseMs: uplink.timeouts?.responseMs ?? UPLINK_DEFAULTS.responseTimeoutMs,
        idleMs: uplink.timeouts?.idleMs ?? UPLINK_DEFAULTS.idleTimeoutMs,
        totalMs: uplink.timeouts?.totalMs ?? UPLINK_DEFAULTS.totalTimeoutMs,
      },
      retries: uplink.retries ?? UPLINK_DEFAULTS.retries,
      maxAgeMs: uplink.maxAgeMs ?? UPLINK_DEFAULTS.maxAgeMs,
      circuit: {
        failures: uplink.circuit?.failures ?? UPLINK_DEFAULTS.circuitFailures,
        cooldownMs: uplink.circuit?.cooldownMs ?? UPLINK_DEFAULTS.circuitCooldownMs,
      },
      ...(uplink.auth && {
        auth: {
          type: uplink.auth.type ?? "bearer",
          ...(uplink.auth.token !== undefined && { token: uplink.auth.token }),
          ...(uplink.auth.tokenEnv !== undefined && { tokenEnv: uplink.auth.tokenEnv }),
        },
      }),
      takedowns: uplink.takedowns ?? UPLINK_DEFAULTS.takedowns,
      audit: uplink.audit ?? UPLINK_DEFAULTS.audit,
      search: uplink.search ?? UPLINK_DEFAULTS.search,
    };
  }
  return out;
}

/**
 * Splits the `proxy` lists out of the `packages` rules: the rules go to @fw/auth's policy (which knows
 * nothing of uplinks), the lists to `FwConfig.proxy`. Patterns without `proxy` stay in the rules only.
 */
export function splitProxy(packages: PackagesInput): {
  packages: Record<string, Omit<PackagesInput[string], "proxy">>;
  proxy: Record<string, string[]>;
} {
  const rules: Record<string, Omit<PackagesInput[string], "proxy">> = {};
  const proxy: Record<string, string[]> = {};
  for (const [pattern, { proxy: list, ...rule }] of Object.entries(packages)) {
    rules[pattern] = rule;
    if (list !== undefined) proxy[pattern] = [...new Set(list)];
  }
  return { packages: rules, proxy };
}

/** Every `proxy` entry names a configured uplink. */
export function checkProxy(
  proxy: Record<string, string[]> | undefined,
  uplinks: Record<string, UplinkConfig> | undefined,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const [pattern, list] of Object.entries(proxy ?? {})) {
    list.forEach((name, index) => {
      if (!uplinks || !Object.hasOwn(uplinks, name))
        issues.push({
          path: `packages.${pattern}.proxy.${index}`,
          message: `unknown uplink "${name}" (add it under uplinks)`,
        });
    });
  }
  return issues;
}

/**
 * Which uplinks serve a package name: the `proxy` list of the most specific `packages` rule matching it
 * (`rules` are the policy's compiled rules, most specific first), `[]` when that rule has none or no
 * rule matches. Unlike access lists, `proxy` is not
 * inherited from less specific rules: a rule written for a private pattern keeps it off every uplink
 * even when a `**` rule proxies everything else.
 */
export function proxyResolver(
  rules: readonly Pick<CompiledRule, "pattern" | "matches">[],
  proxy: Readonly<Record<string, readonly string[]>>,
): (name: string) => readonly string[] {
  const memo = new Map<string, readonly string[]>();
  return (name) => {
    let found = memo.get(name);
    if (found === undefined) {
      const rule = rules.find((each) => each.matches(name));
      // Patterns are package names, and "constructor" is one: only the map's own entries count.
      found = (rule && Object.hasOwn(proxy, rule.pattern) && proxy[rule.pattern]) || [];
      if (memo.size >= 10_000) memo.clear();
      memo.set(name, found);
    }
    return found;
  };
}
