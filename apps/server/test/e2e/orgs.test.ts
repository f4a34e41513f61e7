import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "../helpers/clients.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

/**
 * `npm org` and `npm team` with the real client: teams kept in storage admit their members to package
 * rules that name the team (declared, possibly empty, under the config's `teams`).
 */
describe("orgs and teams with npm", () => {
  let registry: TestRegistry;
  let boss: Sandbox;
  let dev: Sandbox;
  let outsider: Sandbox;

  beforeAll(async () => {
    registry = await startTestRegistry({
      access: {
        roles: { admin: ["boss"] },
        teams: { "acme:devs": [] },
        packages: {
          "@acme/*": { access: ["$authenticated"], publish: ["acme:devs"] },
          "**": { access: ["$all"], publish: ["$authenticated"] },
        },
      },
    });
    boss = await userSandbox(registry.url, "boss");
    dev = await userSandbox(registry.url, "dev");
    outsider = await userSandbox(registry.url, "outsider");
  });

  afterAll(async () => {
    for (const sandbox of [boss, dev, outsider]) await sandbox?.[Symbol.asyncDispose]();
    await registry?.close();
  });

  const publishAs = async (who: Sandbox, version: string) =>
    who.npm(["publish"], await writePackage(join(who.root, `pkg-${version}`), { name: "@acme/tool", version }));

  it("a member added to the team may publish the org's packages; removed, they may not", async () => {
    const before = await publishAs(dev, "1.0.0");
    expect(before.code).not.toBe(0);

    const ok = async (result: Promise<{ code: number | null; output: string }>) => {
      const done = await result;
      expect(done.code, done.output).toBe(0);
      return done;
    };
    await ok(boss.npm(["org", "set", "acme", "boss", "owner"]));
    await ok(boss.npm(["org", "set", "acme", "dev", "developer"]));
    await ok(boss.npm(["team", "create", "@acme:devs"]));
    await ok(boss.npm(["team", "add", "@acme:devs", "dev"]));

    const roster = await ok(boss.npm(["org", "ls", "acme", "--json"]));
    expect(JSON.parse((roster as { stdout?: string }).stdout ?? "{}")).toEqual({ boss: "owner", dev: "developer" });
    const teams = await ok(boss.npm(["team", "ls", "@acme", "--json"]));
    expect(JSON.parse((teams as { stdout?: string }).stdout ?? "[]")).toEqual(["acme:devs"]);
    const members = await ok(boss.npm(["team", "ls", "@acme:devs", "--json"]));
    expect(JSON.parse((members as { stdout?: string }).stdout ?? "[]")).toEqual(["dev"]);

    await ok(publishAs(dev, "1.0.0"));

    await ok(boss.npm(["team", "rm", "@acme:devs", "dev"]));
    const after = await publishAs(dev, "1.0.1");
    expect(after.code).not.toBe(0);
  });

  it("only registry admins create orgs, and only the org's owners and admins manage it", async () => {
    const create = await outsider.npm(["org", "set", "other", "outsider", "owner"]);
    expect(create.code).not.toBe(0);
    expect(create.output).toMatch(/admins/);
    const manage = await outsider.npm(["team", "create", "@acme:rogue"]);
    expect(manage.code).not.toBe(0);
    const hidden = await fetch(`${registry.url}/-/org/acme/user`, {
      headers: { authorization: `Bearer ${outsider.authToken}` },
    });
    expect(hidden.status).toBe(404);
    expect(registry.errors).toEqual([]);
  });
});
