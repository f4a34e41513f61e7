import type { StorageDriver } from "@fw/storage-r2";
import type { FetchImplementation, JWSHeaderParameters, JWTPayload, JWTVerifyGetKey } from "jose";
import { z } from "zod";
import { AuthError, type AuthErrorCode } from "./errors.js";
import { compareSpecificity, describePublisher, globRegExp, PACKAGE_PATTERN } from "./policy.js";
import { sha256Hex } from "./secrets.js";
import { createJson } from "./storage.js";
import type { TokenRecord, TokenStore, TrustedPublisherOrigin } from "./tokens.js";

/** The issuer of GitHub Actions' ID tokens (`permissions: id-token: write`). */
export const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";
/** The issuer of gitlab.com's CI ID tokens (`id_tokens:` in `.gitlab-ci.yml`). Self-managed GitLab: its own URL. */
export const GITLAB_ISSUER = "https://gitlab.com";

/**
 * Signature algorithms accepted on ID tokens: only asymmetric ones, whose keys the issuer publishes. `none`
 * and the HMAC family (`HS256`…) are refused before any key is fetched: with a public JWKS, an HMAC "secret"
 * is whatever the attacker says it is.
 */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;

/** The token lifetime when the config says nothing: long enough for one `npm publish`, short enough to not matter leaked. */
export const DEFAULT_TOKEN_MINUTES = 15;

/**
 * The audience npm 11 asks the CI for: `npm:` and the registry's host name, without port or path
 * (npm `lib/utils/oidc.js`: `npm:${new URL(registry).hostname}`). Compute it from the registry's
 * configured public URL, never from a request's `Host` header: an attacker chooses that one, and could
 * then replay an ID token minted for another registry.
 */
export function npmAudience(registryUrl: string): string {
  return `npm:${new URL(registryUrl).hostname}`;
}

export type OidcErrorCode =
  /** Not a compact JWS, or unreadable header or claims. */
  | "E_OIDC_MALFORMED"
  /** Signed with `none`, an HMAC or another algorithm outside `ASYMMETRIC_ALGORITHMS`. */
  | "E_OIDC_ALGORITHM"
  /** `iss` is not on the registry's allow-list of issuers. */
  | "E_OIDC_ISSUER"
  /** No key of the issuer matches, or the signature does not verify. */
  | "E_OIDC_SIGNATURE"
  /** Expired, not valid yet, or issued longer ago than `maxTokenAgeSeconds`. */
  | "E_OIDC_EXPIRED"
  /** `aud` is not this registry's audience. */
  | "E_OIDC_AUDIENCE"
  /** A required claim is missing or malformed. */
  | "E_OIDC_CLAIMS"
  /** Valid, but no trusted publisher of the package matches it (or the package trusts none). */
  | "E_OIDC_UNTRUSTED"
  /** Valid and trusted, but already exchanged for this package once. */
  | "E_OIDC_REPLAYED"
  /** The issuer's discovery document or keys could not be fetched in time. */
  | "E_OIDC_ISSUER_UNAVAILABLE";

const STATUS_CODE: Record<OidcErrorCode, AuthErrorCode> = {
  E_OIDC_MALFORMED: "E_UNAUTHORIZED",
  E_OIDC_ALGORITHM: "E_UNAUTHORIZED",
  E_OIDC_ISSUER: "E_UNAUTHORIZED",
  E_OIDC_SIGNATURE: "E_UNAUTHORIZED",
  E_OIDC_EXPIRED: "E_UNAUTHORIZED",
  E_OIDC_AUDIENCE: "E_UNAUTHORIZED",
  E_OIDC_CLAIMS: "E_UNAUTHORIZED",
  E_OIDC_UNTRUSTED: "E_FORBIDDEN",
  E_OIDC_REPLAYED: "E_UNAUTHORIZED",
  E_OIDC_ISSUER_UNAVAILABLE: "E_UNAVAILABLE",
};

/**
 * Why an ID token was not exchanged. `code` is one of the registry's (`E_UNAUTHORIZED` for a token that is
 * no credential, `E_FORBIDDEN` for a valid one this package does not trust, `E_UNAVAILABLE` when the
 * issuer could not be asked), so the server's error map answers it unchanged; `oidcCode` says which check
 * failed, for logs and tests. Messages never contain the ID token.
 */
export class OidcError extends AuthError {
  readonly oidcCode: OidcErrorCode;
  /**
   * For the registry's log, not the response: why each trusted publisher of the package did not match.
   * Kept out of `message` so callers cannot probe a package's trust configuration.
   */
  readonly details: readonly string[];

  constructor(oidcCode: OidcErrorCode, message: string, options: { cause?: unknown; details?: string[] } = {}) {
    super(STATUS_CODE[oidcCode], message, { cause: options.cause });
    this.oidcCode = oidcCode;
    this.details = options.details ?? [];
  }
}

export function isOidcError(error: unknown, oidcCode?: OidcErrorCode): error is OidcError {
  return error instanceof OidcError && (oidcCode === undefined || error.oidcCode === oidcCode);
}

/** Text from a token or a remote document, made safe to put in a message: printable, short. */
function shown(value: unknown, max = 120): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  const clean = text.replace(/[^\x20-\x7e]/g, "?");
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|\[::1\]|localhost)$/i;

/**
 * Why `value` cannot be an issuer or key URL: https only (plain http only on loopback, for tests and local
 * issuers), no credentials, query or fragment.
 */
function issuerUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && LOOPBACK.test(url.hostname))) {
    return "must be https (plain http only on 127.0.0.1, [::1] or localhost)";
  }
  if (url.username || url.password) return "must not contain a user name or password";
  if (url.search || value.includes("?")) return "must not have a query";
  if (url.hash || value.includes("#")) return "must not have a fragment";
  return undefined;
}

const issuerUrl = z
  .string()
  .superRefine((value, ctx) => {
    const problem = issuerUrlProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: `expected an issuer URL: it ${problem}` });
  })
  .meta({ format: "uri" });

const ENVIRONMENT = /^[a-z0-9][a-z0-9._-]{0,31}$/;
const GITHUB_REPOSITORY = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;
const GITLAB_PROJECT = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)+$/;
const WORKFLOW_FILE = /^[A-Za-z0-9_.-]+\.ya?ml$/;
const PIPELINE_PATH = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*\.ya?ml$/;

const claimValue = z.union([z.string(), z.number(), z.boolean()]);

const trustedPublisherSchema = z
  .strictObject({
    provider: z.enum(["github", "gitlab", "custom"]).optional().meta({
      description:
        "Whose claim names `repository`, `workflow` and `environment` mean: GitHub Actions' (default), GitLab CI's, or none (`custom`: only `claims`).",
    }),
    issuer: issuerUrl.optional().meta({
      description: `The ID tokens' \`iss\`. Default: ${GITHUB_ACTIONS_ISSUER} for github, ${GITLAB_ISSUER} for gitlab. Must be under \`issuers\`.`,
    }),
    repository: z.string().optional().meta({
      description: "GitHub `owner/repo` (claim `repository`) or GitLab `group/project` (claim `project_path`).",
    }),
    workflow: z.string().optional().meta({
      description:
        "GitHub: the workflow file, `release.yml` or `.github/workflows/release.yml` (from claim `workflow_ref`). GitLab: the pipeline file, e.g. `.gitlab-ci.yml` (from claim `ci_config_ref_uri`). Missing: any.",
    }),
    environment: z
      .string()
      .min(1)
      .max(255)
      .optional()
      .meta({ description: "The CI deployment environment (claim `environment`). Missing: any, or none." }),
    audience: z
      .string()
      .min(1)
      .optional()
      .meta({ description: "The `aud` expected for this publisher, instead of the registry-wide one." }),
    claims: z
      .record(z.string().min(1), z.union([claimValue, z.array(claimValue).min(1)]))
      .optional()
      .meta({
        description:
          "More claims that must match exactly (a list: any of them), e.g. repository_id, ref, ref_type, runner_environment.",
      }),
    tokenEnvironment: z
      .string()
      .regex(ENVIRONMENT, { error: "expected an environment label such as ci or prod" })
      .optional()
      .meta({ description: "The environment label of the minted token, for package rules with `environments`." }),
  })
  .meta({ title: "trusted publisher" });

const issuerEntry = z.union([
  issuerUrl,
  z.strictObject({
    issuer: issuerUrl,
    jwksUri: issuerUrl
      .optional()
      .meta({ description: "Where the issuer's keys are; missing: from its /.well-known/openid-configuration." }),
  }),
]);

/** The `trustedPublishing` section of the registry config (see the README's "Trusted publishing"). */
export const trustedPublishingConfigSchema = z
  .strictObject({
    issuers: z
      .array(issuerEntry)
      .min(1)
      .optional()
      .meta({
        description: `OIDC issuers the registry accepts ID tokens from and fetches keys of. Default: ${GITHUB_ACTIONS_ISSUER} and ${GITLAB_ISSUER}.`,
      }),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .meta({ description: "Accepted `aud` values. Default: npm:<host of the registry's public URL>, as npm asks." }),
    tokenMinutes: z
      .number()
      .int()
      .min(1)
      .max(60)
      .optional()
      .meta({ description: `Lifetime of minted publish tokens, in minutes. Default ${DEFAULT_TOKEN_MINUTES}.` }),
    maxTokenAgeSeconds: z
      .number()
      .int()
      .min(30)
      .max(3600)
      .optional()
      .meta({ description: "ID tokens issued (`iat`) longer ago than this are refused. Default 900." }),
    clockToleranceSeconds: z
      .number()
      .int()
      .min(0)
      .max(300)
      .optional()
      .meta({ description: "Clock skew allowed on exp, nbf and iat. Default 60." }),
    packages: z
      .record(
        z
          .string()
          .regex(PACKAGE_PATTERN, { error: 'expected a package name or pattern such as "@acme/web" or "@acme/*"' }),
        z.array(trustedPublisherSchema).min(1),
      )
      .optional()
      .meta({ description: "Package (or pattern; the most specific wins) → the CI identities that may publish it." }),
  })
  .meta({ title: "fw trusted publishing" });

export type TrustedPublishingInput = z.input<typeof trustedPublishingConfigSchema>;

export type ClaimValue = string | number | boolean;

/** A trusted publisher, validated and normalised. */
export interface TrustedPublisher {
  provider: "github" | "gitlab" | "custom";
  issuer: string;
  repository?: string;
  /** Normalised: GitHub's always `.github/workflows/<file>`. */
  workflow?: string;
  environment?: string;
  audience?: string;
  /** Claim → accepted values. */
  claims: Readonly<Record<string, readonly ClaimValue[]>>;
  tokenEnvironment?: string;
}

export interface IssuerConfig {
  issuer: string;
  /** Skips discovery when set. */
  jwksUri?: string;
}

export interface TrustedPackageRule {
  pattern: string;
  index: number;
  publishers: readonly TrustedPublisher[];
  matches(pkg: string): boolean;
}

/** A validated trusted-publishing config. Build it once at start-up with `parseTrustedPublishing`. */
export interface TrustedPublishingConfig {
  issuers: readonly IssuerConfig[];
  /** Accepted audiences; empty: the caller of `TrustedPublishing` supplies them. */
  audience: readonly string[];
  tokenMinutes: number;
  maxTokenAgeSeconds: number;
  clockToleranceSeconds: number;
  /** Most specific first. */
  packages: readonly TrustedPackageRule[];
}

function formatIssues(error: z.ZodError, root: string): string {
  return error.issues
    .map((issue) => `${[root, ...issue.path.map(String)].filter(Boolean).join(".")}: ${issue.message}`)
    .join("; ");
}

function normaliseWorkflow(provider: "github" | "gitlab", workflow: string): string | undefined {
  if (provider === "github") {
    const file = workflow.startsWith(".github/workflows/") ? workflow.slice(".github/workflows/".length) : workflow;
    return WORKFLOW_FILE.test(file) ? `.github/workflows/${file}` : undefined;
  }
  const path = workflow.replace(/^\//, "");
  return PIPELINE_PATH.test(path) ? path : undefined;
}

/**
 * Parses → validates → normalises → cross-checks the trusted-publishing section of a config. Throws
 * `E_BAD_REQUEST` naming the dotted path of each problem (e.g. `packages.@acme/web.0.repository`), so a
 * server refuses to start with a bad one. `root` prefixes paths when the section sits in a larger config.
 */
export function parseTrustedPublishing(input: unknown, root = ""): TrustedPublishingConfig {
  const parsed = trustedPublishingConfigSchema.safeParse(input ?? {});
  if (!parsed.success) {
    throw new AuthError("E_BAD_REQUEST", `invalid trusted publishing config: ${formatIssues(parsed.error, root)}`);
  }
  const config = parsed.data;
  const at = (...path: (string | number)[]) => [root, ...path.map(String)].filter(Boolean).join(".");
  const problems: string[] = [];

  const issuers: IssuerConfig[] = (config.issuers ?? [GITHUB_ACTIONS_ISSUER, GITLAB_ISSUER]).map((entry) =>
    typeof entry === "string" ? { issuer: entry } : { ...entry },
  );
  const allowed = new Set(issuers.map((entry) => entry.issuer));

  const packages: TrustedPackageRule[] = Object.entries(config.packages ?? {}).map(([pattern, list], index) => {
    const publishers = list.map((entry, i): TrustedPublisher => {
      const where = (field: string) => at("packages", pattern, i, field);
      const provider = entry.provider ?? "github";
      const issuer = entry.issuer ?? (provider === "gitlab" ? GITLAB_ISSUER : GITHUB_ACTIONS_ISSUER);
      if (provider === "custom" && entry.issuer === undefined) {
        problems.push(`${where("issuer")}: a custom publisher needs its issuer`);
      } else if (!allowed.has(issuer)) {
        problems.push(`${where("issuer")}: "${issuer}" is not under issuers (add it there to trust its tokens)`);
      }
      let workflow: string | undefined;
      if (provider === "custom") {
        for (const field of ["repository", "workflow", "environment"] as const) {
          if (entry[field] !== undefined) {
            problems.push(`${where(field)}: a custom publisher has no preset claims: name them under claims`);
          }
        }
        if (Object.keys(entry.claims ?? {}).length === 0) {
          problems.push(
            `${where("claims")}: a custom publisher needs claims to match (e.g. sub), or any token of the issuer would do`,
          );
        }
      } else {
        const shape = provider === "github" ? GITHUB_REPOSITORY : GITLAB_PROJECT;
        if (entry.repository === undefined || !shape.test(entry.repository)) {
          problems.push(
            `${where("repository")}: expected ${provider === "github" ? "owner/repo" : "group/project"}, which a ${provider} publisher needs`,
          );
        }
        if (entry.workflow !== undefined) {
          workflow = normaliseWorkflow(provider, entry.workflow);
          if (workflow === undefined) {
            problems.push(
              `${where("workflow")}: expected ${provider === "github" ? "a workflow file such as release.yml or .github/workflows/release.yml" : "a pipeline file such as .gitlab-ci.yml"}`,
            );
          }
        }
      }
      const claims: Record<string, ClaimValue[]> = {};
      for (const [name, value] of Object.entries(entry.claims ?? {})) {
        claims[name] = Array.isArray(value) ? value : [value];
      }
      return {
        provider,
        issuer,
        ...(entry.repository !== undefined && { repository: entry.repository }),
        ...(workflow !== undefined && { workflow }),
        ...(entry.environment !== undefined && { environment: entry.environment }),
        ...(entry.audience !== undefined && { audience: entry.audience }),
        claims,
        ...(entry.tokenEnvironment !== undefined && { tokenEnvironment: entry.tokenEnvironment }),
      };
    });
    const regex = globRegExp(pattern);
    return { pattern, index, publishers, matches: (pkg: string) => regex.test(pkg) };
  });
  if (problems.length > 0) {
    throw new AuthError("E_BAD_REQUEST", `invalid trusted publishing config: ${problems.join("; ")}`);
  }
  const audience = config.audience === undefined ? [] : [config.audience].flat();
  return {
    issuers,
    audience,
    tokenMinutes: config.tokenMinutes ?? DEFAULT_TOKEN_MINUTES,
    maxTokenAgeSeconds: config.maxTokenAgeSeconds ?? 900,
    clockToleranceSeconds: config.clockToleranceSeconds ?? 60,
    packages: packages.sort(compareSpecificity),
  };
}

/** JSON Schema (draft 2020-12) of the trusted-publishing section, for the server's config schema and editors. */
export function trustedPublishingJsonSchema(): object {
  return z.toJSONSchema(trustedPublishingConfigSchema, { io: "input", target: "draft-2020-12" });
}

/** The trusted publishers of `pkg`: those of the most specific matching pattern; empty when none matches. */
export function trustedPublishersFor(config: TrustedPublishingConfig, pkg: string): readonly TrustedPublisher[] {
  return config.packages.find((rule) => rule.matches(pkg))?.publishers ?? [];
}

export interface OidcVerifierOptions {
  /** The allow-list: ID tokens whose `iss` is not here are refused before anything is fetched. */
  issuers: readonly (string | IssuerConfig)[];
  /**
   * Time limit of each request to an issuer (discovery document, keys), in ms. Default 5000. An issuer
   * that does not answer in time makes the exchange fail with `E_OIDC_ISSUER_UNAVAILABLE`, not hang.
   */
  timeoutMs?: number;
  /** How long fetched keys are used before they are fetched again, in ms. Default 600000 (10 minutes). */
  jwksCacheMs?: number;
  /**
   * After a fetch, a token naming an unknown key refetches only once this long has passed, in ms. Default
   * 30000: key rotations are picked up quickly, and tokens with made-up key ids cannot flood the issuer.
   */
  jwksCooldownMs?: number;
  /** How long a discovery document (and so `jwks_uri`) is kept, in ms. Default 3600000 (an hour). */
  discoveryCacheMs?: number;
  /** ID tokens issued longer ago than this are refused, in seconds. Default 900. */
  maxTokenAgeSeconds?: number;
  /** Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. Default 60. */
  clockToleranceSeconds?: number;
  /** Replaces the global `fetch` for discovery and keys (e.g. in a Worker with a service binding). */
  fetch?: typeof fetch;
  /** Milliseconds since the epoch, for token times; injectable for tests. Default `Date.now`. */
  clock?: () => number;
}

/** An ID token whose signature, issuer, audience and times were checked. */
export interface VerifiedIdToken {
  issuer: string;
  claims: JWTPayload;
  algorithm: string;
  keyId?: string;
}

interface Discovery {
  keys: Promise<JWTVerifyGetKey>;
  /** When it was found; unset while in flight. */
  at?: number;
}

type Jose = typeof import("jose");
let jose: Promise<Jose> | undefined;

/**
 * jose is loaded when the first ID token is verified: a registry that never sees trusted publishing
 * does not keep its modules in memory (a few MB of heap and code, measured).
 */
function loadJose(): Promise<Jose> {
  jose ??= import("jose");
  return jose;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 16_384;
const MAX_DOCUMENT_BYTES = 1_048_576;

function unavailable(issuer: string, what: string, error: unknown, timeoutMs: number): OidcError {
  // jose's JWKSTimeout (known by its code: jose is loaded lazily), or fetch's own time limit.
  const timedOut =
    error instanceof Error &&
    ((error as { code?: unknown }).code === "ERR_JWKS_TIMEOUT" ||
      error.name === "TimeoutError" ||
      error.name === "AbortError");
  const why = timedOut
    ? `no answer within ${timeoutMs} ms`
    : error instanceof OidcError
      ? error.message
      : shown(error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : error);
  return new OidcError(
    "E_OIDC_ISSUER_UNAVAILABLE",
    `could not fetch the ${what} of the OIDC issuer ${issuer} (${why}): try again later`,
    { cause: error },
  );
}

/**
 * Verifies CI ID tokens (OIDC JWTs) against the keys their issuer publishes, with `jose`. Only issuers on
 * the allow-list are contacted; each one's discovery document and keys are cached, every request to it is
 * time-limited, and only asymmetric signatures are accepted.
 */
export class OidcVerifier {
  private readonly allowed: ReadonlyMap<string, IssuerConfig>;
  private readonly timeoutMs: number;
  private readonly jwksCacheMs: number;
  private readonly jwksCooldownMs: number;
  private readonly discoveryCacheMs: number;
  private readonly maxTokenAgeSeconds: number;
  private readonly clockToleranceSeconds: number;
  private readonly fetch: typeof fetch;
  private readonly clock: () => number;
  private readonly discovered = new Map<string, Discovery>();
  /** One key resolver per `jwks_uri`, so rediscovery keeps jose's key cache. */
  private readonly resolvers = new Map<string, JWTVerifyGetKey>();

  constructor(options: OidcVerifierOptions) {
    this.allowed = new Map(
      options.issuers.map((entry) => {
        const config = typeof entry === "string" ? { issuer: entry } : entry;
        const problem = issuerUrlProblem(config.issuer) ?? (config.jwksUri && issuerUrlProblem(config.jwksUri));
        if (problem) throw new AuthError("E_BAD_REQUEST", `OIDC issuer ${shown(config.issuer)}: ${problem}`);
        return [config.issuer, config];
      }),
    );
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.jwksCacheMs = options.jwksCacheMs ?? 600_000;
    this.jwksCooldownMs = options.jwksCooldownMs ?? 30_000;
    this.discoveryCacheMs = options.discoveryCacheMs ?? 3_600_000;
    this.maxTokenAgeSeconds = options.maxTokenAgeSeconds ?? 900;
    this.clockToleranceSeconds = options.clockToleranceSeconds ?? 60;
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.clock = options.clock ?? Date.now;
  }

  /**
   * The verified claims of `idToken`, or an `OidcError` saying which check failed. `audience`: the `aud`
   * values accepted (any one of them must be in the token's).
   */
  async verify(idToken: string, options: { audience: string | readonly string[] }): Promise<VerifiedIdToken> {
    const audience = [options.audience].flat();
    if (audience.length === 0) throw new AuthError("E_BAD_REQUEST", "no audience to check ID tokens against");
    if (typeof idToken !== "string" || idToken.length > MAX_TOKEN_LENGTH || !TOKEN_SHAPE.test(idToken)) {
      throw new OidcError("E_OIDC_MALFORMED", "the OIDC ID token is not a signed JWT (header.payload.signature)");
    }
    const { decodeJwt, decodeProtectedHeader, errors, jwtVerify } = await loadJose();
    let header: JWSHeaderParameters;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(idToken) as JWSHeaderParameters;
      unverified = decodeJwt(idToken);
    } catch (error) {
      throw new OidcError("E_OIDC_MALFORMED", "the OIDC ID token's header or claims are not valid JSON", {
        cause: error,
      });
    }
    const algorithm = header.alg;
    if (typeof algorithm !== "string" || !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new OidcError(
        "E_OIDC_ALGORITHM",
        `OIDC ID tokens signed with "${shown(algorithm, 20)}" are not accepted: only ${ASYMMETRIC_ALGORITHMS.join(", ")}`,
      );
    }
    const issuer = unverified.iss;
    const config = typeof issuer === "string" ? this.allowed.get(issuer) : undefined;
    if (!config) {
      throw new OidcError(
        "E_OIDC_ISSUER",
        issuer === undefined
          ? "the OIDC ID token has no issuer (iss)"
          : `this registry does not accept OIDC ID tokens from the issuer "${shown(issuer)}"`,
      );
    }
    const keys = await this.discover(config);
    try {
      const { payload, protectedHeader } = await jwtVerify(idToken, keys, {
        issuer: config.issuer,
        audience,
        algorithms: [...ASYMMETRIC_ALGORITHMS],
        maxTokenAge: this.maxTokenAgeSeconds,
        clockTolerance: this.clockToleranceSeconds,
        requiredClaims: ["exp", "sub"],
        currentDate: new Date(this.clock()),
      });
      return {
        issuer: config.issuer,
        claims: payload,
        algorithm: protectedHeader.alg,
        ...(protectedHeader.kid !== undefined && { keyId: protectedHeader.kid }),
      };
    } catch (error) {
      throw this.explainFailure(errors, error, config.issuer, audience);
    }
  }

  private explainFailure(errors: Jose["errors"], error: unknown, issuer: string, audience: readonly string[]): unknown {
    if (error instanceof OidcError) return error;
    if (error instanceof errors.JWTExpired) {
      const exp = typeof error.payload.exp === "number" ? new Date(error.payload.exp * 1000).toISOString() : "";
      return new OidcError(
        "E_OIDC_EXPIRED",
        error.claim === "iat"
          ? `the OIDC ID token was issued more than ${this.maxTokenAgeSeconds} s ago: request a fresh one`
          : `the OIDC ID token expired${exp ? ` at ${exp}` : ""}: request a fresh one`,
      );
    }
    if (error instanceof errors.JWTClaimValidationFailed) {
      if (error.claim === "aud") {
        return new OidcError(
          "E_OIDC_AUDIENCE",
          `the OIDC ID token is for the audience ${shown(error.payload.aud ?? "(none)")}, not this registry's ${audience.join(" or ")}: request it with that audience (npm does when its registry setting is this registry)`,
        );
      }
      if (error.claim === "nbf") return new OidcError("E_OIDC_EXPIRED", "the OIDC ID token is not valid yet (nbf)");
      if (error.claim === "iss") {
        return new OidcError("E_OIDC_ISSUER", `the OIDC ID token's issuer is not ${issuer}`);
      }
      return new OidcError("E_OIDC_CLAIMS", `the OIDC ID token's "${shown(error.claim, 40)}" claim is ${error.reason}`);
    }
    if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
      return new OidcError(
        "E_OIDC_SIGNATURE",
        `the OIDC ID token was signed with a key the issuer ${issuer} does not publish`,
      );
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      return new OidcError(
        "E_OIDC_SIGNATURE",
        `the OIDC ID token's signature does not verify with the keys of the issuer ${issuer}`,
      );
    }
    if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
      return new OidcError("E_OIDC_ALGORITHM", "the OIDC ID token's algorithm does not fit the issuer's key");
    }
    if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
      return new OidcError("E_OIDC_MALFORMED", `the OIDC ID token is malformed: ${shown(error.message)}`);
    }
    return error;
  }

  /** The issuer's key resolver, from its configured `jwksUri` or its discovery document; cached. */
  private discover(config: IssuerConfig): Promise<JWTVerifyGetKey> {
    const cached = this.discovered.get(config.issuer);
    // An in-flight discovery is shared by every caller; a finished one is kept for discoveryCacheMs.
    if (cached && (cached.at === undefined || this.clock() - cached.at < this.discoveryCacheMs)) return cached.keys;
    const entry: Discovery = {
      keys: (async () => {
        const jwksUri = config.jwksUri ?? (await this.fetchJwksUri(config.issuer));
        return this.resolver(await loadJose(), config.issuer, jwksUri);
      })(),
    };
    this.discovered.set(config.issuer, entry);
    entry.keys.then(
      () => {
        entry.at = this.clock();
      },
      // A failure is not remembered: the next exchange asks again (each try is time-limited).
      () => {
        if (this.discovered.get(config.issuer) === entry) this.discovered.delete(config.issuer);
      },
    );
    return entry.keys;
  }

  private async fetchJwksUri(issuer: string): Promise<string> {
    const url = `${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
    let document: unknown;
    try {
      const response = await this.fetch(url, {
        headers: { accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (response.status !== 200) throw new Error(`HTTP ${response.status} from ${url}`);
      const text = await response.text();
      if (text.length > MAX_DOCUMENT_BYTES) throw new Error(`${url} is larger than 1 MiB`);
      document = JSON.parse(text);
    } catch (error) {
      throw unavailable(issuer, "discovery document", error, this.timeoutMs);
    }
    const { issuer: stated, jwks_uri: jwksUri } = (document ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
    // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was fetched for.
    if (stated !== issuer) {
      throw unavailable(issuer, "discovery document", new Error(`it names the issuer ${shown(stated)}`), 0);
    }
    const problem = typeof jwksUri === "string" ? issuerUrlProblem(jwksUri) : "is missing";
    if (problem || typeof jwksUri !== "string") {
      throw unavailable(issuer, "discovery document", new Error(`its jwks_uri ${problem}`), 0);
    }
    return jwksUri;
  }

  private resolver(
    { createRemoteJWKSet, customFetch, errors }: Jose,
    issuer: string,
    jwksUri: string,
  ): JWTVerifyGetKey {
    const existing = this.resolvers.get(jwksUri);
    if (existing) return existing;
    const remote = createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.timeoutMs,
      cacheMaxAge: this.jwksCacheMs,
      cooldownDuration: this.jwksCooldownMs,
      [customFetch]: this.fetch as FetchImplementation,
    });
    const keys: JWTVerifyGetKey = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (error) {
        // Key selection failures are the token's fault; anything else is fetching the keys.
        if (
          error instanceof errors.JWKSNoMatchingKey ||
          error instanceof errors.JWKSMultipleMatchingKeys ||
          error instanceof errors.JOSENotSupported
        ) {
          throw error;
        }
        throw unavailable(issuer, "keys (JWKS)", error, this.timeoutMs);
      }
    };
    this.resolvers.set(jwksUri, keys);
    return keys;
  }
}

/** The outcome of matching verified claims against one trusted publisher. */
export type PublisherMatch =
  | { ok: true; publisher: TrustedPublisher; origin: TrustedPublisherOrigin; principal: string }
  | { ok: false; publisher: TrustedPublisher; mismatch: string };

function claimText(claims: JWTPayload, name: string): string | undefined {
  const value = claims[name];
  return typeof value === "string" ? value : undefined;
}

/** `owner/repo/.github/workflows/release.yml@refs/heads/main` → repository, path and ref. */
function parseGithubWorkflowRef(value: string): { project: string; path: string; ref: string } | undefined {
  const match = /^([^/]+\/[^/]+)\/([^@]+)@(.+)$/.exec(value);
  return match ? { project: match[1] as string, path: match[2] as string, ref: match[3] as string } : undefined;
}

/** `gitlab.com/group/project//.gitlab-ci.yml@refs/heads/main` → project, path and ref. */
function parseGitlabConfigRef(value: string): { project: string; path: string; ref: string } | undefined {
  const match = /^[^/]+\/(.+?)\/\/([^@]+)@(.+)$/.exec(value);
  return match ? { project: match[1] as string, path: match[2] as string, ref: match[3] as string } : undefined;
}

function sameText(a: string | undefined, b: string): boolean {
  return a !== undefined && a.toLowerCase() === b.toLowerCase();
}

/**
 * Whether verified `claims` are those of `publisher`: issuer, audience (the publisher's own, else
 * `audience`), then the provider's claims (GitHub: `repository`, `workflow_ref`, `environment`; GitLab:
 * `project_path`, `ci_config_ref_uri`, `environment`) and every listed claim. Repository and
 * environment names compare without case, as GitHub and GitLab treat them; workflow paths exactly.
 */
export function matchTrustedPublisher(
  publisher: TrustedPublisher,
  claims: JWTPayload,
  audience: readonly string[],
): PublisherMatch {
  const fail = (mismatch: string): PublisherMatch => ({ ok: false, publisher, mismatch });
  if (claims.iss !== publisher.issuer) return fail(`issuer ${shown(claims.iss)} is not ${publisher.issuer}`);
  const expected = publisher.audience !== undefined ? [publisher.audience] : audience;
  const aud = [claims.aud ?? []].flat();
  if (!aud.some((value) => expected.includes(value))) {
    return fail(`audience ${shown(aud.join(", "))} is not ${expected.join(" or ")}`);
  }
  const subject = typeof claims.sub === "string" ? claims.sub : "";
  let repository: string | undefined;
  let workflow: string | undefined;
  let ref = claimText(claims, "ref");
  if (publisher.provider !== "custom") {
    const github = publisher.provider === "github";
    const repoClaim = github ? "repository" : "project_path";
    repository = claimText(claims, repoClaim);
    if (!sameText(repository, publisher.repository ?? "")) {
      return fail(`${repoClaim} ${shown(repository ?? "(none)")} is not ${publisher.repository}`);
    }
    const refClaim = github ? "workflow_ref" : "ci_config_ref_uri";
    const refValue = claimText(claims, refClaim);
    if (refValue !== undefined && repository !== undefined) {
      const parsed = github ? parseGithubWorkflowRef(refValue) : parseGitlabConfigRef(refValue);
      if (parsed && sameText(parsed.project, repository)) {
        workflow = parsed.path;
        ref ??= parsed.ref;
      }
    }
    if (publisher.workflow !== undefined && workflow !== publisher.workflow) {
      return fail(`${refClaim} ${shown(refValue ?? "(none)")} is not of ${publisher.workflow}`);
    }
    if (publisher.environment !== undefined && !sameText(claimText(claims, "environment"), publisher.environment)) {
      return fail(`environment ${shown(claimText(claims, "environment") ?? "(none)")} is not ${publisher.environment}`);
    }
  }
  for (const [name, values] of Object.entries(publisher.claims)) {
    const value = claims[name];
    const primitive = typeof value === "string" || typeof value === "number" || typeof value === "boolean";
    if (!primitive || !values.some((accepted) => String(accepted) === String(value))) {
      return fail(`claim ${name} ${shown(value ?? "(none)")} is not ${values.map(String).join(" or ")}`);
    }
  }
  const environment = claimText(claims, "environment");
  const origin: TrustedPublisherOrigin = {
    provider: publisher.provider,
    issuer: publisher.issuer,
    subject,
    ...(repository !== undefined && { repository }),
    ...(workflow !== undefined && { workflow }),
    ...(ref !== undefined && { ref }),
    ...(environment !== undefined && { environment }),
    ...(typeof claims.jti === "string" && { jti: claims.jti }),
  };
  const who =
    publisher.provider === "custom"
      ? `${new URL(publisher.issuer).host}:${subject}`
      : `${publisher.provider}:${repository}`;
  const principal = `oidc:${who.replace(/[^\x21-\x7e]/g, "_")}`.slice(0, 205);
  return { ok: true, publisher, origin, principal };
}

export interface TrustedPublishingOptions {
  config: TrustedPublishingConfig;
  /** Where minted tokens are stored; the server's own, so its `verify` finds them. */
  tokens: TokenStore;
  /** Where exchanged ID tokens are remembered (`oidc/exchanged/…`), so each is exchanged once per package. */
  storage: StorageDriver;
  /**
   * Accepted `aud` values when the config has no `audience`: `npmAudience(publicUrl)` with the registry's
   * configured public URL (never the request's `Host`).
   */
  audience?: string | readonly string[];
  /** Default: one built from the config's issuers and limits. */
  verifier?: OidcVerifier;
  clock?: () => number;
}

export interface ExchangeResult {
  /** The registry token to answer with: npm reads `{ "token": … }`. */
  token: string;
  record: TokenRecord;
  /** When the token stops working (ISO time). */
  expires: string;
  /** The token's owner, `oidc:github:acme/web`: for the audit trail's actor. */
  principal: string;
  origin: TrustedPublisherOrigin;
  publisher: TrustedPublisher;
}

/**
 * npm's trusted publishing: exchanges a CI's OIDC ID token for a registry token that may publish one
 * package for a few minutes. Verifies the token (signature, issuer, audience, times), matches its claims
 * against the package's trusted publishers, refuses a second exchange of the same token for the same
 * package, and mints the token with `TokenStore.createForTrustedPublisher`.
 */
export class TrustedPublishing {
  private readonly config: TrustedPublishingConfig;
  private readonly tokens: TokenStore;
  private readonly storage: StorageDriver;
  private readonly audience: readonly string[];
  private readonly verifier: OidcVerifier;
  private readonly clock: () => number;

  constructor(options: TrustedPublishingOptions) {
    this.config = options.config;
    this.tokens = options.tokens;
    this.storage = options.storage;
    this.audience = options.config.audience.length > 0 ? options.config.audience : [options.audience ?? []].flat();
    if (this.audience.length === 0) {
      throw new AuthError(
        "E_BAD_REQUEST",
        "trusted publishing needs an audience: npmAudience(the registry's public URL)",
      );
    }
    this.clock = options.clock ?? Date.now;
    this.verifier =
      options.verifier ??
      new OidcVerifier({
        issuers: options.config.issuers,
        maxTokenAgeSeconds: options.config.maxTokenAgeSeconds,
        clockToleranceSeconds: options.config.clockToleranceSeconds,
        clock: this.clock,
      });
  }

  /** Whether any trusted publisher is configured for `pkg` (e.g. to say so in its packument or CLI). */
  trusts(pkg: string): boolean {
    return trustedPublishersFor(this.config, pkg).length > 0;
  }

  /**
   * The route's whole job: `idToken` is the bearer npm sent to
   * `POST /-/npm/v1/oidc/token/exchange/package/<name>`, `pkg` the decoded name. Throws `OidcError`.
   */
  async exchange(request: { pkg: string; idToken: string }): Promise<ExchangeResult> {
    const { pkg } = request;
    const publishers = trustedPublishersFor(this.config, pkg);
    const audience = [...new Set([...this.audience, ...publishers.flatMap((p) => (p.audience ? [p.audience] : []))])];
    // Verified before the package's trust is looked at, so callers without a valid ID token learn nothing.
    const verified = await this.verifier.verify(request.idToken, { audience });
    const claims = verified.claims;
    const results = publishers.map((publisher) => matchTrustedPublisher(publisher, claims, this.audience));
    const match = results.find((result) => result.ok);
    if (!match?.ok) {
      const seen = describeClaims(claims);
      throw new OidcError(
        "E_OIDC_UNTRUSTED",
        `${pkg} does not trust this CI identity (${seen}) to publish it: a registry administrator can add it under trustedPublishing.packages`,
        {
          details:
            results.length === 0
              ? [`${pkg} has no trusted publishers`]
              : results.map((result, i) => `publisher ${i}: ${result.ok ? "matched" : result.mismatch}`),
        },
      );
    }
    if (typeof claims.jti === "string") {
      const key = `oidc/exchanged/${sha256Hex(`${verified.issuer}\n${claims.jti}\n${pkg}`)}.json`;
      const first = await createJson(this.storage, key, {
        issuer: verified.issuer,
        jti: claims.jti,
        package: pkg,
        at: new Date(this.clock()).toISOString(),
        ...(typeof claims.exp === "number" && { expires: new Date(claims.exp * 1000).toISOString() }),
      });
      if (!first) {
        throw new OidcError(
          "E_OIDC_REPLAYED",
          `this OIDC ID token was already exchanged for a token for ${pkg}: request a new one`,
        );
      }
    }
    const { token, record } = await this.tokens.createForTrustedPublisher({
      principal: match.principal,
      package: pkg,
      origin: match.origin,
      expiresInMinutes: this.config.tokenMinutes,
      description: `trusted publishing of ${pkg} by ${describePublisher(match.origin)}`,
      ...(match.publisher.tokenEnvironment !== undefined && { environment: match.publisher.tokenEnvironment }),
    });
    return {
      token,
      record,
      expires: record.expires as string,
      principal: match.principal,
      origin: match.origin,
      publisher: match.publisher,
    };
  }
}

/** The identifying claims of a verified token, for a refusal the CI user can act on. */
function describeClaims(claims: JWTPayload): string {
  const names = ["repository", "project_path", "workflow_ref", "ci_config_ref_uri", "environment"];
  const parts = names.flatMap((name) => {
    const value = claims[name];
    return typeof value === "string" && value !== "" ? [`${name} ${shown(value)}`] : [];
  });
  return parts.length > 0 ? parts.join(", ") : `sub ${shown(claims.sub ?? "(none)")}`;
}
