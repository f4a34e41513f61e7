import type { StorageDriver } from "@fw/storage-r2";
import type { Context } from "hono";
import type { FwConfig } from "./config/index.js";
import { RegistryError } from "./http/errors.js";
import type { PackumentCache } from "./services/cache.js";
import type { LoginService } from "./services/logins.js";
import type { PackagesService } from "./services/packages.js";
import type { SearchIndex } from "./services/search.js";
import type { Identity, UsersService } from "./services/users.js";

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What every route can use: the config and the use-case services. */
export interface Services {
  config: FwConfig;
  storage: StorageDriver;
  logger: Logger;
  users: UsersService;
  packages: PackagesService;
  logins: LoginService;
  search: SearchIndex;
  cache: PackumentCache;
  /** Path the registry is mounted under, without a trailing slash ("" at the root). */
  basePath: string;
}

/** Per-request values the Node/Bun/Worker adapters pass along with the Request. */
export interface RequestInfo {
  /** The client's address as the socket saw it (never from a header). */
  clientIp?: string;
}

export type AppEnv = {
  Bindings: RequestInfo;
  Variables: { identity: Identity | undefined };
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
