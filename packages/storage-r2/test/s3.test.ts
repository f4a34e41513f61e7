/**
 * The s3 driver against a real S3 server: the Ceph RGW that @fw/tooling's global setup starts (or the
 * one FW_TEST_S3_* points at). Fakes would accept conditional writes without enforcing them.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from "@aws-sdk/client-s3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { memoryDriver } from "../src/drivers/memory.js";
import { type S3DriverOptions, s3Driver, s3OptionsFromEnv } from "../src/drivers/s3.js";
import type { StorageDriver } from "../src/index.js";
import { sync } from "../src/sync.js";
import { describeDriver, expectCode, must, readStream } from "./contract.js";

function fromEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; the Ceph global setup of @fw/tooling sets it`);
  return value;
}

const accessKeyId = fromEnv("FW_TEST_S3_ACCESS_KEY");
const secretAccessKey = fromEnv("FW_TEST_S3_SECRET_KEY");
const server = {
  endpoint: fromEnv("FW_TEST_S3_ENDPOINT"),
  region: "us-east-1",
  forcePathStyle: true,
  credentials: { accessKeyId, secretAccessKey },
};
const bucket = fromEnv("FW_TEST_S3_BUCKET");
const admin = new S3Client({
  ...server,
  credentials: { accessKeyId, secretAccessKey },
  requestChecksumCalculation: "WHEN_REQUIRED",
});
const MiB = 1024 * 1024;
const text = new TextDecoder();
const utf8 = new TextEncoder();

/** What each test wrote, removed after it so a shared server does not fill up. */
const written: Array<{ bucket: string; prefix?: string; own?: boolean }> = [];
const drivers: StorageDriver[] = [];

async function removeAll(target: { bucket: string; prefix?: string; own?: boolean }): Promise<void> {
  let token: string | undefined;
  do {
    const page = await admin.send(
      new ListObjectsV2Command({ Bucket: target.bucket, Prefix: target.prefix, ContinuationToken: token }),
    );
    const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []));
    if (keys.length > 0)
      await admin.send(new DeleteObjectsCommand({ Bucket: target.bucket, Delete: { Objects: keys } }));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (target.own) await admin.send(new DeleteBucketCommand({ Bucket: target.bucket }));
}

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((driver) => driver.dispose?.()));
  for (const target of written.splice(0)) await removeAll(target);
});

afterAll(() => admin.destroy());

// A fresh bucket per test rather than a prefix in the shared one: the suite stores a 1024-byte key,
// and S3 counts a driver's prefix against that limit (see the test "leaves keys the room the prefix…").
describeDriver({
  name: "s3 on Ceph RGW",
  create: async () => {
    const fresh = `${bucket}-${randomUUID().slice(0, 13)}`;
    await admin.send(new CreateBucketCommand({ Bucket: fresh }));
    written.push({ bucket: fresh, own: true });
    return s3Driver({ ...server, bucket: fresh });
  },
  memoryUsage: () => process.memoryUsage().rss,
});

function scratch(): string {
  return `t-${randomUUID()}`;
}

/** A driver on a fresh prefix of the shared bucket (or the one given). */
function driver(options: Partial<S3DriverOptions> = {}): StorageDriver {
  const prefix = options.prefix ?? scratch();
  written.push({ bucket, prefix });
  const created = s3Driver({ ...server, bucket, ...options, prefix });
  drivers.push(created);
  return created;
}

function streamOf(...parts: Array<string | Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(typeof part === "string" ? utf8.encode(part) : part);
      controller.close();
    },
  });
}

/** `size` bytes that depend on `seed` and position, produced 1 MiB at a time. */
function pattern(size: number, seed = 1): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      const chunk = new Uint8Array(Math.min(MiB, size - sent));
      for (let i = 0; i < chunk.length; i++) chunk[i] = ((sent + i) * 31 + seed) & 0xff;
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

async function sha256(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest("hex");
}

async function textOf(target: StorageDriver, key: string): Promise<string> {
  return text.decode(must(await target.get(key)).body);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("server has no port");
  return address.port;
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Every operation, each expected to fail with `code`. */
async function expectEveryOperation(target: StorageDriver, code: "E_UNAVAILABLE" | "E_PERMISSION"): Promise<void> {
  await expectCode(target.head("some/key"), code);
  await expectCode(target.get("some/key"), code);
  await expectCode(target.stream("some/key", { range: { offset: 1 } }), code);
  await expectCode(target.put("some/key", "bytes"), code);
  await expectCode(target.put("some/key", streamOf("streamed"), { size: 8 }), code);
  await expectCode(target.put("some/key", streamOf("create-only"), { ifNoneMatch: "*" }), code);
  await expectCode(target.delete("some/key"), code);
  await expectCode(target.list({ prefix: "some/" }), code);
}

describe("s3 driver", () => {
  describe("prefix", () => {
    it("keeps each driver inside its prefix and lists keys without it", async () => {
      const root = scratch();
      const a = driver({ prefix: `${root}/a` });
      const b = driver({ prefix: `${root}/b` });
      const sibling = driver({ prefix: `${root}/ab` });
      await a.put("doc", "from a");
      await sibling.put("doc", "from ab");

      expect(await b.head("doc")).toBeNull();
      expect(await b.get("doc")).toBeNull();
      expect(await b.delete("doc")).toBe(false);
      await b.put("doc", "from b");
      expect(await textOf(a, "doc")).toBe("from a");
      expect((await a.list()).objects.map((o) => o.key)).toEqual(["doc"]);
      expect((await driver({ prefix: root }).list()).objects.map((o) => o.key)).toEqual(["a/doc", "ab/doc", "b/doc"]);
      await expect(admin.send(new HeadObjectCommand({ Bucket: bucket, Key: `${root}/a/doc` }))).resolves.toBeDefined();

      await expectCode(a.get("../b/doc"), "E_INVALID_KEY");
      await expectCode(a.put("/b/doc", "x"), "E_INVALID_KEY");
      expect(await a.delete("doc")).toBe(true);
      expect(await textOf(b, "doc")).toBe("from b");
      expect(await textOf(sibling, "doc")).toBe("from ab");
    });

    it("leaves keys the room the prefix does not take of S3's 1024 bytes", async () => {
      const prefix = scratch();
      const target = driver({ prefix });
      const room = 1024 - utf8.encode(`${prefix}/`).byteLength;
      const longest = Array.from({ length: 5 }, () => "k".repeat(200))
        .join("/")
        .slice(0, room)
        .replace(/\/$/, "k");
      await target.put(longest, "x");
      expect((await target.head(longest))?.size).toBe(1);
      await expectCode(target.put(`${longest}k`, "x"), "E_INVALID_KEY");
      await expectCode(target.head(`${longest}k`), "E_INVALID_KEY");
    });
  });

  describe("conditional writes", () => {
    it("compares and swaps with quoted and unquoted ETags, which Ceph 16 accepts only unquoted", async () => {
      const prefix = scratch();
      const target = driver({ prefix });
      const v1 = await target.put("cas/doc", "v1");
      const v2 = await target.put("cas/doc", "v2", { ifMatch: `"${v1.etag}"` });
      await expectCode(target.put("cas/doc", "v3", { ifMatch: `"${v1.etag}"` }), "E_PRECONDITION");
      const v3 = await target.put("cas/doc", "v3", { ifMatch: v2.etag });
      expect(await textOf(target, "cas/doc")).toBe("v3");

      // A new driver whose first compare-and-swap is a stream it can send only once.
      const fresh = driver({ prefix });
      const v4 = await fresh.put("cas/doc", streamOf("v4"), { ifMatch: `"${v3.etag}"`, size: 2 });
      expect(await textOf(fresh, "cas/doc")).toBe("v4");
      const v5 = await fresh.put("cas/doc", streamOf("v5"), { ifMatch: `"${v4.etag}"`, size: 2 });
      expect((await fresh.head("cas/doc"))?.etag).toBe(v5.etag);
      await expectCode(fresh.put("cas/doc", streamOf("v6"), { ifMatch: v4.etag, size: 2 }), "E_PRECONDITION");

      await expectCode(fresh.delete("cas/doc", { ifMatch: `"${v4.etag}"` }), "E_PRECONDITION");
      expect(await fresh.delete("cas/doc", { ifMatch: `"${v5.etag}"` })).toBe(true);
      expect(await fresh.head("cas/doc")).toBeNull();
    });

    it("enforces conditions on streams too big for one part, leaving no temporary files", async () => {
      const spoolDirectory = await mkdtemp(join(tmpdir(), "fw-s3-spool-"));
      try {
        const target = driver({ partSize: 5 * MiB, multipartThreshold: 5 * MiB, spoolDirectory });
        const size = 12 * MiB + 7;
        const original = await target.put("big/doc", "original");

        const exists = await expectCode(target.put("big/doc", pattern(size), { ifNoneMatch: "*" }), "E_PRECONDITION");
        expect(exists).toMatchObject({ retryable: false });
        const stale = await expectCode(
          target.put("big/doc", pattern(size), { ifMatch: "0".repeat(32) }),
          "E_PRECONDITION",
        );
        expect(stale).toMatchObject({ retryable: true });
        expect(await textOf(target, "big/doc")).toBe("original");

        const replaced = await target.put("big/doc", pattern(size), { ifMatch: original.etag });
        expect(replaced.size).toBe(size);
        expect((await target.head("big/doc"))?.etag).toBe(replaced.etag);
        expect(await sha256(must(await target.stream("big/doc")).body)).toBe(await sha256(pattern(size)));

        const created = await target.put("big/new", pattern(size, 2), { ifNoneMatch: "*" });
        expect(await target.head("big/new")).toMatchObject({ etag: created.etag, size });
        expect(await readdir(spoolDirectory)).toEqual([]);
      } finally {
        await rm(spoolDirectory, { recursive: true, force: true });
      }
    });
  });

  describe("multipart uploads", () => {
    it("uploads big streams in parts and returns the ETag that head reports", async () => {
      const target = driver({ partSize: 5 * MiB, multipartThreshold: 5 * MiB, queueSize: 2 });
      const unsized = await target.put("mp/unsized", pattern(12 * MiB + 123));
      expect(unsized).toMatchObject({ key: "mp/unsized", size: 12 * MiB + 123 });
      expect(unsized.etag).toMatch(/-3$/);
      expect((await target.head("mp/unsized"))?.etag).toBe(unsized.etag);
      expect(await sha256(must(await target.stream("mp/unsized")).body)).toBe(await sha256(pattern(12 * MiB + 123)));

      const sized = await target.put("mp/sized", pattern(11 * MiB, 3), {
        size: 11 * MiB,
        contentType: "application/x-test",
        cacheControl: "no-store",
      });
      expect(await target.head("mp/sized")).toMatchObject({
        etag: sized.etag,
        size: 11 * MiB,
        contentType: "application/x-test",
        cacheControl: "no-store",
      });
      const tail = must(await target.stream("mp/sized", { range: { suffix: 10 } }));
      expect(tail).toMatchObject({ size: 11 * MiB, range: { offset: 11 * MiB - 10, length: 10 } });
      expect(await sha256(tail.body)).toBe(
        createHash("sha256")
          .update(Uint8Array.from({ length: 10 }, (_, i) => ((11 * MiB - 10 + i) * 31 + 3) & 0xff))
          .digest("hex"),
      );
    });

    it("stores nothing, and leaves no upload behind, when a stream's length differs from its size", async () => {
      const prefix = scratch();
      const target = driver({ prefix, partSize: 5 * MiB, multipartThreshold: 5 * MiB });
      await expectCode(target.put("len/short", pattern(10), { size: 11 }), "E_INVALID_ARGUMENT");
      await expectCode(target.put("len/long", pattern(12), { size: 11 }), "E_INVALID_ARGUMENT");
      await expectCode(target.put("len/parts-short", pattern(11 * MiB), { size: 12 * MiB }), "E_INVALID_ARGUMENT");
      await expectCode(target.put("len/parts-long", pattern(13 * MiB), { size: 12 * MiB }), "E_INVALID_ARGUMENT");
      await expectCode(
        target.put("len/cond", pattern(7 * MiB), { size: 6 * MiB, ifNoneMatch: "*" }),
        "E_INVALID_ARGUMENT",
      );
      expect((await target.list({ prefix: "len/" })).objects).toEqual([]);
      const uploads = await admin.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
      expect(uploads.Uploads ?? []).toEqual([]);
    });
  });

  describe("reads", () => {
    it("answers ranges of an empty object as the memory driver does", async () => {
      for (const target of [memoryDriver(), driver()]) {
        await target.put("empty", "");
        const tail = must(await target.stream("empty", { range: { suffix: 5 } }));
        expect(tail).toMatchObject({ size: 0, range: { offset: 0, length: 0 } });
        expect((await readStream(tail.body)).byteLength).toBe(0);
        await expectCode(target.stream("empty", { range: { offset: 0 } }), "E_RANGE");
      }
    });

    it("stops a download with E_ABORTED when the signal fires", async () => {
      const target = driver();
      await target.put("abort/big", pattern(8 * MiB));
      const controller = new AbortController();
      const download = must(await target.stream("abort/big", { signal: controller.signal }));
      const reader = download.body.getReader();
      expect((await reader.read()).done).toBe(false);
      controller.abort();
      const drain = async () => {
        while (!(await reader.read()).done) {}
      };
      await expectCode(drain(), "E_ABORTED");
    });
  });

  describe("failures", () => {
    const impatient = { connectTimeoutMs: 500, idleTimeoutMs: 300, maxAttempts: 2 };

    it("reports E_UNAVAILABLE when nothing listens on the endpoint", async () => {
      const closed = createServer();
      const port = await listen(closed);
      await close(closed);
      await expectEveryOperation(driver({ ...impatient, endpoint: `http://127.0.0.1:${port}` }), "E_UNAVAILABLE");
    });

    it("reports E_UNAVAILABLE when the server accepts connections and never answers", async () => {
      const sockets = new Set<Socket>();
      const silent = createServer((socket) => {
        sockets.add(socket);
        socket.on("error", () => {});
        socket.on("close", () => sockets.delete(socket));
      });
      const port = await listen(silent);
      try {
        await expectEveryOperation(driver({ ...impatient, endpoint: `http://127.0.0.1:${port}` }), "E_UNAVAILABLE");
      } finally {
        for (const socket of sockets) socket.destroy();
        await close(silent);
      }
    });

    it("retries a failing server and then reports E_UNAVAILABLE", async () => {
      let requests = 0;
      const failing = createHttpServer((request, response) => {
        requests++;
        request.resume();
        response.writeHead(503, { "content-type": "application/xml" });
        response.end('<?xml version="1.0"?><Error><Code>ServiceUnavailable</Code><Message>down</Message></Error>');
      });
      const port = await listen(failing);
      try {
        const target = driver({ ...impatient, maxAttempts: 3, endpoint: `http://127.0.0.1:${port}` });
        const error = await expectCode(target.get("some/key"), "E_UNAVAILABLE");
        expect(error).toMatchObject({ retryable: true, driver: "s3" });
        expect(requests).toBe(3);
      } finally {
        failing.closeAllConnections();
        await close(failing);
      }
    });

    it("refuses a wrong secret or an unknown access key with E_PERMISSION", async () => {
      const wrongSecret = { accessKeyId, secretAccessKey: "not-the-secret" };
      await expectEveryOperation(driver({ credentials: wrongSecret }), "E_PERMISSION");
      const unknownKey = { accessKeyId: "nobody", secretAccessKey: "nothing" };
      await expectEveryOperation(driver({ credentials: unknownKey }), "E_PERMISSION");
    });
  });

  describe("s3OptionsFromEnv", () => {
    it("builds Cloudflare R2 options from the R2_* variables", () => {
      const options = s3OptionsFromEnv({
        R2_ACCOUNT_ID: "0123abcd",
        R2_ACCESS_KEY_ID: "key-id",
        R2_SECRET_ACCESS_KEY: "secret",
        R2_REGISTRY_BUCKET: "npm-registry",
      });
      expect(options).toEqual({
        bucket: "npm-registry",
        endpoint: "https://0123abcd.r2.cloudflarestorage.com",
        region: "auto",
        credentials: { accessKeyId: "key-id", secretAccessKey: "secret" },
      });
    });

    it("names the variables that are missing or unsafe", () => {
      expect(() => s3OptionsFromEnv({ R2_ACCOUNT_ID: "abc", R2_ACCESS_KEY_ID: "id" })).toThrow(
        /R2_SECRET_ACCESS_KEY, R2_REGISTRY_BUCKET/,
      );
      expect(() =>
        s3OptionsFromEnv({
          R2_ACCOUNT_ID: "evil.example/",
          R2_ACCESS_KEY_ID: "id",
          R2_SECRET_ACCESS_KEY: "secret",
          R2_REGISTRY_BUCKET: "b",
        }),
      ).toThrow(/R2_ACCOUNT_ID/);
      expect(() => s3OptionsFromEnv({ S3_ENDPOINT: "http://127.0.0.1:1" })).toThrow(/S3_BUCKET/);
    });

    it("prefers explicit S3_* variables, which reach a working server", async () => {
      const options = s3OptionsFromEnv({
        S3_ENDPOINT: server.endpoint,
        S3_REGION: "us-east-1",
        S3_BUCKET: bucket,
        S3_ACCESS_KEY_ID: accessKeyId,
        S3_SECRET_ACCESS_KEY: secretAccessKey,
        S3_FORCE_PATH_STYLE: "true",
        R2_ACCOUNT_ID: "ignored",
      });
      expect(options).toEqual({
        endpoint: server.endpoint,
        region: "us-east-1",
        bucket,
        forcePathStyle: true,
        credentials: { accessKeyId, secretAccessKey },
      });
      const target = driver(options);
      await target.put("env/doc", "configured from the environment");
      expect(await textOf(target, "env/doc")).toBe("configured from the environment");
    });
  });

  describe("sync", () => {
    it("mirrors memory to s3, skips what is unchanged and propagates deletions", async () => {
      const source = memoryDriver();
      const target = driver({ partSize: 5 * MiB, multipartThreshold: 5 * MiB });
      await source.put("pkg/a/-/a-1.0.0.tgz", "tarball a", { contentType: "application/octet-stream" });
      await source.put("pkg/a/packument.json", '{"name":"a"}', { contentType: "application/json" });
      await source.put("pkg/b/-/b-1.0.0.tgz", await readStream(pattern(6 * MiB)));
      await source.put("pkg/c/packument.json", '{"name":"c"}');

      const first = await sync(source, target);
      expect(first.copied).toEqual([
        "pkg/a/-/a-1.0.0.tgz",
        "pkg/a/packument.json",
        "pkg/b/-/b-1.0.0.tgz",
        "pkg/c/packument.json",
      ]);
      expect(await target.head("pkg/a/packument.json")).toMatchObject({ contentType: "application/json", size: 12 });
      expect(await sha256(must(await target.stream("pkg/b/-/b-1.0.0.tgz")).body)).toBe(await sha256(pattern(6 * MiB)));

      const again = await sync(source, target);
      expect(again.copied).toEqual([]);
      expect(again.skipped).toHaveLength(4);

      await source.delete("pkg/c/packument.json");
      await source.put("pkg/a/packument.json", '{"name":"a","v":2}', { contentType: "application/json" });
      const third = await sync(source, target);
      expect(third).toMatchObject({ copied: ["pkg/a/packument.json"], deleted: ["pkg/c/packument.json"] });
      expect(await target.head("pkg/c/packument.json")).toBeNull();
      expect(await textOf(target, "pkg/a/packument.json")).toBe('{"name":"a","v":2}');
    });
  });
});
