import type { Hono } from "hono";
import { type AppContext, type AppEnv, json, record, requireUser, type Services } from "../context.js";
import { readJsonBody } from "../http/body.js";
import { RegistryError } from "../http/errors.js";
import { assertOrgName, ORG_ROLES, type OrgDocument, type OrgRole } from "../services/orgs.js";

function field(body: unknown, name: string): string | undefined {
  if (typeof body !== "object" || body === null) throw new RegistryError("E_BAD_REQUEST", "expected a JSON object");
  const value = (body as Record<string, unknown>)[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new RegistryError("E_BAD_REQUEST", `${name} must be a string`);
  return value;
}

/**
 * `npm org set|rm|ls` and `npm team create|destroy|add|rm|ls` (npm's libnpmorg and libnpmteam). Registry
 * admins create orgs (the first `npm org set`); after that an org's owners and admins manage its members
 * and teams. Only owners make owners, and an org keeps at least one owner.
 */
export function orgRoutes(app: Hono<AppEnv>, services: Services): void {
  const { orgs, users } = services;

  /** The caller, when allowed to manage `doc` (or to create it, when it does not exist yet). */
  const manager = (c: AppContext, doc: OrgDocument | null) => {
    const who = requireUser(c);
    if (who.readonly) throw new RegistryError("E_FORBIDDEN", "a read-only token cannot change orgs or teams");
    const role = doc ? doc.members[who.name.toLowerCase()] : undefined;
    if (who.principal.admin || role === "owner" || role === "admin")
      return { who, role: who.principal.admin ? "owner" : role };
    throw new RegistryError(
      "E_FORBIDDEN",
      doc ? `only owners and admins of org "${doc.name}" can change it` : "only registry admins can create orgs",
    );
  };

  const member = async (c: AppContext, org: string) => {
    const who = requireUser(c);
    const doc = await orgs.get(org);
    if (!doc || (!who.principal.admin && !doc.members[who.name.toLowerCase()])) {
      throw new RegistryError("E_NOT_FOUND", `org "${assertOrgName(org)}" not found`);
    }
    return doc;
  };

  const existingUser = async (name: string | undefined) => {
    if (!name) throw new RegistryError("E_BAD_REQUEST", "user is required");
    const user = await users.getUser(name.replace(/^@/, ""));
    if (!user) throw new RegistryError("E_NOT_FOUND", `user "${name.slice(0, 64)}" not found`);
    return user.name.toLowerCase();
  };

  app.put("/-/org/:org/user", async (c) => {
    const org = c.req.param("org");
    const body = await readJsonBody(c);
    const user = await existingUser(field(body, "user"));
    const role = (field(body, "role") ?? "developer") as OrgRole;
    if (!ORG_ROLES.includes(role))
      throw new RegistryError("E_BAD_REQUEST", 'role must be "developer", "admin" or "owner"');
    const current = await orgs.get(org);
    const { role: callerRole } = manager(c, current);
    if ((role === "owner" || current?.members[user] === "owner") && callerRole !== "owner") {
      throw new RegistryError("E_FORBIDDEN", "only owners can make or change owners");
    }
    const doc = await orgs.update(
      org,
      (d) => {
        d.members[user] = role;
        return d;
      },
      { create: current === null },
    );
    users.forgetUser(user);
    await record(c, services, { action: "owner", details: { org: doc.name, member: user, role } });
    return json({ org: { name: doc.name, size: Object.keys(doc.members).length }, user, role }, 201);
  });

  app.delete("/-/org/:org/user", async (c) => {
    const org = c.req.param("org");
    const user = (field(await readJsonBody(c), "user") ?? "").replace(/^@/, "").toLowerCase();
    const current = await orgs.get(org);
    if (!current) throw new RegistryError("E_NOT_FOUND", `org "${assertOrgName(org)}" not found`);
    const { role: callerRole } = manager(c, current);
    if (current.members[user] === "owner" && callerRole !== "owner") {
      throw new RegistryError("E_FORBIDDEN", "only owners can remove owners");
    }
    await orgs.update(org, (d) => {
      if (!d.members[user])
        throw new RegistryError("E_NOT_FOUND", `"${user.slice(0, 64)}" is not a member of "${d.name}"`);
      delete d.members[user];
      if (!Object.values(d.members).includes("owner")) {
        throw new RegistryError("E_CONFLICT", `"${d.name}" would have no owner left: make someone else owner first`);
      }
      for (const team of Object.values(d.teams)) team.members = team.members.filter((m) => m !== user);
      return d;
    });
    users.forgetUser(user);
    await record(c, services, { action: "owner", details: { org: current.name, member: user, role: null } });
    return new Response(null, { status: 204 });
  });

  app.get("/-/org/:org/user", async (c) => json((await member(c, c.req.param("org"))).members));

  app.put("/-/org/:org/team", async (c) => {
    const org = c.req.param("org");
    const body = await readJsonBody(c);
    const team = assertOrgName(field(body, "name") ?? "", "team");
    const description = field(body, "description");
    manager(c, await orgs.get(org));
    const doc = await orgs.update(org, (d) => {
      if (d.teams[team]) throw new RegistryError("E_CONFLICT", `team "${d.name}:${team}" already exists`);
      d.teams[team] = { members: [], ...(description && { description: description.slice(0, 500) }) };
      return d;
    });
    await record(c, services, { action: "owner", details: { org: doc.name, team, change: "created" } });
    return json({ name: `${doc.name}:${team}`, ...(description && { description }) }, 201);
  });

  app.get("/-/org/:org/team", async (c) => {
    const doc = await member(c, c.req.param("org"));
    return json(Object.keys(doc.teams).map((team) => `${doc.name}:${team}`));
  });

  const teamOf = (doc: OrgDocument, name: string) => {
    const team = assertOrgName(name, "team");
    const found = Object.hasOwn(doc.teams, team) ? doc.teams[team] : undefined;
    if (!found) throw new RegistryError("E_NOT_FOUND", `team "${doc.name}:${team}" not found`);
    return { team, found };
  };

  app.delete("/-/team/:org/:team", async (c) => {
    const org = c.req.param("org").replace(/^@/, "");
    const current = await orgs.get(org);
    if (!current) throw new RegistryError("E_NOT_FOUND", `org "${assertOrgName(org)}" not found`);
    manager(c, current);
    const { team, found } = teamOf(current, c.req.param("team"));
    await orgs.update(org, (d) => {
      delete d.teams[team];
      return d;
    });
    for (const user of found.members) users.forgetUser(user);
    await record(c, services, { action: "owner", details: { org: current.name, team, change: "destroyed" } });
    return new Response(null, { status: 204 });
  });

  const changeMembership = (add: boolean) => async (c: AppContext) => {
    const org = c.req.param("org")?.replace(/^@/, "") ?? "";
    const user = await existingUser(field(await readJsonBody(c), "user"));
    const current = await orgs.get(org);
    if (!current) throw new RegistryError("E_NOT_FOUND", `org "${assertOrgName(org)}" not found`);
    manager(c, current);
    const { team } = teamOf(current, c.req.param("team") ?? "");
    if (add && !current.members[user]) {
      throw new RegistryError("E_BAD_REQUEST", `"${user}" is not a member of "${current.name}": npm org set it first`);
    }
    await orgs.update(org, (d) => {
      const entry = d.teams[team];
      if (!entry) throw new RegistryError("E_NOT_FOUND", `team "${d.name}:${team}" not found`);
      const has = entry.members.includes(user);
      if (add === has) return undefined;
      entry.members = add ? [...entry.members, user].sort() : entry.members.filter((m) => m !== user);
      return d;
    });
    users.forgetUser(user);
    await record(c, services, { action: "owner", details: { org: current.name, team, member: user, added: add } });
    return add ? json({}, 201) : new Response(null, { status: 204 });
  };
  app.put("/-/team/:org/:team/user", changeMembership(true));
  app.delete("/-/team/:org/:team/user", changeMembership(false));

  app.get("/-/team/:org/:team/user", async (c) => {
    const doc = await member(c, c.req.param("org").replace(/^@/, ""));
    return json(teamOf(doc, c.req.param("team")).found.members);
  });
}
