import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { tempDir } from "@fw/tooling/test";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Sandbox } from "../../server/test/helpers/clients.js";
import { makeVerdaccioStorage, type VerdaccioFixture } from "../../server/test/helpers/verdaccio.js";
import type { ImportVerdaccioResult } from "../src/commands/registry/import.js";
import { cleanEnv, requireBuilt, runFw, startFw } from "./helpers.js";

let fixture: VerdaccioFixture;

beforeAll(async () => {
  requireBuilt();
  fixture = await makeVerdaccioStorage();
});

afterAll(async () => {
  await fixture?.remove();
});

/** Answers npm's prompts in a terminal, one after the other, as a person would. */
function answering(answers: Array<[RegExp, string]>) {
  let pending = "";
  return {
    terminal: true,
    timeoutMs: 60_000,
    onOutput(chunk: string, write: (text: string) => void) {
      pending += chunk;
      const next = answers[0];
      if (next?.[0].test(pending)) {
        answers.shift();
        pending = "";
        write(`${next[1]}\r`);
      }
    },
  };
}

async function profileHash(storage: string, name: string): Promise<string> {
  const profile = JSON.parse(await readFile(join(storage, "users", name, "profile.json"), "utf8")) as {
    passwordHash: string;
  };
  return profile.passwordHash;
}

describe("fw registry import verdaccio", () => {
  it("imports a real Verdaccio's config, users and storage, and npm then finds everything in fw", async () => {
    await using dir = await tempDir();
    const importArgs = ["registry", "import", "verdaccio", "--config", fixture.configFile];

    const dry = await runFw([...importArgs, "--dry-run"], { cwd: dir.path, env: cleanEnv() });
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("Would import from Verdaccio");
    expect(dry.stdout).toContain("  packages: 4 (8 versions, 8 tarballs), 1 skipped, 0 failed");
    expect(dry.stdout).toContain("Dry run: nothing was written.");
    expect(await readdir(dir.path)).toEqual([]);

    const imported = await runFw([...importArgs, "--json"], { cwd: dir.path, env: cleanEnv() });
    expect(imported.code, imported.stderr).toBe(0);
    const report = JSON.parse(imported.stdout) as ImportVerdaccioResult;
    expect(report).toMatchObject({
      ok: true,
      counts: { packages: 4, versions: 8, tarballs: 8, users: 6, skipped: 1, failed: 0 },
      target: { storage: "fs ./storage", config: join(dir.path, "fw.config.json5") },
      config: { written: true },
    });
    expect(report.config.notConverted.map((item) => item.key)).toEqual([
      "uplinks.Mirror.headers",
      "web",
      "publish",
      "security",
    ]);
    const written = await readFile(join(dir.path, "fw.config.json5"), "utf8");
    expect(written).toContain("//   - web: fw has no web interface for browsing packages");
    expect(written).toContain('    "@acme/*": {\n      access: ["$authenticated"],');

    const again = await runFw(importArgs, { cwd: dir.path, env: cleanEnv() });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("./fw.config.json5 already exists: pass --force to overwrite it");

    await using server = await startFw(["registry", "start", "--port", "0"], { cwd: dir.path, env: cleanEnv() });
    await using anonymous = await Sandbox.create(server.url);

    const view = await anonymous.npm(["view", "left-pad-x", "--json"]);
    expect(view.code, view.output).toBe(0);
    const leftPad = JSON.parse(view.stdout) as {
      versions: string[];
      "dist-tags": Record<string, string>;
      maintainers: string[];
      dist: { tarball: string };
    };
    expect(leftPad.versions).toEqual(["1.0.0", "1.1.0", "2.0.0-beta.1"]);
    expect(leftPad["dist-tags"]).toEqual({ latest: "1.1.0", beta: "2.0.0-beta.1", stable: "1.1.0" });
    expect(leftPad.dist.tarball).toBe(`${server.url}/left-pad-x/-/left-pad-x-1.1.0.tgz`);
    const deprecated = await anonymous.npm(["view", "left-pad-x@1.0.0", "deprecated"]);
    expect(deprecated.stdout.trim()).toBe("use 1.1.0 or later");
    const owners = await anonymous.npm(["owner", "ls", "old-style"]);
    expect(owners.code, owners.output).toBe(0);
    expect(owners.stdout).toMatch(/^bob <bob@example\.com>\nalice <alice@example\.com>\n$/);
    // The converted rules still keep @acme/* from anonymous users.
    const hidden = await anonymous.npm(["view", "@acme/widget"]);
    expect(hidden.code).not.toBe(0);
    expect(hidden.output).toContain("E404");

    // alice logs in with the password she had in Verdaccio (bcrypt); fw then stores it as scrypt.
    await using alice = await Sandbox.create(server.url);
    const storage = join(dir.path, "storage");
    expect(await profileHash(storage, "alice")).toMatch(/^\$2a\$10\$/);
    const login = await alice.npm(
      ["login", "--auth-type=legacy"],
      alice.root,
      answering([
        [/Username:/, "alice"],
        [/Password:/, fixture.passwords.alice as string],
      ]),
    );
    expect(login.code, login.output).toBe(0);
    expect((await alice.npm(["whoami"])).stdout.trim()).toBe("alice");
    expect(await profileHash(storage, "alice")).toMatch(/^scrypt\$32768\$8\$1\$/);

    const project = await alice.project("app", { "left-pad-x": "1.0.0", "@acme/widget": "^0.2.0" });
    const install = await alice.npm(["install"], project);
    expect(install.code, install.output).toBe(0);
    expect(install.output).toContain("deprecated left-pad-x@1.0.0: use 1.1.0 or later");
    expect(await readFile(join(project, "node_modules", "left-pad-x", "index.js"), "utf8")).toContain(
      "left-pad-x@1.0.0",
    );
    const widget = JSON.parse(
      await readFile(join(project, "node_modules", "@acme", "widget", "package.json"), "utf8"),
    ) as { version: string };
    expect(widget.version).toBe("0.2.0");

    // erin's htpasswd line is DES crypt(3), written by Verdaccio's own htpasswd plugin.
    await using erin = await Sandbox.create(server.url);
    expect(await profileHash(storage, "erin")).toMatch(/^[./0-9A-Za-z+]{13}$/);
    const erinLogin = await erin.npm(
      ["login", "--auth-type=legacy"],
      erin.root,
      answering([
        [/Username:/, "erin"],
        [/Password:/, fixture.passwords.erin as string],
      ]),
    );
    expect(erinLogin.code, erinLogin.output).toBe(0);
    expect(await profileHash(storage, "erin")).toMatch(/^scrypt\$/);

    // Verdaccio 6 kept no owners of left-pad-x: those its publish rule allowed own it in fw, so alice
    // can still tag it.
    const tag = await alice.npm(["dist-tag", "add", "left-pad-x@2.0.0-beta.1", "next"]);
    expect(tag.code, tag.output).toBe(0);
  });

  it("exits 1 and lists what it could not import", async () => {
    await using dir = await tempDir();
    await cp(fixture.dir, join(dir.path, "verdaccio"), { recursive: true });
    const tarball = join(dir.path, "verdaccio", "storage", "old-style", "old-style-0.9.0.tgz");
    const bytes = await readFile(tarball);
    bytes[20] = (bytes[20] as number) ^ 0xff;
    await writeFile(tarball, bytes);
    const out = join(dir.path, "fw", "fw.config.json5");

    const result = await runFw(
      [
        "registry",
        "import",
        "verdaccio",
        "--config",
        join(dir.path, "verdaccio", "config.yaml"),
        "--storage",
        join(dir.path, "verdaccio", "storage"),
        "--out",
        out,
      ],
      { cwd: dir.path, env: cleanEnv() },
    );
    expect(result.code, result.stderr).toBe(1);
    expect(result.stdout).toContain("  packages: 3 (7 versions, 7 tarballs), 1 skipped, 1 failed");
    expect(result.stdout).toContain(
      "Failed packages (not imported):\n  old-style@0.9.0: the tarball does not match dist.shasum",
    );
    expect(result.stdout).toContain("Some things could not be imported");
    expect(await readdir(join(dir.path, "fw", "storage", "packages"))).toEqual(["@acme", "@internal", "left-pad-x"]);
  });
});
