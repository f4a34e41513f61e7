import { isOidcError } from "@fw/auth";
import type { Hono } from "hono";
import { type AppEnv, json, record, type Services } from "../context.js";
import { errorResponse, RegistryError } from "../http/errors.js";
import { assertReadableName } from "../npm/names.js";
import { limitAuthRequests } from "./guard.js";

/** The exchange path npm 11 posts to, always at the host root (npm/cli lib/utils/oidc.js builds it with a leading "/"). */
export const OIDC_EXCHANGE_PREFIX = "/-/npm/v1/oidc/token/exchange/package/";

/**
 * OIDC trusted publishing: a CI job's ID token (the bearer) in, a short-lived token that may publish
 * new versions of this one package out. npm sends no body and reads only `token`; it logs
 * `body.message` of a failure, so errors carry it besides npm's usual `error`.
 */
export function oidcRoutes(app: Hono<AppEnv>, services: Services): void {
  app.post(`${OIDC_EXCHANGE_PREFIX}:name{.+}`, async (c) => {
    try {
      const publishing = services.trustedPublishing;
      if (!publishing) {
        throw new RegistryError("E_NOT_FOUND", "trusted publishing is not configured on this registry");
      }
      limitAuthRequests(c, services);
      // Already percent-decoded by Hono: "@acme%2fweb" arrives as "@acme/web".
      const pkg = c.req.param("name");
      assertReadableName(pkg);
      const idToken = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "")?.[1];
      if (!idToken) throw new RegistryError("E_UNAUTHORIZED", "send the CI's OIDC ID token as the bearer token");
      const result = await publishing.exchange({ pkg, idToken });
      await record(c, services, {
        action: "token.create",
        actor: result.principal,
        tokenKey: result.record.key,
        package: pkg,
        details: {
          via: "oidc",
          issuer: result.origin.issuer,
          repository: result.origin.repository ?? null,
          workflow: result.origin.workflow ?? null,
        },
      });
      return json({ token: result.token, expires: result.expires }, 201);
    } catch (error) {
      if (isOidcError(error)) {
        services.logger.warn("trusted publishing refused", {
          reason: error.message,
          check: error.oidcCode,
          details: error.details.join("; "),
        });
        await record(c, services, {
          action: "login.failed",
          outcome: "failure",
          details: { via: "oidc", check: error.oidcCode },
        });
      }
      const response = errorResponse(error, services.logger);
      const body = (await response.json()) as { error: string };
      return json({ ...body, message: body.error }, response.status, Object.fromEntries(response.headers));
    }
  });
}
