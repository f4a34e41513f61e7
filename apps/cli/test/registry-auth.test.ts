import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AuditLog } from "@fw/auth";
import { fsDriver } from "@fw/storage-r2/fs";
import { tempDir } from "@fw/tooling/test";
import { beforeAll, describe, expect, it } from "vitest";
import { cleanEnv, requireBuilt, runFw } from "./helpers.js";

beforeAll(requireBuilt);

async function project() {
  const dir = await tempDir();
  await writeFile(
    join(dir.path, "fw.config.json5"),
    `{
  storage: { driver: "fs", path: "./storage" },
  teams: { "acme:devs": ["alice"] },
  packages: { "@acme/*": { access: "$authenticated", publish: ["acme:devs"] } },
}\n`,
  );
  const fw = async (args: string[], input?: string) => {
    const result = await runFw([...args, "--json"], {
      cwd: dir.path,
      env: cleanEnv(),
      ...(input !== undefined && { input }),
    });
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as unknown;
  };
  return { dir, fw };
}

describe("fw registry user / token / access", () => {
  it("manages users and tokens in the storage and explains access decisions", async () => {
    const { dir, fw } = await project();
    await using _ = dir;
    expect(
      await fw(
        ["registry", "user", "add", "alice", "--password-stdin", "--email", "a@example.com"],
        "alice password 1\n",
      ),
    ).toMatchObject({
      name: "alice",
      email: "a@example.com",
      disabled: false,
    });
    await fw(["registry", "user", "add", "bob", "--password=bob password 1"]);
    const users = (await fw(["registry", "user", "list"])) as Array<{ name: string }>;
    expect(users.map((u) => u.name)).toEqual(["alice", "bob"]);

    const created = (await fw([
      "registry",
      "token",
      "create",
      "alice",
      "--name=ci",
      "--scopes=@acme",
      "--expires=30",
    ])) as { token: string; key: string; scopes: string[]; hash?: string };
    expect(created.token).toMatch(/^fw_/);
    expect(created.scopes).toEqual(["@acme"]);
    expect(created.hash).toBeUndefined();
    const listed = (await fw(["registry", "token", "list", "alice"])) as Array<{ key: string; token?: string }>;
    expect(listed.map((t) => t.key)).toEqual([created.key]);
    expect(JSON.stringify(listed)).not.toContain(created.token);
    const due = (await fw(["registry", "token", "due", "--within=31"])) as Array<{ key?: string }>;
    expect(due.map((d) => d.key)).toEqual([created.key]);

    const allowed = (await fw(["registry", "access", "check", created.token, "publish", "@acme/web"])) as {
      allowed: boolean;
    };
    expect(allowed.allowed).toBe(true);
    const outside = (await fw(["registry", "access", "check", created.token, "publish", "lodash"])) as {
      allowed: boolean;
      reason: string;
    };
    expect(outside).toMatchObject({ allowed: false });
    expect(outside.reason).toContain("may only be used for @acme/*");
    const bob = (await fw(["registry", "access", "check", "bob", "publish", "@acme/web"])) as { reason: string };
    expect(bob.reason).toBe('bob may not publish @acme/web: rule "@acme/*" allows acme:devs');
    const anonymous = (await fw(["registry", "access", "check", "anonymous", "access", "@acme/web"])) as {
      notFound?: boolean;
    };
    expect(anonymous.notFound).toBe(true);

    await fw(["registry", "token", "revoke", "alice", created.key.slice(0, 8)]);
    expect(await fw(["registry", "token", "list", "alice"])).toEqual([]);
    expect(await fw(["registry", "user", "disable", "bob", "--reason=left"])).toMatchObject({ disabled: true });
    expect(await fw(["registry", "user", "enable", "bob"])).toMatchObject({ disabled: false });
    expect(
      await fw(["registry", "user", "reset-password", "bob", "--password-stdin"], "new bob password\n"),
    ).toMatchObject({
      name: "bob",
      revokedTokens: 0,
    });
  });

  it("prints the audit trail the registry wrote, filtered", async () => {
    const { dir, fw } = await project();
    await using _ = dir;
    const storage = fsDriver({ root: join(dir.path, "storage") });
    const audit = new AuditLog(storage);
    await audit.append({ action: "publish", actor: "alice", package: "@acme/web", outcome: "success" });
    await audit.append({ action: "access.denied", actor: "bob", package: "@acme/web", outcome: "failure" });
    await audit.append({ action: "login", actor: "bob", outcome: "success" });
    const all = (await fw(["registry", "audit"])) as Array<{ action: string }>;
    expect(all.map((e) => e.action)).toEqual(["publish", "access.denied", "login"]);
    const bob = (await fw(["registry", "audit", "--user=bob", "--package=@acme/web"])) as Array<{ action: string }>;
    expect(bob.map((e) => e.action)).toEqual(["access.denied"]);
    const future = await fw(["registry", "audit", "--since=2999-01-01"]);
    expect(future).toEqual([]);
  });

  it("fails with one line naming the problem", async () => {
    const { dir } = await project();
    await using _ = dir;
    const result = await runFw(["registry", "access", "check", "nobody", "publish", "x"], {
      cwd: dir.path,
      env: cleanEnv(),
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('fw: user "nobody" not found\n');
  });
});
