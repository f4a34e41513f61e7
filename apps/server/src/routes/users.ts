import {
  type AuthError,
  assertUsername,
  type CreateTokenOptions,
  isAuthError,
  type TfaMode,
  type TokenPermission,
} from "@fw/auth";
import type { Hono } from "hono";
import {
  type AppContext,
  type AppEnv,
  baseUrl,
  checkOtp,
  json,
  record,
  requireUser,
  type Services,
} from "../context.js";
import { readJsonBody } from "../http/body.js";
import { RegistryError, retryAfter } from "../http/errors.js";
import { isReadOnly, type TokenRecord, type User } from "../services/users.js";
import { checkPassword, limitAuthRequests } from "./guard.js";

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] as string,
  );

function loginPage(action: string, signup: boolean, message?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Log in to fw</title>
<style>body{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto;padding:0 1rem}label{display:block;margin:.75rem 0 .25rem}input{width:100%;padding:.5rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1rem}.msg{color:#b00}</style>
</head><body>
<h1>Log in to fw</h1>
<p>Finish <code>npm login</code> for this registry.</p>
${message ? `<p class="msg" role="alert">${escapeHtml(message)}</p>` : ""}
<form method="post" action="${escapeHtml(action)}">
<label for="name">User name</label><input id="name" name="name" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<label for="otp">One-time password (accounts with two-factor authentication)</label><input id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code">
${signup ? '<label><input type="checkbox" name="create" value="1" style="width:auto"> Create this account</label><label for="email">Email (new accounts)</label><input id="email" name="email" type="email" autocomplete="email">' : ""}
<button type="submit">Log in</button>
</form></body></html>`;
}

function html(body: string, status = 200): Response {
  return new Response(body, {
    status,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy":
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
      "x-frame-options": "DENY",
      "cache-control": "no-store",
    },
  });
}

function stringList(body: Record<string, unknown>, field: string): string[] | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
    throw new RegistryError("E_BAD_REQUEST", `${field} must be a list of strings`);
  }
  return value as string[];
}

function permission(body: Record<string, unknown>, field: string): TokenPermission | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (value !== "read-only" && value !== "read-write") {
    throw new RegistryError("E_BAD_REQUEST", `${field} must be "read-only" or "read-write"`);
  }
  return value;
}

/**
 * What `npm token create` asks for, mapped onto a granular token. npm 11 sends `name`, `description`,
 * `expires` (days), `cidr_whitelist`, `packages`/`scopes`/`orgs` with `packages_and_scopes_permission` /
 * `orgs_permission`, and no longer the legacy `readonly` flag even for `--read-only`
 * (npm/cli lib/commands/token.js); older clients send `readonly` and `cidr_whitelist` only.
 */
function tokenOptions(body: Record<string, unknown>): CreateTokenOptions {
  const { name, description, expires } = body;
  if (name !== undefined && name !== null && (typeof name !== "string" || name.length > 100)) {
    throw new RegistryError("E_BAD_REQUEST", "token name must be a string of at most 100 characters");
  }
  if (
    description !== undefined &&
    description !== null &&
    (typeof description !== "string" || description.length > 500)
  ) {
    throw new RegistryError("E_BAD_REQUEST", "token description must be a string of at most 500 characters");
  }
  if (expires !== undefined && expires !== null && !(Number.isInteger(expires) && (expires as number) > 0)) {
    throw new RegistryError("E_BAD_REQUEST", "expires must be a whole number of days");
  }
  const packagesAndScopesPermission = permission(body, "packages_and_scopes_permission");
  const orgsPermission = permission(body, "orgs_permission");
  const packages = stringList(body, "packages");
  const scopes = stringList(body, "scopes");
  const orgs = stringList(body, "orgs");
  return {
    ...(typeof name === "string" && name && { name }),
    ...(typeof description === "string" && description && { description }),
    readonly: body.readonly === true || packagesAndScopesPermission === "read-only",
    ...(typeof expires === "number" && { expiresInDays: expires }),
    cidr: body.cidr_whitelist,
    ...(packages && { packages }),
    ...(scopes && { scopes }),
    ...(orgs && { orgs }),
    ...(packagesAndScopesPermission && { packagesAndScopesPermission }),
    ...(orgsPermission && { orgsPermission }),
  };
}

/** The token as `npm token list` and `npm token create` print it: never the secret or its hash. */
function tokenView(t: TokenRecord) {
  return {
    token: t.prefix,
    key: t.key,
    // npm token list prints "name <name>"; tokens from before names existed would print "undefined".
    name: t.name ?? "(unnamed)",
    ...(t.description && { description: t.description }),
    ...(t.expires && { expires: t.expires }),
    cidr_whitelist: t.cidr_whitelist.length > 0 ? t.cidr_whitelist : null,
    readonly: isReadOnly(t),
    ...(t.packages && { packages: t.packages }),
    ...(t.scopes && { scopes: t.scopes }),
    ...(t.orgs && { orgs: t.orgs }),
    ...(t.packagesAndScopesPermission && { packages_and_scopes_permission: t.packagesAndScopesPermission }),
    ...(t.orgsPermission && { orgs_permission: t.orgsPermission }),
    created: t.created,
    updated: t.created,
  };
}

/** How `npm profile get` reads the second factor: off, being set up, or on in a mode. */
function tfaView(user: User | null): false | { mode: TfaMode; pending: boolean } {
  if (user?.tfa) return { mode: user.tfa.mode, pending: false };
  if (user?.tfaPending) return { mode: user.tfaPending.mode, pending: true };
  return false;
}

/**
 * For accounts with 2FA on: the request's `npm-otp` code must be valid, else a 401 with
 * `WWW-Authenticate: OTP`, on which npm asks for the code and retries (npm-registry-fetch
 * check-response.js; npm's otplease in lib/utils/auth.js).
 */
async function requireOtp(c: AppContext, services: Services, user: User, what: string): Promise<void> {
  if (!user.tfa) return;
  const otp = await checkOtp(c, services, user.name);
  if (otp === "valid") return;
  await record(c, services, {
    action: "login.failed",
    actor: user.name,
    outcome: "failure",
    details: { reason: otp === "invalid" ? "wrong one-time password" : "no one-time password", for: what },
  });
  throw new RegistryError(
    "E_OTP_REQUIRED",
    otp === "invalid"
      ? "that one-time password is wrong or was already used: enter the next code from your authenticator app"
      : `${what} needs a one-time password from your authenticator app (npm: --otp=<code>)`,
    { headers: { "www-authenticate": "OTP" } },
  );
}

/** Accounts and sessions: couch login/adduser, web login, whoami, logout, tokens, profile. */
export function userRoutes(app: Hono<AppEnv>, services: Services): void {
  const { users, logins, config } = services;

  // Hono hands over path parameters already percent-decoded: decoding them again would turn a literal
  // "%" into an error and "%2525" into "%".
  // `npm adduser` / legacy `npm login`: see npm-profile's loginCouch/adduserCouch.
  app.put("/-/user/:id{org\\.couchdb\\.user:.+}", async (c) => {
    const name = c.req.param("id").slice("org.couchdb.user:".length);
    const body = await readJsonBody(c);
    if (!isObject(body) || typeof body.password !== "string") {
      throw new RegistryError("E_BAD_REQUEST", "expected a JSON body with name and password");
    }
    if (body.name !== undefined && body.name !== name)
      throw new RegistryError("E_BAD_REQUEST", "the name in the body does not match the URL");
    assertUsername(name);
    limitAuthRequests(c, services);
    let user = await checkPassword(services, name, body.password, c.env?.clientIp);
    if (user) await requireOtp(c, services, user, "logging in");
    if (!user) {
      if (await users.getUser(name)) {
        await record(c, services, {
          action: "login.failed",
          actor: name,
          outcome: "failure",
          details: { via: "couch", reason: "incorrect user name or password" },
        });
        throw new RegistryError("E_UNAUTHORIZED", "incorrect user name or password");
      }
      if (!config.auth.signup)
        throw new RegistryError(
          "E_FORBIDDEN",
          "sign-up is disabled on this registry; ask an administrator for an account",
        );
      user = await users.createUser(name, body.password, typeof body.email === "string" ? body.email : undefined);
    }
    const { token, record: created } = await users.createToken(user.name, { name: "npm login" });
    await record(c, services, { action: "login", actor: user.name, tokenKey: created.key, details: { via: "couch" } });
    return json({ ok: true, id: `org.couchdb.user:${user.name}`, rev: "1", token }, 201);
  });

  // `npm owner add` checks that the user exists through this document.
  app.get("/-/user/:id{org\\.couchdb\\.user:.+}", async (c) => {
    const name = c.req.param("id").slice("org.couchdb.user:".length);
    const user = await users.getUser(name);
    if (!user) throw new RegistryError("E_NOT_FOUND", `user "${name.slice(0, 64)}" not found`);
    return json({ _id: `org.couchdb.user:${user.name}`, name: user.name, ...(user.email && { email: user.email }) });
  });

  app.get("/-/whoami", (c) => json({ username: requireUser(c).name }));

  app.delete("/-/user/token/:token", async (c) => {
    const who = requireUser(c);
    const revoked = await users.revokeTokenValue(c.req.param("token"));
    await record(c, services, { action: "logout", details: { revoked, ...(who.tokenKey && { key: who.tokenKey }) } });
    return json({ ok: true });
  });

  // Web login, npm's default since npm 9: npm-profile's loginWeb.
  app.post("/-/v1/login", async (c) => {
    limitAuthRequests(c, services);
    const { loginId, doneId } = await logins.start();
    const base = baseUrl(c, services);
    return json({ loginUrl: `${base}/-/web/login/${loginId}`, doneUrl: `${base}/-/v1/done/${doneId}` });
  });

  app.get("/-/web/login/:id", async (c) => {
    const id = c.req.param("id");
    if (!(await logins.pending(id)))
      return html(
        `<!doctype html><title>fw</title><p>This login link has expired. Run <code>npm login</code> again.</p>`,
        404,
      );
    return html(loginPage(`${services.basePath}/-/web/login/${id}`, config.auth.signup));
  });

  app.post("/-/web/login/:id", async (c) => {
    const id = c.req.param("id");
    const action = `${services.basePath}/-/web/login/${id}`;
    if (!(await logins.pending(id)))
      return html(
        `<!doctype html><title>fw</title><p>This login link has expired. Run <code>npm login</code> again.</p>`,
        404,
      );
    limitAuthRequests(c, services);
    const form = await c.req.parseBody();
    const name = typeof form.name === "string" ? form.name.trim() : "";
    const password = typeof form.password === "string" ? form.password : "";
    // Too many password checks waiting (see @fw/auth's passwordHashLoad): the form again, with a 503.
    const busy = (error: AuthError) => {
      const page = html(loginPage(action, config.auth.signup, error.message), 503);
      for (const [header, value] of Object.entries(retryAfter(error.retryAfterMs ?? 5_000))) {
        page.headers.set(header, value);
      }
      return page;
    };
    let user: Awaited<ReturnType<typeof users.authenticate>>;
    try {
      user = await checkPassword(services, name, password, c.env?.clientIp);
    } catch (error) {
      if (isAuthError(error, "E_UNAVAILABLE")) return busy(error);
      if (error instanceof RegistryError) {
        const status = error.code === "E_RATE_LIMITED" ? 429 : 401;
        const page = html(loginPage(action, config.auth.signup, error.message), status);
        for (const [header, value] of Object.entries(error.headers ?? {})) page.headers.set(header, value);
        return page;
      }
      throw error;
    }
    if (!user && form.create === "1" && config.auth.signup && !(await users.getUser(name))) {
      try {
        user = await users.createUser(
          name,
          password,
          typeof form.email === "string" && form.email ? form.email : undefined,
        );
      } catch (error) {
        if (isAuthError(error, "E_UNAVAILABLE")) return busy(error);
        if (error instanceof RegistryError || isAuthError(error))
          return html(loginPage(action, config.auth.signup, error.message), 400);
        throw error;
      }
    }
    if (!user) {
      await record(c, services, {
        action: "login.failed",
        ...(name && { actor: name.slice(0, 64) }),
        outcome: "failure",
        details: { via: "web", reason: "incorrect user name or password" },
      });
      return html(loginPage(action, config.auth.signup, "Incorrect user name or password."), 401);
    }
    if (user.tfa) {
      const code = typeof form.otp === "string" ? form.otp.trim() : "";
      const verdict = code ? await users.store.verifySecondFactor(user.name, code.slice(0, 64)) : undefined;
      if (!verdict?.ok) {
        await record(c, services, {
          action: "login.failed",
          actor: user.name,
          outcome: "failure",
          details: { via: "web", reason: code ? "wrong one-time password" : "no one-time password" },
        });
        const message = code
          ? "That one-time password is wrong or was already used: enter the next code from your authenticator app."
          : "This account has two-factor authentication: enter the code from your authenticator app.";
        return html(loginPage(action, config.auth.signup, message), 401);
      }
    }
    const { token, record: created } = await users.createToken(user.name, { name: "npm login (web)" });
    await record(c, services, { action: "login", actor: user.name, tokenKey: created.key, details: { via: "web" } });
    await logins.complete(id, token);
    return html(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged in to fw</title></head><body><h1>Logged in as ${escapeHtml(user.name)}</h1><p>You can close this window and return to your terminal.</p></body></html>`,
    );
  });

  app.get("/-/v1/done/:id", async (c) => {
    const result = await logins.poll(c.req.param("id"));
    if (result.status === "pending") return json({}, 202, { "retry-after": "1" });
    if (result.status === "expired")
      throw new RegistryError("E_NOT_FOUND", "this login has expired; run `npm login` again");
    return json({ token: result.token });
  });

  /**
   * `npm profile enable-2fa|disable-2fa` (npm/cli lib/commands/profile.js): `{tfa: {password, mode}}`
   * starts enrolment (answered with the otpauth URL to scan) or, when 2FA is on, switches the mode;
   * `{tfa: [code]}` confirms enrolment (answered with the recovery codes); mode "disable" turns it off.
   * Changing or disabling an active second factor needs the password and a current code.
   */
  async function changeTfa(c: AppContext, account: User, tfa: unknown): Promise<Response> {
    const name = account.name;
    if (Array.isArray(tfa)) {
      const [code] = tfa;
      if (typeof code !== "string" || tfa.length !== 1) {
        throw new RegistryError(
          "E_BAD_REQUEST",
          "tfa must be [one-time password] to confirm two-factor authentication",
        );
      }
      const { recoveryCodes } = await users.store.confirmTfa(name, code.trim().slice(0, 64));
      users.forgetUser(name);
      await record(c, services, {
        action: "2fa",
        details: { change: "enabled", mode: account.tfaPending?.mode ?? null },
      });
      return json({ tfa: recoveryCodes });
    }
    if (!isObject(tfa) || typeof tfa.password !== "string" || typeof tfa.mode !== "string") {
      throw new RegistryError("E_BAD_REQUEST", "tfa must be {password, mode} or [one-time password]");
    }
    const mode = tfa.mode;
    if (mode !== "auth-only" && mode !== "auth-and-writes" && mode !== "disable") {
      throw new RegistryError("E_BAD_REQUEST", 'tfa.mode must be "auth-only", "auth-and-writes" or "disable"');
    }
    limitAuthRequests(c, services);
    if (!(await checkPassword(services, name, tfa.password, c.env?.clientIp))) {
      await record(c, services, {
        action: "login.failed",
        outcome: "failure",
        details: { reason: "incorrect password", for: "2fa" },
      });
      throw new RegistryError("E_UNAUTHORIZED", "incorrect password");
    }
    if (mode === "disable") {
      await requireOtp(c, services, account, "turning off two-factor authentication");
      const user = await users.store.disableTfa(name);
      users.forgetUser(name);
      if (account.tfa) await record(c, services, { action: "2fa", details: { change: "disabled" } });
      return json({ name, email: user.email ?? "", tfa: false, updated: user.updated });
    }
    if (account.tfa) {
      await requireOtp(c, services, account, "changing two-factor authentication");
      const user = await users.store.setTfaMode(name, mode);
      users.forgetUser(name);
      await record(c, services, { action: "2fa", details: { change: "mode", mode } });
      return json({ name, email: user.email ?? "", tfa: { mode, pending: false }, updated: user.updated });
    }
    const { uri } = await users.store.startTfa(name, mode);
    return json({ tfa: uri });
  }

  // Profile: `npm profile get` and `npm profile set password`.
  app.get("/-/npm/v1/user", async (c) => {
    const who = requireUser(c);
    const user = await users.getUser(who.name);
    if (!user) throw new RegistryError("E_NOT_FOUND", "user not found");
    return json({
      name: user.name,
      email: user.email ?? "",
      email_verified: false,
      created: user.created,
      updated: user.updated,
      tfa: tfaView(user),
      fullname: "",
      homepage: "",
      freenode: "",
      twitter: "",
      github: "",
    });
  });

  app.post("/-/npm/v1/user", async (c) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot change the profile");
    const body = await readJsonBody(c);
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "expected a JSON object");
    const account = await users.getUser(who.name);
    if (!account) throw new RegistryError("E_NOT_FOUND", "user not found");
    if (body.tfa !== undefined) return changeTfa(c, account, body.tfa);
    if (isObject(body.password)) {
      const { old, new: next } = body.password;
      if (typeof old !== "string" || typeof next !== "string") {
        throw new RegistryError("E_BAD_REQUEST", "password change needs password.old and password.new");
      }
      await requireOtp(c, services, account, "changing the password");
      await users.changePassword(who.name, old, next);
      await record(c, services, { action: "password.change" });
    } else if (Object.keys(body).length > 0) {
      throw new RegistryError("E_BAD_REQUEST", "only the password and two-factor authentication can be changed here");
    }
    const user = await users.getUser(who.name);
    return json({ name: who.name, email: user?.email ?? "", tfa: tfaView(user), updated: user?.updated });
  });

  // Tokens: `npm token list|create|revoke`.
  app.get("/-/npm/v1/tokens", async (c) => {
    const who = requireUser(c);
    const tokens = await users.listTokens(who.name);
    const objects = tokens.map(tokenView);
    return json({ objects, total: objects.length, urls: {} });
  });

  app.post("/-/npm/v1/tokens", async (c) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot create tokens");
    const body = await readJsonBody(c);
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "expected a JSON object");
    limitAuthRequests(c, services);
    if (
      typeof body.password !== "string" ||
      !(await checkPassword(services, who.name, body.password, c.env?.clientIp))
    ) {
      throw new RegistryError("E_UNAUTHORIZED", "incorrect password");
    }
    const account = await users.getUser(who.name);
    if (account) await requireOtp(c, services, account, "creating a token");
    const { token, record: created } = await users.createToken(who.name, tokenOptions(body));
    await record(c, services, {
      action: "token.create",
      details: { createdKey: created.key, readonly: isReadOnly(created), name: created.name ?? null },
    });
    return json({ ...tokenView(created), cidr_whitelist: created.cidr_whitelist, token, name: created.name }, 201);
  });

  app.delete("/-/npm/v1/tokens/token/:key", async (c) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot revoke tokens");
    const revoked = await users.revokeToken(who.name, c.req.param("key"));
    await record(c, services, { action: "token.revoke", details: { revokedKey: revoked.key } });
    return new Response(null, { status: 204 });
  });
}
