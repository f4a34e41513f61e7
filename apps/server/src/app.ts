import { createHash } from "node:crypto";
import {
  AuditLog,
  ipAllowed,
  LoginBackoff,
  npmAudience,
  type PolicyConfig,
  parsePolicy,
  parseTrustedPublishing,
  RateLimiter,
  TrustedPublishing,
} from "@fw/auth";
import { casUpdate, type StorageDriver } from "@fw/storage-r2";
import bytes from "bytes";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { FwConfig } from "./config/index.js";
import { asCidr } from "./config/parse.js";
import { DEFAULTS } from "./config/schema.js";
import { proxyResolver } from "./config/uplinks.js";
import type { AppEnv, Logger, RequestInfo, Services } from "./context.js";
import { errorResponse, RegistryError } from "./http/errors.js";
import { revisionNumber } from "./npm/packument.js";
import { changesRoutes } from "./routes/changes.js";
import { checkPassword } from "./routes/guard.js";
import { miscRoutes } from "./routes/misc.js";
import { OIDC_EXCHANGE_PREFIX, oidcRoutes } from "./routes/oidc.js";
import { opsRoutes } from "./routes/ops.js";
import { orgRoutes } from "./routes/orgs.js";
import { createFastRead, type FastReadParts, type FastReadRequest, packageRoutes } from "./routes/packages.js";
import { userRoutes } from "./routes/users.js";
import { BackgroundTasks } from "./services/background.js";
import { PackumentCache } from "./services/cache.js";
import { ChangeFeed, followChanges } from "./services/changes.js";
import { LoginService } from "./services/logins.js";
import { Metrics } from "./services/metrics.js";
import { OrgService } from "./services/orgs.js";
import { PackagesService, packumentKey } from "./services/packages.js";
import { SearchIndex } from "./services/search.js";
import { type Identity, UsersService } from "./services/users.js";
import { UplinkService } from "./uplinks/service.js";

export interface RegistryDeps {
  /** The storage to use; built from `config.storage` by the Node entry when omitted there. */
  storage: StorageDriver;
  logger?: Logger;
  /** Where requests, cache lookups and storage calls are counted; default a fresh `Metrics` without process metrics. */
  metrics?: Metrics;
  /** Mount path when embedded in another server, e.g. "/npm". */
  basePath?: string;
}

export interface Registry {
  fetch(request: Request, info?: RequestInfo): Promise<Response>;
  /**
   * Answers the hottest requests (cached packument and tarball GETs) synchronously from plain request parts, or
   * returns `undefined` for everything else. Adapters that can skip building a Web Request (Node)
   * try it first; `fetch` alone gives the same answers.
   */
  fastRead(request: FastReadRequest): FastReadParts | undefined;
  /** Resolves once the search index is loaded from storage. */
  ready: Promise<void>;
  /** Resolves once work left after responses (audit appends) is written; call before closing storage. */
  idle(): Promise<void>;
  /** Stops following the change feed and waits for `idle`; the registry answers requests until then. */
  close(): Promise<void>;
  /**
   * The client's address for a request from `socketAddress`: the socket's own, or, when it is one of
   * the config's `trustProxy` proxies, the nearest untrusted address in `X-Forwarded-For`.
   */
  clientIp(socketAddress: string | undefined, forwardedFor: string | undefined): string | undefined;
  services: Services;
}

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

async function authenticate(
  services: Services,
  header: string | undefined,
  clientIp: string | undefined,
): Promise<Identity | undefined> {
  if (!header) return undefined;
  const [scheme, value] = header.split(" ", 2);
  if (!value) throw new RegistryError("E_UNAUTHORIZED", "malformed Authorization header");
  if (scheme?.toLowerCase() === "bearer") return services.users.resolveToken(value.trim(), clientIp);
  if (scheme?.toLowerCase() === "basic") {
    const credentials = value.trim();
    const user = await services.users.basicUser(credentials, async () => {
      const decoded = Buffer.from(credentials, "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      return colon > 0 ? checkPassword(services, decoded.slice(0, colon), decoded.slice(colon + 1), clientIp) : null;
    });
    if (!user) throw new RegistryError("E_UNAUTHORIZED", "incorrect user name or password");
    // A password alone is one factor: accounts with 2FA sign in once (`npm login`) and use the token.
    if (user.tfa) {
      throw new RegistryError(
        "E_UNAUTHORIZED",
        "this account uses two-factor authentication: log in with `npm login` and use the token it saves",
      );
    }
    return services.users.sessionIdentity(user);
  }
  throw new RegistryError("E_UNAUTHORIZED", `unsupported authorization scheme "${(scheme ?? "").slice(0, 20)}"`);
}

/**
 * X-Forwarded-For is believed only from the configured proxies: walking it from the right (the hop
 * nearest to us), the first address that is not a trusted proxy is the client.
 */
function clientIpResolver(proxies: readonly string[] | undefined): Registry["clientIp"] {
  if (!proxies || proxies.length === 0) return (socketAddress) => socketAddress;
  // Configs built in code may name single addresses; parsed ones are ranges already.
  const trusted = proxies.map(asCidr);
  return (socketAddress, forwardedFor) => {
    if (!forwardedFor || !ipAllowed(socketAddress, trusted)) return socketAddress;
    const hops = forwardedFor
      .split(",")
      .map((hop) => hop.trim())
      .filter(Boolean);
    for (let index = hops.length - 1; index >= 0; index--) {
      const hop = hops[index] as string;
      if (!ipAllowed(hop, trusted)) return hop;
    }
    return hops[0] ?? socketAddress;
  };
}

/**
 * Package rules live in the config, so a change to them shows up when a registry starts with a new
 * config: the rules in force are kept in storage (`config/access.json`) and a difference is appended to
 * the audit trail (which replica saw it first wins the compare-and-swap; the others find it unchanged).
 */
async function recordPolicyChange(storage: StorageDriver, audit: AuditLog, access: PolicyConfig): Promise<void> {
  const text = JSON.stringify(access);
  const digest = createHash("sha256").update(text).digest("hex");
  let previous: string | undefined;
  const result = await casUpdate<{ sha256: string; access: unknown }>(storage, "config/access.json", (current) => {
    previous = current?.sha256;
    return current?.sha256 === digest ? undefined : { sha256: digest, access };
  });
  if (!result.written) return;
  await audit.append({
    action: "policy.change",
    details: {
      rules: Object.keys(access.packages ?? {}).length,
      roles: Object.keys(access.roles ?? {}).length,
      teams: Object.keys(access.teams ?? {}).length,
      first: previous === undefined,
    },
  });
}

/**
 * `limits.cacheMemory` shared out: most to hosted documents (each with its compressed forms; a popular
 * package's 20 MB document is charged its ~5 MB of forms, see `PackumentCache`), then uplink copies,
 * small tarballs, and the last written bodies the next publish reuses. Only what is used is taken: with
 * the default 32 MB and no uplinks, ~24 MB at most.
 */
export function cacheBudgets(cacheMemory: number): {
  packuments: number;
  tarballs: number;
  uplinks: number;
  previousBodies: number;
} {
  const share = (fraction: number) => Math.max(1, Math.floor(cacheMemory * fraction));
  return { packuments: share(0.45), uplinks: share(0.25), tarballs: share(0.2), previousBodies: share(0.1) };
}

/** Builds the registry: config and storage in, a Web-standard `fetch(Request) → Response` out. */
export function createRegistry(config: FwConfig, deps: RegistryDeps): Registry {
  const logger = deps.logger ?? silent;
  const basePath = (deps.basePath ?? "").replace(/\/+$/, "");
  const metrics = deps.metrics ?? new Metrics();
  const storage = metrics.instrumentStorage(deps.storage);
  const budgets = cacheBudgets(config.limits.cacheMemory ?? (bytes.parse(DEFAULTS.cacheMemory) as number));
  const cache = new PackumentCache(storage, packumentKey, {
    maxBytes: budgets.packuments,
    onLookup: (result) => metrics.cacheLookup(result),
  });
  const search = new SearchIndex();
  // The config loader already cross-checked the policy; configs built in code are checked here.
  const policy = parsePolicy(config.access ?? {});
  const orgs = new OrgService(storage, {
    onError: (error) => logger.warn("could not load orgs and teams", { err: String(error) }),
  });
  const users = new UsersService(storage, {
    policy,
    teamsOf: (user) => orgs.teamsOf(user),
    ...(config.auth.tfaKey !== undefined && { tfaKey: config.auth.tfaKey }),
  });
  const changes = new ChangeFeed(storage);
  const background = new BackgroundTasks();
  const services: Services = {
    config,
    storage,
    logger,
    basePath,
    cache,
    search,
    policy,
    users,
    packages: new PackagesService(storage, cache, search, changes, {
      tarballBytes: budgets.tarballs,
      previousBodyBytes: budgets.previousBodies,
    }),
    changes,
    orgs,
    logins: new LoginService(storage),
    audit: new AuditLog(storage),
    background,
    metrics,
    uplinks: new UplinkService({
      storage,
      hosted: cache,
      uplinks: config.uplinks ?? {},
      proxyFor: proxyResolver(policy.rules, config.proxy ?? {}),
      logger,
      maxBytes: budgets.uplinks,
      track: (task) => background.track(task),
    }),
    ...(config.trustedPublishing !== undefined && {
      trustedPublishing: new TrustedPublishing({
        config: parseTrustedPublishing(config.trustedPublishing, "trustedPublishing"),
        tokens: users.tokens,
        storage,
        ...(config.publicUrl !== undefined && { audience: npmAudience(config.publicUrl) }),
      }),
    }),
    backoff: new LoginBackoff(storage, config.auth.loginBackoff ?? {}),
    authLimiter: new RateLimiter({
      capacity: (config.auth.rateLimit ?? DEFAULTS.authRateLimit).burst,
      refillPerSecond: (config.auth.rateLimit ?? DEFAULTS.authRateLimit).perSecond,
    }),
  };

  const app = new Hono<AppEnv>();
  const root = basePath ? app.basePath(basePath) : app;
  // First, so that refusals by the middlewares below are counted too.
  app.use("*", metrics.middleware({ basePath }));
  root.use("*", async (c, next) => {
    // The OIDC exchange's bearer is a CI's ID token, not an fw credential: its route checks it.
    const exchange = c.req.method === "POST" && c.req.path.startsWith(OIDC_EXCHANGE_PREFIX);
    c.set(
      "identity",
      exchange ? undefined : await authenticate(services, c.req.header("authorization"), c.env?.clientIp),
    );
    await next();
  });
  root.use(
    "*",
    bodyLimit({
      maxSize: config.limits.maxBodySize,
      onError: () => {
        throw new RegistryError(
          "E_TOO_LARGE",
          `the request body is larger than the limit of ${config.limits.maxBodySize} bytes`,
        );
      },
    }),
  );
  // npm builds the exchange URL from the registry's origin alone, so it is answered at the host root.
  oidcRoutes(app, services);
  userRoutes(root, services);
  orgRoutes(root, services);
  miscRoutes(root, services);
  opsRoutes(root, services, config.metrics ? { metrics: config.metrics } : {});
  changesRoutes(root, services);
  packageRoutes(root, services);
  app.notFound(() => errorResponse(new RegistryError("E_NOT_FOUND", "not found"), logger));
  app.onError((error) => errorResponse(error, logger));

  const ready = Promise.all([
    services.packages.indexAll().then(
      (count) => logger.info("search index loaded", { packages: count }),
      (error: unknown) => logger.error("could not load the search index", { err: String(error) }),
    ),
    orgs.ready,
    recordPolicyChange(storage, services.audit, config.access ?? {}).catch((error: unknown) =>
      logger.warn("could not record the access rules", { err: String(error) }),
    ),
  ]).then(() => undefined);

  // Other replicas' writes reach this one through the feed: drop their packuments from the cache
  // and refresh search (writes through this process are already in both).
  const follower = followChanges(changes, {
    onChanges: async (batch) => {
      // The last change of each package is enough: its document now includes the earlier ones.
      const latest = new Map(batch.map((change) => [change.name, change]));
      for (const change of latest.values()) {
        // The cache may hold this change already, or a newer one (this process's own later write):
        // revisions count up by one per write of a document, so a number at least as high is as new.
        const cachedRev = cache.revision(change.name);
        if (
          cachedRev !== undefined &&
          change.rev !== undefined &&
          revisionNumber(cachedRev) >= revisionNumber(change.rev)
        ) {
          continue;
        }
        cache.invalidate(change.name);
        const found = await cache.get(change.name);
        if (found) search.update(found.doc);
        else search.remove(change.name);
      }
    },
    onError: (error) => logger.warn("could not read the change feed", { err: String(error) }),
  });

  return {
    fetch: async (request, info) => app.fetch(request, info ?? {}),
    fastRead: createFastRead(services),
    ready,
    idle: () => services.background.idle(),
    close: async () => {
      follower.stop();
      orgs.stop();
      await services.background.idle();
    },
    clientIp: clientIpResolver(config.trustProxy),
    services,
  };
}
