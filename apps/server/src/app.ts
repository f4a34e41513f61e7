import { AuditLog, LoginBackoff, parsePolicy, RateLimiter } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { FwConfig } from "./config/index.js";
import { DEFAULTS } from "./config/schema.js";
import type { AppEnv, Logger, RequestInfo, Services } from "./context.js";
import { errorResponse, RegistryError } from "./http/errors.js";
import { checkPassword } from "./routes/guard.js";
import { miscRoutes } from "./routes/misc.js";
import { createFastRead, type FastReadRequest, packageRoutes, type ResponseParts } from "./routes/packages.js";
import { userRoutes } from "./routes/users.js";
import { BackgroundTasks } from "./services/background.js";
import { PackumentCache } from "./services/cache.js";
import { LoginService } from "./services/logins.js";
import { PackagesService, packumentKey } from "./services/packages.js";
import { SearchIndex } from "./services/search.js";
import { type Identity, UsersService } from "./services/users.js";

export interface RegistryDeps {
  /** The storage to use; built from `config.storage` by the Node entry when omitted there. */
  storage: StorageDriver;
  logger?: Logger;
  /** Mount path when embedded in another server, e.g. "/npm". */
  basePath?: string;
}

export interface Registry {
  fetch(request: Request, info?: RequestInfo): Promise<Response>;
  /**
   * Answers the hottest requests (cached packument GETs) synchronously from plain request parts, or
   * returns `undefined` for everything else. Adapters that can skip building a Web Request (Node)
   * try it first; `fetch` alone gives the same answers.
   */
  fastRead(request: FastReadRequest): ResponseParts | undefined;
  /** Resolves once the search index is loaded from storage. */
  ready: Promise<void>;
  /** Resolves once work left after responses (audit appends) is written; call before closing storage. */
  idle(): Promise<void>;
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
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const user =
      colon > 0 ? await checkPassword(services, decoded.slice(0, colon), decoded.slice(colon + 1), clientIp) : null;
    if (!user) throw new RegistryError("E_UNAUTHORIZED", "incorrect user name or password");
    return services.users.sessionIdentity(user);
  }
  throw new RegistryError("E_UNAUTHORIZED", `unsupported authorization scheme "${(scheme ?? "").slice(0, 20)}"`);
}

/** Builds the registry: config and storage in, a Web-standard `fetch(Request) → Response` out. */
export function createRegistry(config: FwConfig, deps: RegistryDeps): Registry {
  const logger = deps.logger ?? silent;
  const basePath = (deps.basePath ?? "").replace(/\/+$/, "");
  const { storage } = deps;
  const cache = new PackumentCache(storage, packumentKey);
  const search = new SearchIndex();
  // The config loader already cross-checked the policy; configs built in code are checked here.
  const policy = parsePolicy(config.access ?? {});
  const services: Services = {
    config,
    storage,
    logger,
    basePath,
    cache,
    search,
    policy,
    users: new UsersService(storage, { policy }),
    packages: new PackagesService(storage, cache, search),
    logins: new LoginService(storage),
    audit: new AuditLog(storage),
    background: new BackgroundTasks(),
    backoff: new LoginBackoff(storage, config.auth.loginBackoff ?? {}),
    authLimiter: new RateLimiter({
      capacity: (config.auth.rateLimit ?? DEFAULTS.authRateLimit).burst,
      refillPerSecond: (config.auth.rateLimit ?? DEFAULTS.authRateLimit).perSecond,
    }),
  };

  const app = new Hono<AppEnv>();
  const root = basePath ? app.basePath(basePath) : app;
  root.use("*", async (c, next) => {
    c.set("identity", await authenticate(services, c.req.header("authorization"), c.env?.clientIp));
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
  userRoutes(root, services);
  miscRoutes(root, services);
  packageRoutes(root, services);
  app.notFound(() => errorResponse(new RegistryError("E_NOT_FOUND", "not found"), logger));
  app.onError((error) => errorResponse(error, logger));

  const ready = services.packages.indexAll().then(
    (count) => logger.info("search index loaded", { packages: count }),
    (error: unknown) => logger.error("could not load the search index", { err: String(error) }),
  );

  return {
    fetch: async (request, info) => app.fetch(request, info ?? {}),
    fastRead: createFastRead(services),
    ready,
    idle: () => services.background.idle(),
    services,
  };
}
