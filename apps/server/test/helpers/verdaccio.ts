/**
 * A storage folder and htpasswd file made by a real Verdaccio 6 (the `verdaccio` dev dependency), for
 * the import tests: it is started on 127.0.0.1, packages are published with the real npm client, and it
 * is stopped again before anything reads its files.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Sandbox } from "./clients.js";
import { digests, makeTarball } from "./packages.js";

const require = createRequire(import.meta.url);
const VERDACCIO_PACKAGE = require.resolve("verdaccio/package.json");

export interface VerdaccioFixture extends AsyncDisposable {
  dir: string;
  configFile: string;
  storage: string;
  htpasswd: string;
  /** Every htpasswd user's password, by name. */
  passwords: Record<string, string>;
  /** What Verdaccio's htpasswd plugin wrote for each user: bcrypt for npm adduser, the others by algorithm. */
  schemes: Record<string, string>;
  remove(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

function config(port: number, upstream: string): string {
  return `# Made by fw's import tests.
storage: ./storage
auth:
  htpasswd:
    file: ./htpasswd
    max_users: 100
uplinks:
  npmjs:
    url: ${upstream}/
    timeout: 5s
    maxage: 10m
    max_fails: 3
    fail_timeout: 1m
  Mirror:
    url: http://127.0.0.1:9/
    auth:
      type: bearer
      token_env: MIRROR_TOKEN
    headers:
      x-team: fw
packages:
  "public-*":
    access: $all
    proxy: npmjs
  "@acme/*":
    access: $authenticated
    publish: alice bob
  "mirror-*":
    access: $authenticated
    proxy: Mirror npmjs
  "@internal/*":
    access: alice
    publish: alice
  "**":
    access: $all
    publish: $authenticated
    unpublish: $authenticated
middlewares:
  audit:
    enabled: true
listen: 127.0.0.1:${port}
max_body_size: 20mb
userRateLimit:
  windowMs: 1000
  max: 50
web:
  title: Our registry
publish:
  allow_offline: false
log: { type: stdout, format: json, level: warn }
security:
  api:
    legacy: false
    jwt:
      sign:
        expiresIn: 7d
`;
}

/**
 * The public registry Verdaccio proxies, reduced to one package (`public-thing@1.0.0`): enough for
 * Verdaccio to cache a copy of it in its storage, which the import must tell from published packages.
 */
async function startUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const tarball = makeTarball({
    "package.json": JSON.stringify({ name: "public-thing", version: "1.0.0" }),
    "index.js": "module.exports = 'public';\n",
  });
  let url = "";
  const server: Server = createHttpServer((req, res) => {
    if (req.url === "/public-thing") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          name: "public-thing",
          "dist-tags": { latest: "1.0.0" },
          versions: {
            "1.0.0": {
              name: "public-thing",
              version: "1.0.0",
              dist: { ...digests(tarball), tarball: `${url}/public-thing/-/public-thing-1.0.0.tgz` },
            },
          },
          time: {
            created: "2020-01-01T00:00:00.000Z",
            modified: "2020-01-01T00:00:00.000Z",
            "1.0.0": "2020-01-01T00:00:00.000Z",
          },
        }),
      );
    } else if (req.url === "/public-thing/-/public-thing-1.0.0.tgz") {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.end(tarball);
    } else {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  url = `http://127.0.0.1:${address.port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function waitForPing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited (${child.exitCode}): ${output()}`);
    try {
      const response = await fetch(`${url}/-/ping`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`verdaccio did not answer in 60 s: ${output()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/** `npm adduser`'s request (CouchDB user document PUT); Verdaccio answers with a token. */
async function addUser(url: string, name: string, password: string): Promise<string> {
  const response = await fetch(`${url}/-/user/org.couchdb.user:${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      _id: `org.couchdb.user:${name}`,
      name,
      password,
      email: `${name}@example.com`,
      type: "user",
    }),
  });
  const body = (await response.json()) as { token?: string };
  if (response.status !== 201 || !body.token) throw new Error(`verdaccio adduser ${name}: ${response.status}`);
  return body.token;
}

async function npmOk(sandbox: Sandbox, args: string[], cwd?: string): Promise<string> {
  const result = await sandbox.npm(args, cwd, { timeoutMs: 60_000 });
  if (result.code !== 0) throw new Error(`npm ${args.join(" ")} failed: ${result.output}`);
  return result.stdout;
}

async function publish(
  sandbox: Sandbox,
  manifest: Record<string, unknown>,
  options: { readme?: string; tag?: string } = {},
): Promise<void> {
  const folder = await sandbox.dir(`src-${String(manifest.name).replace("/", "-")}-${String(manifest.version)}`);
  await writeFile(join(folder, "package.json"), JSON.stringify({ main: "index.js", ...manifest }, null, 2));
  await writeFile(
    join(folder, "index.js"),
    `module.exports = ${JSON.stringify(`${manifest.name}@${manifest.version}`)};\n`,
  );
  if (options.readme) await writeFile(join(folder, "README.md"), options.readme);
  await npmOk(sandbox, ["publish", ...(options.tag ? ["--tag", options.tag] : [])], folder);
}

/**
 * Builds the fixture (about 10 s): users alice and bob through Verdaccio's adduser (bcrypt), packages
 * with several versions, dist-tags, a deprecation and an unpublished version, one published the way
 * npm 6 did (its document then records maintainers: Verdaccio 6 answers `npm owner add` with 422), a
 * public package cached through an uplink, and users carol, dave, erin and frank whose htpasswd lines
 * Verdaccio's own htpasswd plugin wrote with its other algorithms (md5, sha1, crypt) or as {PLAIN}.
 */
export async function makeVerdaccioStorage(): Promise<VerdaccioFixture> {
  const dir = await mkdtemp(join(tmpdir(), "fw-verdaccio-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  const upstream = await startUpstream();
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    const configFile = join(dir, "config.yaml");
    await writeFile(configFile, config(port, upstream.url));
    const bin = join(dirname(VERDACCIO_PACKAGE), "bin", "verdaccio");
    child = spawn(process.execPath, [bin, "--config", configFile], {
      cwd: dir,
      env: { ...process.env, NODE_ENV: "production" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      output = (output + chunk).slice(-4000);
    });
    const url = `http://127.0.0.1:${port}`;
    await waitForPing(url, child, () => output);

    const passwords: Record<string, string> = { alice: "alice password 1", bob: "bob password 22" };
    const aliceToken = await addUser(url, "alice", passwords.alice as string);
    const bobToken = await addUser(url, "bob", passwords.bob as string);
    await using alice = await Sandbox.create(url);
    await alice.setToken(aliceToken);
    await using bob = await Sandbox.create(url);
    await bob.setToken(bobToken);

    const license = { license: "MIT" };
    for (const version of ["1.0.0", "1.0.1", "1.1.0"]) {
      await publish(
        alice,
        { name: "left-pad-x", version, description: `pads, version ${version}`, keywords: ["pad"], ...license },
        { readme: `# left-pad-x\n\nreadme of ${version}\n` },
      );
    }
    await publish(alice, { name: "left-pad-x", version: "2.0.0-beta.1", ...license }, { tag: "beta" });
    await npmOk(alice, ["deprecate", "left-pad-x@1.0.0", "use 1.1.0 or later"]);
    await npmOk(alice, ["dist-tag", "add", "left-pad-x@1.1.0", "stable"]);
    await npmOk(alice, ["dist-tag", "add", "left-pad-x@1.0.1", "legacy"]);
    await npmOk(alice, ["unpublish", "left-pad-x@1.0.1"]);

    for (const version of ["0.1.0", "0.2.0"])
      await publish(
        alice,
        { name: "@acme/widget", version, description: "an acme widget" },
        { readme: "# @acme/widget\n\nWidgets.\n" },
      );
    await publish(
      bob,
      { name: "@acme/widget", version: "0.3.0-next.0", description: "an acme widget" },
      { tag: "next", readme: "# @acme/widget\n\nWidgets, next.\n" },
    );
    await publish(alice, { name: "@internal/secret", version: "1.0.0" });

    // npm 6 sent maintainers and _npmUser with a publish, and Verdaccio keeps what it is sent.
    const packFolder = await bob.dir("old-style");
    await writeFile(join(packFolder, "package.json"), JSON.stringify({ name: "old-style", version: "0.9.0" }));
    const packed = JSON.parse(await npmOk(bob, ["pack", "--json"], packFolder)) as Array<{
      filename: string;
      shasum: string;
      integrity: string;
    }>;
    const info = packed[0] as { filename: string; shasum: string; integrity: string };
    const tgz = await readFile(join(packFolder, info.filename));
    const people = [
      { name: "bob", email: "bob@example.com" },
      { name: "alice", email: "alice@example.com" },
    ];
    const put = await fetch(`${url}/old-style`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${bobToken}` },
      body: JSON.stringify({
        _id: "old-style",
        name: "old-style",
        description: "published the npm 6 way",
        "dist-tags": { latest: "0.9.0" },
        maintainers: people,
        versions: {
          "0.9.0": {
            name: "old-style",
            version: "0.9.0",
            maintainers: people,
            _npmUser: people[0],
            dist: { shasum: info.shasum, integrity: info.integrity, tarball: `${url}/old-style/-/${info.filename}` },
          },
        },
        _attachments: {
          [info.filename]: {
            content_type: "application/octet-stream",
            data: tgz.toString("base64"),
            length: tgz.length,
          },
        },
      }),
    });
    if (put.status !== 201) throw new Error(`old-style publish: ${put.status} ${await put.text()}`);

    // What an install through Verdaccio does: the packument, then the tarball, both cached in its storage.
    const cached = (await (await fetch(`${url}/public-thing`)).json()) as {
      versions: Record<string, { dist: { tarball: string } }>;
    };
    const tarball = await fetch(cached.versions["1.0.0"]?.dist.tarball as string);
    if (!tarball.ok) throw new Error(`public-thing tarball through verdaccio: ${tarball.status}`);
    await tarball.arrayBuffer();

    await stop(child);

    const schemes: Record<string, string> = { alice: "bcrypt", bob: "bcrypt" };
    const { generateHtpasswdLine } = createRequire(VERDACCIO_PACKAGE)("verdaccio-htpasswd/build/utils.js") as {
      generateHtpasswdLine(
        user: string,
        password: string,
        config: { algorithm: string; rounds?: number },
      ): Promise<string>;
    };
    const htpasswd = join(dir, "htpasswd");
    for (const [name, algorithm, password] of [
      ["carol", "md5", "carol password 3"],
      ["dave", "sha1", "dave password 44"],
      ["erin", "crypt", "erinpass"],
    ] as const) {
      await appendFile(htpasswd, await generateHtpasswdLine(name, password, { algorithm }));
      passwords[name] = password;
      schemes[name] = algorithm;
    }
    await appendFile(htpasswd, "frank:{PLAIN}frank password 5:autocreated 2020-01-02T03:04:05.000Z\n");
    passwords.frank = "frank password 5";
    schemes.frank = "plain";

    return {
      dir,
      configFile,
      storage: join(dir, "storage"),
      htpasswd,
      passwords,
      schemes,
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (error) {
    await remove();
    throw error;
  } finally {
    if (child) await stop(child);
    await upstream.close();
  }
}
