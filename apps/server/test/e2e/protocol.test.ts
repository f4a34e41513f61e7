/**
 * The registry's HTTP answers as npm-compatible clients rely on them: caching validators, compression,
 * abbreviated documents, and clear npm-style errors for bad input that leave storage untouched.
 */
import { randomBytes } from "node:crypto";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addUser, Sandbox } from "../helpers/clients.js";
import { rawRequest, storageSnapshot } from "../helpers/http.js";
import { makeTarball, publishBody, writePackage } from "../helpers/packages.js";
import { startTestRegistry, type TestRegistry } from "../helpers/registry.js";

const ABBREVIATED = "application/vnd.npm.install-v1+json";
let registry: TestRegistry;
let token: string;

beforeAll(async () => {
  registry = await startTestRegistry();
  token = await addUser(registry.url, "alice");
  for (const version of ["1.0.0", "1.1.0"]) {
    const published = await put(
      "/proto-pkg",
      publishBody(registry.url, {
        name: "proto-pkg",
        version,
        manifest: { readme: "# proto", dependencies: { leftpad: "^1.0.0" }, scripts: { test: "exit 0" } },
      }),
    );
    expect(published.status).toBe(201);
  }
});

afterAll(async () => {
  await registry?.close();
  expect(registry?.errors ?? []).toEqual([]);
});

function put(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${registry.url}${path}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: typeof body === "string" ? body : body instanceof Uint8Array ? new Uint8Array(body) : JSON.stringify(body),
  });
}

describe("conditional GET", () => {
  it("answers 304 for a matching If-None-Match, and a new ETag after a change", async () => {
    const first = await rawRequest(`${registry.url}/proto-pkg`);
    expect(first.status).toBe(200);
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"/);

    const again = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.body.byteLength).toBe(0);
    expect(again.headers.etag).toBe(etag);

    // The abbreviated document is another representation, with its own validator.
    const abbreviated = await rawRequest(`${registry.url}/proto-pkg`, { headers: { accept: ABBREVIATED } });
    expect(abbreviated.headers.etag).not.toBe(etag);
    expect(
      (await rawRequest(`${registry.url}/proto-pkg`, { headers: { accept: ABBREVIATED, "if-none-match": etag } }))
        .status,
    ).toBe(200);

    expect((await put("/-/package/proto-pkg/dist-tags/beta", JSON.stringify("1.0.0"))).status).toBe(201);
    const changed = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "if-none-match": etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.etag).not.toBe(etag);
    expect(JSON.parse(changed.body.toString())["dist-tags"]).toEqual({ latest: "1.1.0", beta: "1.0.0" });

    const tarball = await rawRequest(`${registry.url}/proto-pkg/-/proto-pkg-1.0.0.tgz`);
    expect(tarball.status).toBe(200);
    const cached = await rawRequest(`${registry.url}/proto-pkg/-/proto-pkg-1.0.0.tgz`, {
      headers: { "if-none-match": tarball.headers.etag as string },
    });
    expect(cached.status).toBe(304);
    expect(cached.body.byteLength).toBe(0);
  });
});

describe("content negotiation", () => {
  it("compresses documents with br or gzip as asked, and sends identity otherwise", async () => {
    const plain = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "accept-encoding": "identity" } });
    expect(plain.headers["content-encoding"]).toBeUndefined();
    const expected = JSON.parse(plain.body.toString());

    const br = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "accept-encoding": "gzip, deflate, br" } });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toContain("Accept-Encoding");
    expect(JSON.parse(brotliDecompressSync(br.body).toString())).toEqual(expected);

    const gzip = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "accept-encoding": "gzip" } });
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(JSON.parse(gunzipSync(gzip.body).toString())).toEqual(expected);

    const refusedBr = await rawRequest(`${registry.url}/proto-pkg`, { headers: { "accept-encoding": "br;q=0, gzip" } });
    expect(refusedBr.headers["content-encoding"]).toBe("gzip");
  });

  it("serves the abbreviated document with `modified` and only the fields installers read", async () => {
    const full = await rawRequest(`${registry.url}/proto-pkg`, { headers: { accept: "application/json" } });
    expect(full.headers["content-type"]).toBe("application/json");
    const doc = JSON.parse(full.body.toString());
    expect(doc.readme).toBe("# proto");
    expect(doc.maintainers).toEqual([{ name: "alice", email: "alice@example.com" }]);
    expect(Object.keys(doc.time)).toEqual(expect.arrayContaining(["created", "modified", "1.0.0", "1.1.0"]));
    expect(doc.versions["1.0.0"].scripts).toEqual({ test: "exit 0" });
    expect(doc.versions["1.0.0"].description).toBe("test package proto-pkg");

    const response = await rawRequest(`${registry.url}/proto-pkg`, {
      headers: { accept: `${ABBREVIATED}; q=1.0, application/json; q=0.8, */*` },
    });
    expect(response.headers["content-type"]).toBe(ABBREVIATED);
    const slim = JSON.parse(response.body.toString());
    expect(Object.keys(slim).sort()).toEqual(["dist-tags", "modified", "name", "versions"]);
    expect(slim.modified).toBe(doc.time.modified);
    expect(slim.versions["1.0.0"]).toEqual({
      name: "proto-pkg",
      version: "1.0.0",
      dependencies: { leftpad: "^1.0.0" },
      dist: {
        shasum: doc.versions["1.0.0"].dist.shasum,
        integrity: doc.versions["1.0.0"].dist.integrity,
        tarball: `${registry.url}/proto-pkg/-/proto-pkg-1.0.0.tgz`,
      },
    });
  });
});

describe("bad input", () => {
  async function expectRefused(
    response: Response | Promise<Response>,
    status: number,
    message: string | RegExp,
  ): Promise<void> {
    const answer = await response;
    expect(answer.status).toBe(status);
    expect(answer.headers.get("content-type")).toBe("application/json");
    const body = (await answer.json()) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toMatch(message);
  }

  /** Each refusal must leave every stored object as it was. */
  async function unchanged(action: () => Promise<void>): Promise<void> {
    const before = await storageSnapshot(registry.storage);
    await action();
    expect(await storageSnapshot(registry.storage)).toEqual(before);
  }

  it("malformed JSON", () =>
    unchanged(async () => {
      await expectRefused(put("/proto-pkg", '{"name": "proto-pkg", '), 400, "the request body is not valid JSON");
      await expectRefused(put("/proto-pkg", ""), 400, "the request body is empty; expected JSON");
      await expectRefused(put("/-/package/proto-pkg/dist-tags/beta", "1.1.0"), 400, "not valid JSON");
    }));

  it("a body that is not JSON, or not the document expected", () =>
    unchanged(async () => {
      const tarball = makeTarball({ "package.json": '{"name":"proto-pkg","version":"2.0.0"}' });
      await expectRefused(
        put("/proto-pkg", tarball, { "content-type": "application/octet-stream" }),
        415,
        "expected a JSON body (Content-Type: application/json)",
      );
      await expectRefused(
        put("/proto-pkg", "name=proto-pkg", { "content-type": "application/x-www-form-urlencoded" }),
        415,
        'expected a JSON body (Content-Type: application/json), not "application/x-www-form-urlencoded"',
      );
      await expectRefused(put("/proto-pkg", "[1, 2, 3]"), 400, /JSON object/);
      await expectRefused(put("/proto-pkg", JSON.stringify("1.0.0")), 400, /JSON object/);
      await expectRefused(
        put("/-/package/proto-pkg/dist-tags/beta", { version: "1.1.0" }),
        400,
        "must be a JSON string",
      );
    }));

  it("a tarball that does not match its integrity", () =>
    unchanged(async () => {
      const other = makeTarball({ "package.json": '{"name":"proto-pkg","version":"2.0.0","x":1}' });
      const body = publishBody(registry.url, { name: "proto-pkg", version: "2.0.0" });
      const lie = publishBody(registry.url, { name: "proto-pkg", version: "2.0.0", tarball: other });
      (body.versions as Record<string, { dist: unknown }>)["2.0.0"] = (
        lie.versions as Record<string, { dist: unknown }>
      )["2.0.0"] as { dist: unknown };
      await expectRefused(put("/proto-pkg", body), 400, "the tarball does not match dist.shasum");
      const sriOnly = publishBody(registry.url, {
        name: "proto-pkg",
        version: "2.0.0",
        dist: { shasum: undefined, integrity: "sha512-AAAA" },
      });
      delete (
        (sriOnly.versions as Record<string, { dist: Record<string, unknown> }>)["2.0.0"] as {
          dist: Record<string, unknown>;
        }
      ).dist.shasum;
      await expectRefused(put("/proto-pkg", sriOnly), 400, "the tarball does not match dist.integrity");
    }));

  it("a tarball whose package.json names another package or version", () =>
    unchanged(async () => {
      const wrongName = makeTarball({ "package.json": '{"name":"other-pkg","version":"2.0.0"}' });
      await expectRefused(
        put("/proto-pkg", publishBody(registry.url, { name: "proto-pkg", version: "2.0.0", tarball: wrongName })),
        400,
        "the tarball's package.json is other-pkg@2.0.0, not proto-pkg@2.0.0",
      );
      const wrongVersion = makeTarball({ "package.json": '{"name":"proto-pkg","version":"9.9.9"}' });
      await expectRefused(
        put("/proto-pkg", publishBody(registry.url, { name: "proto-pkg", version: "2.0.0", tarball: wrongVersion })),
        400,
        "the tarball's package.json is proto-pkg@9.9.9, not proto-pkg@2.0.0",
      );
      await expectRefused(
        put(
          "/proto-pkg",
          publishBody(registry.url, {
            name: "proto-pkg",
            version: "2.0.0",
            tarball: new TextEncoder().encode("not a tarball"),
          }),
        ),
        400,
        "the attached tarball is not a valid gzipped tar with a package.json",
      );
    }));

  it("path-traversal names", () =>
    unchanged(async () => {
      for (const path of [
        "/..%2f..%2fetc%2fpasswd",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/@scope%2f..%2f..%2fusers",
        "/proto-pkg/-/..%2f..%2fusers%2falice%2fprofile.json",
        "/..%5c..%5cetc%5cpasswd",
        "/proto-pkg%00",
      ]) {
        for (const method of ["GET", "PUT", "DELETE"]) {
          const response = await fetch(`${registry.url}${path}`, {
            method,
            headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
            ...(method === "PUT" && {
              body: JSON.stringify(publishBody(registry.url, { name: "../../etc/passwd", version: "1.0.0" })),
            }),
          });
          expect([400, 404], `${method} ${path}`).toContain(response.status);
          expect(response.headers.get("content-type")).toBe("application/json");
          expect(Object.keys((await response.json()) as object)).toEqual(["error"]);
        }
      }
    }));

  it("an invalid package name", () =>
    unchanged(async () => {
      await expectRefused(
        put("/Proto-Upper", publishBody(registry.url, { name: "Proto-Upper", version: "1.0.0" })),
        400,
        'invalid package name "Proto-Upper": name can no longer contain capital letters',
      );
      await expectRefused(
        put("/.hidden", publishBody(registry.url, { name: ".hidden", version: "1.0.0" })),
        400,
        /invalid package name/,
      );
      await expectRefused(
        put("/proto-pkg", publishBody(registry.url, { name: "other-pkg", version: "1.0.0" })),
        400,
        `the document's name does not match the URL's package "proto-pkg"`,
      );
    }));

  it("an invalid version", () =>
    unchanged(async () => {
      await expectRefused(
        put("/proto-pkg", publishBody(registry.url, { name: "proto-pkg", version: "2.0" })),
        400,
        'invalid version "2.0": expected a semver version like 1.2.3',
      );
      await expectRefused(
        put("/proto-pkg", publishBody(registry.url, { name: "proto-pkg", version: "v2.0.0" })),
        400,
        /invalid version "v2.0.0"/,
      );
      await expectRefused(
        put("/-/package/proto-pkg/dist-tags/1.x", JSON.stringify("1.0.0")),
        400,
        /invalid dist-tag "1.x"/,
      );
    }));

  it("a publish without credentials, or with a bad token", () =>
    unchanged(async () => {
      const body = JSON.stringify(publishBody(registry.url, { name: "proto-pkg", version: "3.0.0" }));
      await expectRefused(
        fetch(`${registry.url}/proto-pkg`, { method: "PUT", headers: { "content-type": "application/json" }, body }),
        401,
        "you must be logged in to publish or change packages: run `npm login`",
      );
      await expectRefused(
        put("/proto-pkg", body, { authorization: "Bearer fw_not-a-real-token" }),
        401,
        /not an fw registry token|unknown/,
      );
    }));
});

describe("body size limit", () => {
  it("answers 413 for a body over limits.maxBodySize, storing nothing", async () => {
    await using small = await startTestRegistry({ maxBodySize: 64 * 1024 });
    const smallToken = await addUser(small.url, "alice");
    const before = await storageSnapshot(small.storage);
    const tarball = makeTarball({
      "package.json": '{"name":"huge-pkg","version":"1.0.0"}',
      "blob.bin": crypto.getRandomValues(new Uint8Array(60 * 1024)),
    });
    const response = await fetch(`${small.url}/huge-pkg`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${smallToken}` },
      body: JSON.stringify(publishBody(small.url, { name: "huge-pkg", version: "1.0.0", tarball })),
    });
    expect(response.status).toBe(413);
    expect(await response.json()).toEqual({ error: "the request body is larger than the limit of 65536 bytes" });
    expect(await storageSnapshot(small.storage)).toEqual(before);
    expect((await fetch(`${small.url}/huge-pkg`)).status).toBe(404);

    await using sandbox = await Sandbox.create(small.url);
    await sandbox.setToken(smallToken);
    const dir = await writePackage(await sandbox.dir("huge"), {
      name: "huge-pkg",
      version: "1.0.0",
      files: { "blob.bin": randomBytes(1024 * 1024) },
    });
    const publish = await sandbox.npm(["publish"], dir);
    expect(publish.code).not.toBe(0);
    expect(publish.output).toContain("413 Payload Too Large");
    expect(publish.output).toContain("the request body is larger than the limit of 65536 bytes");
    expect(await storageSnapshot(small.storage)).toEqual(before);
    expect(small.errors).toEqual([]);
  });
});
