import {
  type Action,
  ANONYMOUS,
  type AuditEventInput,
  type AuditLog,
  authorize,
  type Decision,
  type LoginBackoff,
  type Policy,
  type RateLimiter,
  type TrustedPublishing,
} from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import type { Context } from "hono";
import type { FwConfig } from "./config/index.js";
import { RegistryError } from "./http/errors.js";
import type { BackgroundTasks } from "./services/background.js";
import type { PackumentCache } from "./services/cache.js";
import type { ChangeFeed } from "./services/changes.js";
import type { LoginService } from "./services/logins.js";
import type { Metrics } from "./services/metrics.js";
import type { OrgService } from "./services/orgs.js";
import type { PackagesService } from "./services/packages.js";
import type { SearchIndex } from "./services/search.js";
import type { Identity, UsersService } from "./services/users.js";
import type { UplinkService } from "./uplinks/service.js";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What every route can use: the config and the use-case services. */
export interface Services {
  config: FwConfig;
  /** The access policy from the config's `roles`, `teams` and `packages`. */
  policy: Policy;
  storage: StorageDriver;
  logger: Logger;
  users: UsersService;
  packages: PackagesService;
  logins: LoginService;
  search: SearchIndex;
  cache: PackumentCache;
  /** Append-only trail of logins, token changes, package writes and refused writes. */
  audit: AuditLog;
  /** Back-off after failed password logins, per account and client address. */
  backoff: LoginBackoff;
  /** Flood limit per client address on login and token endpoints. */
  authLimiter: RateLimiter;
  /** Path the registry is mounted under, without a trailing slash ("" at the root). */
  basePath: string;
  /** Work finishing after the response (audit appends), awaited on shutdown. */
  background: BackgroundTasks;
  /** Prometheus instruments: requests, cache lookups, CAS retries, storage and upstream errors. */
  metrics: Metrics;
  /** Packages not hosted here, fetched from the configured upstream registries (uplinks) and cached. */
  uplinks: UplinkService;
  /** Orgs and teams managed with `npm org` and `npm team`. */
  orgs: OrgService;
  /** The storage's ordered feed of package changes (`GET /-/changes`, replicas follow it). */
  changes: ChangeFeed;
  /** OIDC trusted publishing, when the config sets it up. */
  trustedPublishing?: TrustedPublishing;
}

/** Per-request values the Node/Bun/Worker adapters pass along with the Request. */
export interface RequestInfo {
  /** The client's address as the socket saw it (never from a header). */
  clientIp?: string;
  /** Keeps the runtime alive for work after the response (a Worker's `ctx.waitUntil`). */
  waitUntil?(task: Promise<unknown>): void;
}

export type AppEnv = {
  Bindings: RequestInfo;
  Variables: { identity: Identity | undefined; otp: "valid" | "invalid" | undefined };
};

export type AppContext = Context<AppEnv>;

/** The registry's own URL for links in documents: `publicUrl`, else the request's origin and mount path. */
export function baseUrl(c: AppContext, services: Services): string {
  if (services.config.publicUrl) return services.config.publicUrl;
  return new URL(c.req.url).origin + services.basePath;
}

export function identity(c: AppContext): Identity | undefined {
  return c.get("identity");
}

export function requireUser(c: AppContext): Identity {
  const who = c.get("identity");
  if (!who) throw new RegistryError("E_UNAUTHORIZED", "authentication required: run `npm login`");
  return who;
}

export async function readJson(c: AppContext): Promise<unknown> {
  const text = await c.req.text();
  if (text.length === 0) throw new RegistryError("E_BAD_REQUEST", "the request body is empty; expected JSON");
  try {
    return JSON.parse(text);
  } catch {
    throw new RegistryError("E_BAD_REQUEST", "the request body is not valid JSON");
  }
}

export function json(data: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(data), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/**
 * Whether the caller may read `pkg`. A token's package limits never make it see less than a caller
 * without credentials would: they narrow what the token may reach beyond the public packages.
 */
export function readDecision(policy: Policy, who: Identity | undefined, pkg: string): Decision {
  const decision = authorize(policy, { identity: who?.principal ?? ANONYMOUS, action: "access", pkg });
  if (decision.allowed || !who?.token || decision.rule !== null) return decision;
  const anonymous = authorize(policy, { identity: ANONYMOUS, action: "access", pkg });
  return anonymous.allowed ? anonymous : decision;
}

/**
 * Refuses a read the policy does not allow. Anonymous callers refused get `notFound` exactly as for a
 * package that does not exist, so private names do not leak.
 */
export function authorizeRead(c: AppContext, services: Services, pkg: string, notFound: string): void {
  const decision = readDecision(services.policy, identity(c), pkg);
  if (decision.allowed) return;
  if (decision.notFound) throw new RegistryError("E_NOT_FOUND", notFound);
  throw new RegistryError(decision.code ?? "E_FORBIDDEN", decision.reason);
}

/**
 * Refuses a write the policy does not allow: the rule's list for `action`, required environments and
 * ownership (`maintainers` of the stored package; admins pass). Callers without credentials and
 * read-only tokens are left to the service, which refuses them with its own messages.
 */
export async function authorizeWrite(
  c: AppContext,
  services: Services,
  action: Exclude<Action, "access">,
  pkg: string,
  maintainers: readonly string[] = [],
  options: { newVersion?: boolean } = {},
): Promise<void> {
  const who = identity(c);
  if (!who || who.readonly) return;
  const otp = who.principal.tfaMode === "auth-and-writes" ? await checkOtp(c, services, who.name) : undefined;
  const decision = authorize(services.policy, {
    identity: who.principal,
    action,
    pkg,
    packageMaintainers: maintainers,
    ...(otp && { otp }),
    ...(options.newVersion && { newVersion: true }),
  });
  if (decision.allowed) return;
  await record(c, services, {
    action: "access.denied",
    package: pkg,
    outcome: "failure",
    details: { action, reason: decision.reason },
  });
  throw new RegistryError(
    decision.code ?? "E_FORBIDDEN",
    decision.reason,
    decision.code === "E_OTP_REQUIRED" ? { headers: { "www-authenticate": "OTP" } } : {},
  );
}

/**
 * The request's `npm-otp` header checked against the account's second factor, once per request (a
 * TOTP code is spent when accepted, so a second check of the same code would fail).
 */
export async function checkOtp(
  c: AppContext,
  services: Services,
  user: string,
): Promise<"valid" | "invalid" | undefined> {
  const seen = c.get("otp");
  if (seen) return seen;
  const code = c.req.header("npm-otp");
  if (!code) return undefined;
  const result = (await services.users.store.verifySecondFactor(user, code.slice(0, 64))).ok ? "valid" : "invalid";
  c.set("otp", result);
  return result;
}

/**
 * Appends an audit event with the caller and address filled in, after the response: the action it
 * records has already happened, so the caller does not wait for the write. A failing write is logged.
 * Shutdown waits for pending appends (`Registry.idle`).
 */
export function record(c: AppContext, services: Services, event: AuditEventInput): Promise<void> {
  const who = identity(c);
  const ip = c.env?.clientIp;
  const task = services.audit
    .append({
      ...(who && { actor: who.name }),
      ...(who?.tokenKey && { tokenKey: who.tokenKey }),
      ...(ip && { ip }),
      outcome: "success",
      ...event,
    })
    .then(
      () => {},
      (error: unknown) => {
        services.logger.error("could not append to the audit log", { err: String(error), action: event.action });
      },
    );
  services.background.track(task);
  c.env?.waitUntil?.(task);
  return Promise.resolve();
}
