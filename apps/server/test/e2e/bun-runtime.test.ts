/** The registry itself running under Bun (serving with `Bun.serve`, not Node), driven by npm and `bun install`. */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fsDriver } from "@fw/storage-r2/fs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createRegistry } from "../../src/app.js";
import { BUN, userSandbox } from "../helpers/clients.js";
import { installedVersion } from "../helpers/core-suite.js";
import { writePackage } from "../helpers/packages.js";
import { testConfig } from "../helpers/registry.js";

const ENTRY = fileURLToPath(new URL("../fixtures/bun-server.ts", import.meta.url));
let server: ChildProcess;
let storage: string;
let url: string;
let log = "";

beforeAll(async () => {
  storage = await mkdtemp(join(tmpdir(), "fw-e2e-bun-storage-"));
  server = spawn(BUN, [ENTRY, storage], {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Bun server did not start:\n${log}`)), 30_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const found = /listening (http:\/\/\S+) on bun /.exec(log)?.[1];
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    server.stdout?.on("data", onData);
    server.stderr?.on("data", onData);
    server.once("exit", (code) => reject(new Error(`the Bun server exited with ${code}:\n${log}`)));
  });
});

afterAll(async () => {
  if (server?.exitCode === null) {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    server.kill("SIGTERM");
    await exited;
  }
  await rm(storage, { recursive: true, force: true });
});

it("serves npm publish and bun install while running on Bun", async () => {
  await using sandbox = await userSandbox(url, "bunny");
  const lib = await writePackage(await sandbox.dir("bun-lib"), { name: "bun-lib", version: "1.0.0" });
  const publish = await sandbox.npm(["publish"], lib);
  expect(publish.code, publish.output).toBe(0);
  const app = await writePackage(await sandbox.dir("@bun+app"), {
    name: "@bun/app",
    version: "0.1.0",
    dependencies: { "bun-lib": "^1.0.0" },
  });
  await sandbox.writeBunfig(app);
  const bunPublish = await sandbox.bun(["publish"], app);
  expect(bunPublish.code, bunPublish.output).toBe(0);
  expect(bunPublish.output).toContain("+ @bun/app@0.1.0");

  const project = await sandbox.project("bun-consumer", { "@bun/app": "0.1.0" });
  await sandbox.writeBunfig(project);
  const install = await sandbox.bun(["install"], project);
  expect(install.code, install.output).toBe(0);
  expect(install.output).toContain("+ @bun/app@0.1.0");
  expect(await installedVersion(project, "@bun/app")).toBe("0.1.0");
  expect(await installedVersion(project, "bun-lib")).toBe("1.0.0");
  const ran = await sandbox.bun(["-e", "console.log(require('bun-lib'))"], project);
  expect(ran.stdout.trim()).toBe("bun-lib@1.0.0");
  expect(log).not.toMatch(/"level":50|error/i);
});

it("answers cached reads from Bun.serve as Node does: gzip, ETag and 304, HEAD lengths, scoped names, 404s", async () => {
  // bun-lib was published and installed above, so its packument and tarball are cached (the fast path).
  const first = await fetch(`${url}/bun-lib`, { headers: { "accept-encoding": "gzip" } });
  expect(first.status).toBe(200);
  expect(first.headers.get("content-encoding")).toBe("gzip");
  expect(first.headers.get("vary")).toBe("Accept, Accept-Encoding");
  // Bun.serve, not Bun's node:http (which, like Node's, announces "keep-alive: timeout=65").
  expect(first.headers.get("keep-alive")).toBeNull();
  const etag = first.headers.get("etag") as string;
  const doc = (await first.json()) as { versions: Record<string, { dist: { tarball: string; integrity: string } }> };
  const tarball = doc.versions["1.0.0"]?.dist.tarball as string;
  expect(tarball).toBe(`${url}/bun-lib/-/bun-lib-1.0.0.tgz`);
  expect((await fetch(`${url}/bun-lib`, { headers: { "if-none-match": etag } })).status).toBe(304);
  // The same cached bodies again (Bun then serves them from a Blob made on the first read): same bytes.
  const again = await fetch(`${url}/bun-lib`, { headers: { "accept-encoding": "gzip" } });
  expect(again.headers.get("etag")).toBe(etag);
  expect(await again.json()).toEqual(doc);
  const got = await fetch(tarball);
  const bytes = new Uint8Array(await got.arrayBuffer());
  const integrity = `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
  expect(integrity).toBe(doc.versions["1.0.0"]?.dist.integrity);
  for (const round of [2, 3]) {
    const repeat = await fetch(tarball);
    expect(repeat.headers.get("content-length"), `round ${round}`).toBe(String(bytes.byteLength));
    expect(new Uint8Array(await repeat.arrayBuffer()), `round ${round}`).toEqual(bytes);
  }
  const head = await fetch(tarball, { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(head.headers.get("content-length")).toBe(String(bytes.byteLength));
  const scoped = await fetch(`${url}/@bun%2fapp`, { headers: { accept: "application/vnd.npm.install-v1+json" } });
  expect(scoped.status).toBe(200);
  expect(Object.keys(((await scoped.json()) as { versions: object }).versions)).toEqual(["0.1.0"]);
  const missing = await fetch(`${url}/no-such-package`);
  expect(missing.status).toBe(404);
  expect(await missing.json()).toEqual({ error: expect.stringContaining("not found") });
  const anonymous = await fetch(`${url}/-/whoami`);
  expect(anonymous.status).toBe(401);
});

it("accepts a token that a Node process created in the same storage (replicas on both runtimes)", async () => {
  // Tokens are stored as SHA-256 hashes; on Bun fw hashes with Bun's own SHA-256, on Node with node:crypto.
  const node = createRegistry(testConfig(storage), { storage: fsDriver({ root: storage, fsync: false }) });
  try {
    await node.services.users.store.create("noder", "noder password 1");
    const { token } = await node.services.users.createToken("noder", {});
    for (const round of [1, 2]) {
      // The second request takes the cached-token path (a hash lookup only).
      const whoami = await fetch(`${url}/-/whoami`, { headers: { authorization: `Bearer ${token}` } });
      expect(whoami.status, `round ${round}`).toBe(200);
      expect(await whoami.json()).toEqual({ username: "noder" });
    }
    const forged = await fetch(`${url}/-/whoami`, { headers: { authorization: `Bearer ${token.slice(0, -2)}xx` } });
    expect(forged.status).toBe(401);
  } finally {
    await node.close();
  }
});

it("shuts down cleanly on SIGTERM", async () => {
  const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
  server.kill("SIGTERM");
  expect(await exited).toBe(0);
  await expect(fetch(`${url}/-/ping`)).rejects.toThrow();
});
