import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Sandbox, userSandbox } from "../helpers/clients.js";
import { writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

let registry: TestRegistry;
let alice: Sandbox;
let bob: Sandbox;

beforeAll(async () => {
  registry = await startTestRegistry();
  alice = await userSandbox(registry.url, "alice");
  bob = await userSandbox(registry.url, "bob");
});

afterAll(async () => {
  await alice?.[Symbol.asyncDispose]();
  await bob?.[Symbol.asyncDispose]();
  await registry?.close();
  expect(registry?.errors ?? []).toEqual([]);
});

async function publishAs(sandbox: Sandbox, name: string, version: string) {
  const dir = await writePackage(await sandbox.dir(`src-${name.replace("/", "+")}-${version}`), { name, version });
  return sandbox.npm(["publish"], dir);
}

async function versions(name: string): Promise<string[]> {
  const doc = (await (await fetch(`${registry.url}/${name}`)).json()) as { versions: Record<string, unknown> };
  return Object.keys(doc.versions);
}

describe("npm owner", () => {
  it("only owners publish; owner add lets another user publish, owner rm takes it back", async () => {
    expect((await publishAs(alice, "owned-pkg", "1.0.0")).code).toBe(0);

    const ls = await alice.npm(["owner", "ls", "owned-pkg"]);
    expect(ls.code, ls.output).toBe(0);
    expect(ls.stdout.trim()).toBe("alice <alice@example.com>");

    const intruder = await publishAs(bob, "owned-pkg", "1.1.0");
    expect(intruder.code).not.toBe(0);
    expect(intruder.output).toContain("403 Forbidden");
    expect(intruder.output).toContain(
      "bob is not a maintainer of owned-pkg: ask one of alice to run `npm owner add bob owned-pkg`",
    );
    expect(await versions("owned-pkg")).toEqual(["1.0.0"]);

    const notOwner = await bob.npm(["owner", "add", "bob", "owned-pkg"]);
    expect(notOwner.code).not.toBe(0);
    expect(notOwner.output).toContain("403");

    const add = await alice.npm(["owner", "add", "bob", "owned-pkg"]);
    expect(add.code, add.output).toBe(0);
    expect(add.stdout).toContain("+ bob (owned-pkg)");
    const both = await bob.npm(["owner", "ls", "owned-pkg"]);
    expect(both.stdout.trim().split("\n")).toEqual(["alice <alice@example.com>", "bob <bob@example.com>"]);

    const allowed = await publishAs(bob, "owned-pkg", "1.1.0");
    expect(allowed.code, allowed.output).toBe(0);
    expect(await versions("owned-pkg")).toEqual(["1.0.0", "1.1.0"]);

    const rm = await alice.npm(["owner", "rm", "bob", "owned-pkg"]);
    expect(rm.code, rm.output).toBe(0);
    expect(rm.stdout).toContain("- bob (owned-pkg)");
    expect((await alice.npm(["owner", "ls", "owned-pkg"])).stdout.trim()).toBe("alice <alice@example.com>");

    const revoked = await publishAs(bob, "owned-pkg", "1.2.0");
    expect(revoked.code).not.toBe(0);
    expect(revoked.output).toContain("bob is not a maintainer of owned-pkg");
    expect(await versions("owned-pkg")).toEqual(["1.0.0", "1.1.0"]);
  });

  it("refuses to add an account that does not exist", async () => {
    expect((await publishAs(alice, "lonely-pkg", "1.0.0")).code).toBe(0);
    const add = await alice.npm(["owner", "add", "nobody-here", "lonely-pkg"]);
    expect(add.code).not.toBe(0);
    expect(add.output).toContain("404");
    expect((await alice.npm(["owner", "ls", "lonely-pkg"])).stdout.trim()).toBe("alice <alice@example.com>");
  });

  it("a user who is not an owner cannot unpublish, deprecate or tag", async () => {
    expect((await publishAs(alice, "guarded-pkg", "1.0.0")).code).toBe(0);
    expect((await publishAs(alice, "guarded-pkg", "1.0.1")).code).toBe(0);

    for (const args of [
      ["unpublish", "guarded-pkg@1.0.1"],
      ["unpublish", "guarded-pkg", "--force"],
      ["deprecate", "guarded-pkg@1.0.0", "taken over"],
      ["dist-tag", "add", "guarded-pkg@1.0.0", "evil"],
    ]) {
      const result = await bob.npm(args);
      expect(result.code, args.join(" ")).not.toBe(0);
      expect(result.output, args.join(" ")).toContain("403");
    }
    const doc = (await (await fetch(`${registry.url}/guarded-pkg`)).json()) as {
      versions: Record<string, { deprecated?: string }>;
      "dist-tags": Record<string, string>;
    };
    expect(Object.keys(doc.versions)).toEqual(["1.0.0", "1.0.1"]);
    expect(doc.versions["1.0.0"]?.deprecated).toBeUndefined();
    expect(doc["dist-tags"]).toEqual({ latest: "1.0.1" });
  });
});
