import type { Hono } from "hono";
import { type AppEnv, baseUrl, json, requireUser, type Services } from "../context.js";
import { readJsonBody } from "../http/body.js";
import { RegistryError } from "../http/errors.js";
import { assertUsername } from "../services/users.js";

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

/**
 * What `npm token create` asks for. npm 11 sends granular-token fields: `name`, `expires` (days) and
 * `packages_and_scopes_permission` instead of the legacy `readonly` flag, which it no longer sends
 * even for `--read-only` (npm/cli lib/commands/token.js). Tokens here are not limited to packages,
 * scopes or orgs, so asking for such limits is refused rather than silently ignored.
 */
function tokenOptions(body: Record<string, unknown>): { name?: string; readonly: boolean; expiresInDays?: number } {
  const { name, expires } = body;
  if (name !== undefined && name !== null && (typeof name !== "string" || name.length > 100)) {
    throw new RegistryError("E_BAD_REQUEST", "token name must be a string of at most 100 characters");
  }
  if (expires !== undefined && expires !== null && !(Number.isInteger(expires) && (expires as number) > 0)) {
    throw new RegistryError("E_BAD_REQUEST", "expires must be a whole number of days");
  }
  for (const field of ["packages", "scopes", "orgs", "orgs_permission"]) {
    const value = body[field];
    if (value !== undefined && value !== null && !(Array.isArray(value) && value.length === 0)) {
      throw new RegistryError("E_BAD_REQUEST", `${field} is not supported: fw tokens act for the whole account`);
    }
  }
  const permission = body.packages_and_scopes_permission;
  if (permission !== undefined && permission !== null && permission !== "read-only" && permission !== "read-write") {
    throw new RegistryError("E_BAD_REQUEST", 'packages_and_scopes_permission must be "read-only" or "read-write"');
  }
  return {
    ...(typeof name === "string" && name && { name }),
    readonly: body.readonly === true || permission === "read-only",
    ...(typeof expires === "number" && { expiresInDays: expires }),
  };
}

/** Accounts and sessions: couch login/adduser, web login, whoami, logout, tokens, profile. */
export function userRoutes(app: Hono<AppEnv>, services: Services): void {
  const { users, logins, config } = services;

  // `npm adduser` / legacy `npm login`: see npm-profile's loginCouch/adduserCouch.
  app.put("/-/user/:id{org\\.couchdb\\.user:.+}", async (c) => {
    const name = decodeURIComponent(c.req.param("id")).slice("org.couchdb.user:".length);
    const body = await readJsonBody(c);
    if (!isObject(body) || typeof body.password !== "string") {
      throw new RegistryError("E_BAD_REQUEST", "expected a JSON body with name and password");
    }
    if (body.name !== undefined && body.name !== name)
      throw new RegistryError("E_BAD_REQUEST", "the name in the body does not match the URL");
    assertUsername(name);
    let user = await users.authenticate(name, body.password);
    if (!user) {
      if (await users.getUser(name)) throw new RegistryError("E_UNAUTHORIZED", "incorrect user name or password");
      if (!config.auth.signup)
        throw new RegistryError(
          "E_FORBIDDEN",
          "sign-up is disabled on this registry; ask an administrator for an account",
        );
      user = await users.createUser(name, body.password, typeof body.email === "string" ? body.email : undefined);
    }
    const { token } = await users.createToken(user.name, { name: "npm login" });
    return json({ ok: true, id: `org.couchdb.user:${user.name}`, rev: "1", token }, 201);
  });

  // `npm owner add` checks that the user exists through this document.
  app.get("/-/user/:id{org\\.couchdb\\.user:.+}", async (c) => {
    const name = decodeURIComponent(c.req.param("id")).slice("org.couchdb.user:".length);
    const user = await users.getUser(name);
    if (!user) throw new RegistryError("E_NOT_FOUND", `user "${name.slice(0, 64)}" not found`);
    return json({ _id: `org.couchdb.user:${user.name}`, name: user.name, ...(user.email && { email: user.email }) });
  });

  app.get("/-/whoami", (c) => json({ username: requireUser(c).name }));

  app.delete("/-/user/token/:token", async (c) => {
    requireUser(c);
    await users.revokeTokenValue(decodeURIComponent(c.req.param("token")));
    return json({ ok: true });
  });

  // Web login, npm's default since npm 9: npm-profile's loginWeb.
  app.post("/-/v1/login", async (c) => {
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
    const form = await c.req.parseBody();
    const name = typeof form.name === "string" ? form.name.trim() : "";
    const password = typeof form.password === "string" ? form.password : "";
    let user = await users.authenticate(name, password);
    if (!user && form.create === "1" && config.auth.signup && !(await users.getUser(name))) {
      try {
        user = await users.createUser(
          name,
          password,
          typeof form.email === "string" && form.email ? form.email : undefined,
        );
      } catch (error) {
        if (error instanceof RegistryError) return html(loginPage(action, config.auth.signup, error.message), 400);
        throw error;
      }
    }
    if (!user) return html(loginPage(action, config.auth.signup, "Incorrect user name or password."), 401);
    const { token } = await users.createToken(user.name, { name: "npm login (web)" });
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
      tfa: false,
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
    if (isObject(body.password)) {
      const { old, new: next } = body.password;
      if (typeof old !== "string" || typeof next !== "string") {
        throw new RegistryError("E_BAD_REQUEST", "password change needs password.old and password.new");
      }
      await users.changePassword(who.name, old, next);
    } else if (Object.keys(body).length > 0) {
      throw new RegistryError("E_BAD_REQUEST", "only the password can be changed here");
    }
    const user = await users.getUser(who.name);
    return json({ name: who.name, email: user?.email ?? "", tfa: false, updated: user?.updated });
  });

  // Tokens: `npm token list|create|revoke`.
  app.get("/-/npm/v1/tokens", async (c) => {
    const who = requireUser(c);
    const tokens = await users.listTokens(who.name);
    const objects = tokens.map((t) => ({
      token: t.prefix,
      key: t.key,
      // npm token list prints "name <name>"; tokens from before names existed would print "undefined".
      name: t.name ?? "(unnamed)",
      ...(t.expires && { expires: t.expires }),
      cidr_whitelist: t.cidr_whitelist.length > 0 ? t.cidr_whitelist : null,
      readonly: t.readonly,
      created: t.created,
      updated: t.created,
    }));
    return json({ objects, total: objects.length, urls: {} });
  });

  app.post("/-/npm/v1/tokens", async (c) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot create tokens");
    const body = await readJsonBody(c);
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "expected a JSON object");
    if (typeof body.password !== "string" || !(await users.authenticate(who.name, body.password))) {
      throw new RegistryError("E_UNAUTHORIZED", "incorrect password");
    }
    const { token, record } = await users.createToken(who.name, {
      ...tokenOptions(body),
      cidr_whitelist: body.cidr_whitelist,
    });
    return json(
      {
        token,
        key: record.key,
        name: record.name,
        ...(record.expires && { expires: record.expires }),
        cidr_whitelist: record.cidr_whitelist,
        readonly: record.readonly,
        created: record.created,
        updated: record.created,
      },
      201,
    );
  });

  app.delete("/-/npm/v1/tokens/token/:key", async (c) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot revoke tokens");
    await users.revokeToken(who.name, decodeURIComponent(c.req.param("key")));
    return new Response(null, { status: 204 });
  });
}
