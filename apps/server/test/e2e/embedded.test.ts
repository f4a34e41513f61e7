/**
 * The registry mounted at /npm/ inside someone else's node:http server: createRegistry with a
 * basePath plus createNodeListener, with the host app answering everything else.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fsDriver } from "@fw/storage-r2/fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createNodeListener } from "../../src/adapters/node.js";
import { createRegistry } from "../../src/app.js";
import { Sandbox, userSandbox } from "../helpers/clients.js";
import { installedVersion } from "../helpers/core-suite.js";
import { writePackage } from "../helpers/packages.js";
import { collectingLogger, testConfig } from "../helpers/registry.js";

let server: Server;
let storage: string;
let origin: string;
const errors: string[] = [];

beforeAll(async () => {
  storage = await mkdtemp(join(tmpdir(), "fw-e2e-embedded-"));
  const registry = createRegistry(testConfig(storage), {
    storage: fsDriver({ root: storage, fsync: false }),
    logger: collectingLogger(errors),
    basePath: "/npm",
  });
  await registry.ready;
  const npm = createNodeListener(registry);
  server = createServer((req, res) => {
    if (req.url === "/npm" || req.url?.startsWith("/npm/")) return npm(req, res);
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(`host app: ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => {
    server?.close(resolve);
    server?.closeAllConnections();
  });
  await rm(storage, { recursive: true, force: true });
  expect(errors).toEqual([]);
});

it("npm logs in, publishes and installs through /npm/, and the host app keeps the rest", async () => {
  const registry = `${origin}/npm`;
  await using alice = await userSandbox(registry, "alice");
  expect((await alice.npm(["whoami"])).stdout.trim()).toBe("alice");

  const lib = await writePackage(await alice.dir("mounted-lib"), { name: "mounted-lib", version: "1.0.0" });
  const scoped = await writePackage(await alice.dir("mounted-app"), {
    name: "@mount/app",
    version: "1.0.0",
    dependencies: { "mounted-lib": "^1.0.0" },
  });
  for (const dir of [lib, scoped]) {
    const publish = await alice.npm(["publish"], dir);
    expect(publish.code, publish.output).toBe(0);
  }

  await using reader = await Sandbox.create(registry);
  const project = await reader.project("consumer", { "@mount/app": "^1.0.0" });
  const install = await reader.npm(["install"], project);
  expect(install.code, install.output).toBe(0);
  expect(await installedVersion(project, "@mount/app")).toBe("1.0.0");
  expect(await installedVersion(project, "mounted-lib")).toBe("1.0.0");

  const view = await reader.npm(["view", "mounted-lib", "dist.tarball"]);
  expect(view.stdout.trim()).toBe(`${registry}/mounted-lib/-/mounted-lib-1.0.0.tgz`);

  const host = await fetch(`${origin}/mounted-lib`);
  expect(await host.text()).toBe("host app: /mounted-lib");
  const outside = await fetch(`${origin}/npmx/mounted-lib`);
  expect(await outside.text()).toBe("host app: /npmx/mounted-lib");
});

it("npm web login works under the mount path", async () => {
  await using sandbox = await Sandbox.create(`${origin}/npm`);
  let submitted: Promise<number> | undefined;
  const login = await sandbox.npm(["login"], sandbox.root, {
    timeoutMs: 30_000,
    onOutput(chunk) {
      const url = /(http:\/\/\S+\/-\/web\/login\/[\w-]+)/.exec(chunk)?.[1];
      if (!url || submitted) return;
      submitted = (async () => {
        const html = await (await fetch(url)).text();
        const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1] as string;
        expect(action.startsWith("/npm/-/web/login/")).toBe(true);
        const body = new URLSearchParams({ name: "mounty", password: "mount password", create: "1" });
        return (await fetch(new URL(action, url), { method: "POST", body })).status;
      })();
    },
  });
  expect(login.stdout).toContain(`${origin}/npm/-/web/login/`);
  expect(await submitted).toBe(200);
  expect(login.code, login.output).toBe(0);
  expect((await sandbox.npm(["whoami"])).stdout.trim()).toBe("mounty");
});
