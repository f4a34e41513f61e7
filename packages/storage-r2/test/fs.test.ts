import { spawn } from "node:child_process";
import { mkdir, open, readdir, readFile, readlink, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "@fw/tooling/test";
import { afterAll, describe, expect, it, vi } from "vitest";
import { casUpdate } from "../src/cas.js";
import { fsDriver } from "../src/drivers/fs.js";
import { describeDriver, expectCode, must, readStream } from "./contract.js";

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(cleanups.map((cleanup) => cleanup()));
});

async function freshRoot(): Promise<string> {
  const dir = await tempDir("fw-fs-");
  cleanups.push(dir.remove);
  return dir.path;
}

/** Files under `dir` this process has open (Linux). */
async function openFilesUnder(dir: string): Promise<string[]> {
  const open: string[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(dir)) open.push(target);
  }
  return open;
}

describeDriver({
  name: "fs",
  create: async () => fsDriver({ root: await freshRoot() }),
  memoryUsage: () => process.memoryUsage().rss,
});

describe("fs driver", () => {
  const text = new TextDecoder();

  it("keeps conditional writes exact across two processes sharing the folder", { timeout: 120_000 }, async () => {
    const root = await freshRoot();
    const tsx = createRequire(import.meta.url).resolve("tsx/cli");
    const script = fileURLToPath(new URL("./fixtures/cas-child.ts", import.meta.url));
    const child = spawn(process.execPath, [tsx, script, root, "counter.json", "25"], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    let output = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("ready")) resolve();
      });
      child.on("exit", () => reject(new Error(`child exited early: ${output}`)));
    });
    const driver = fsDriver({ root });
    child.stdin.end("go\n");
    await Promise.all(
      Array.from({ length: 25 }, () =>
        casUpdate<{ n: number; by: string[] }>(driver, "counter.json", (current) => ({
          n: (current?.n ?? 0) + 1,
          by: [...(current?.by ?? []), "parent"],
        })),
      ),
    );
    expect(await exited).toBe(0);
    expect(output).toContain("done");
    const final = JSON.parse(text.decode(must(await driver.get("counter.json")).body));
    expect(final.n).toBe(50);
    expect(final.by.filter((who: string) => who === "parent")).toHaveLength(25);
    expect(final.by.filter((who: string) => who.startsWith("child-"))).toHaveLength(25);
  });

  it("reads a large object into a reader's own buffer, whole or a range, and closes the file at the end", async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root });
    const bytes = new Uint8Array(1_000_003).map((_, i) => (i * 31) % 251);
    await driver.put("big/blob", bytes);
    for (const range of [undefined, { offset: 300_001, length: 500_000 }]) {
      const object = must(await driver.stream("big/blob", range && { range }));
      const reader = object.body.getReader({ mode: "byob" });
      let buffer = new ArrayBuffer(64 * 1024);
      const seen: number[] = [];
      for (;;) {
        const { done, value } = await reader.read(new Uint8Array(buffer));
        if (!value) throw new Error("no buffer back");
        // The same memory comes back each time, filled.
        buffer = value.buffer as ArrayBuffer;
        if (done) break;
        seen.push(...value);
      }
      const expected = range ? bytes.subarray(range.offset, range.offset + range.length) : bytes;
      expect(seen.length).toBe(expected.byteLength);
      expect(Buffer.from(seen).equals(Buffer.from(expected))).toBe(true);
    }
    expect(await openFilesUnder(root)).toEqual([]);
    // Readers that bring no buffer get chunks, and a cancelled stream lets go of its file.
    const object = must(await driver.stream("big/blob"));
    const reader = object.body.getReader();
    expect((await reader.read()).value?.byteLength).toBe(256 * 1024);
    expect(await openFilesUnder(root)).toHaveLength(1);
    await reader.cancel();
    expect(await openFilesUnder(root)).toEqual([]);
    // A reader that stops without cancelling: the signal still closes the file and ends the stream.
    const abort = new AbortController();
    const stalled = must(await driver.stream("big/blob", { signal: abort.signal })).body.getReader();
    await stalled.read();
    abort.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await openFilesUnder(root)).toEqual([]);
    await expectCode(stalled.read(), "E_ABORTED");
  });

  it("gives readers without a buffer chunks of their own, only with bytes the file still has when it is cut shorter meanwhile", async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root });
    const bytes = new Uint8Array(1_000_003).map((_, i) => (i * 7) % 253);
    await driver.put("big/blob", bytes);
    const whole = await readStream(must(await driver.stream("big/blob")).body);
    expect(Buffer.from(whole).equals(Buffer.from(bytes))).toBe(true);
    const reader = must(await driver.stream("big/blob")).body.getReader();
    const chunks: Uint8Array[] = [];
    const first = await reader.read();
    chunks.push(must(first.value));
    await truncate(join(root, "big", "blob"), 300_000);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    // Each chunk is all of its memory: nothing beyond the bytes read is reachable through `.buffer`.
    for (const chunk of chunks) expect(chunk.buffer.byteLength).toBe(chunk.byteLength);
    expect(chunks.map((chunk) => chunk.byteLength)).toEqual([256 * 1024, 300_000 - 256 * 1024]);
    expect(Buffer.concat(chunks).equals(Buffer.from(bytes.subarray(0, 300_000)))).toBe(true);
    expect(await openFilesUnder(root)).toEqual([]);
  });

  it("writes a byte-stream body through one buffer of its own, the same object as any other stream gives", async () => {
    const driver = fsDriver({ root: await freshRoot() });
    const bytes = new Uint8Array(700_001).map((_, i) => (i * 17) % 253);
    let intoOwnBuffer = 0;
    let at = 0;
    const body = new ReadableStream({
      type: "bytes",
      pull(controller) {
        const request = controller.byobRequest;
        if (at >= bytes.byteLength) {
          controller.close();
          request?.respond(0);
          return;
        }
        if (!request?.view) throw new Error("a byte stream read without a buffer");
        const view = new Uint8Array(request.view.buffer, request.view.byteOffset, request.view.byteLength);
        const count = Math.min(view.byteLength, bytes.byteLength - at);
        view.set(bytes.subarray(at, at + count));
        at += count;
        intoOwnBuffer++;
        request.respond(count);
      },
    });
    const info = await driver.put("byob/blob", body);
    expect(info.size).toBe(bytes.byteLength);
    expect(Buffer.from(must(await driver.get("byob/blob")).body).equals(Buffer.from(bytes))).toBe(true);
    expect(intoOwnBuffer).toBeGreaterThan(1);
    const plain = new Blob([bytes.subarray(0, 1000), bytes.subarray(1000)]).stream();
    expect((await driver.put("byob/plain", plain)).etag).toBe(info.etag);
  });

  it("stores each object as a plain file under the root", async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root });
    await driver.put("packages/@acme/widget/package.json", '{"name":"@acme/widget"}');
    expect(await readFile(join(root, "packages", "@acme", "widget", "package.json"), "utf8")).toBe(
      '{"name":"@acme/widget"}',
    );
  });

  it("keeps ETags and content types across restarts, as the MD5 of the content", async () => {
    const root = await freshRoot();
    const first = await fsDriver({ root }).put("doc.json", '{"a":1}', { contentType: "application/json" });
    const again = await fsDriver({ root }).head("doc.json");
    expect(again).toMatchObject({ etag: first.etag, contentType: "application/json" });
    const { createHash } = await import("node:crypto");
    expect(first.etag).toBe(createHash("md5").update('{"a":1}').digest("hex"));
  });

  it("gives the same ETags when its sidecars are lost or torn (as after a power loss), and keeps conditional writes working", async () => {
    const root = await freshRoot();
    const before = fsDriver({ root });
    const kept = await before.put("packages/a/packument.json", '{"v":1}', { contentType: "application/json" });
    const torn = await before.put("packages/b/packument.json", '{"v":2}', { contentType: "application/json" });
    // Sidecars are written without fsync: after a crash one may be gone, another empty or cut off.
    const metaDir = join(root, ".fw", "meta");
    const sidecars = (await readdir(metaDir, { recursive: true })).filter((name) => name.endsWith(".json"));
    expect(sidecars).toHaveLength(2);
    const { rm } = await import("node:fs/promises");
    await rm(join(metaDir, sidecars[0] as string));
    await writeFile(join(metaDir, sidecars[1] as string), '{"current":{"ino":');

    const after = fsDriver({ root });
    expect(must(await after.head("packages/a/packument.json")).etag).toBe(kept.etag);
    expect(must(await after.get("packages/b/packument.json")).etag).toBe(torn.etag);
    await expectCode(after.put("packages/a/packument.json", '{"v":9}', { ifMatch: torn.etag }), "E_PRECONDITION");
    const next = await after.put("packages/a/packument.json", '{"v":3}', { ifMatch: kept.etag });
    expect(text.decode(must(await fsDriver({ root }).get("packages/a/packument.json")).body)).toBe('{"v":3}');
    expect(must(await fsDriver({ root }).head("packages/a/packument.json")).etag).toBe(next.etag);
  });

  it("hashes large bodies and streams as they are written: the ETag is the content's MD5, a failed write changes nothing", async () => {
    const { createHash } = await import("node:crypto");
    const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");
    const root = await freshRoot();
    const driver = fsDriver({ root });
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 7) % 251);
    const first = await driver.put("doc.json", big);
    expect(first.etag).toBe(md5(big));
    const chunks = [big.subarray(0, 1000), big.subarray(1000, 2_000_000), big.subarray(2_000_000)];
    const streamed = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const chunk of chunks) controller.enqueue(chunk.slice().reverse());
        controller.close();
      },
    });
    const second = await driver.put("doc.json", streamed, { ifMatch: first.etag });
    const stored = must(await driver.get("doc.json")).body;
    expect(second.etag).toBe(md5(stored));
    expect(second.etag).not.toBe(first.etag);
    const failing = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(big.subarray(0, 1024 * 1024));
        controller.error(new Error("client went away"));
      },
    });
    await expect(driver.put("doc.json", failing, { ifMatch: second.etag })).rejects.toThrow();
    expect(must(await fsDriver({ root }).head("doc.json")).etag).toBe(second.etag);
    expect(md5(must(await driver.get("doc.json")).body)).toBe(second.etag);
    expect(await readdir(join(root, ".fw", "tmp"))).toEqual([]);
  });

  it("describes files placed by hand, and notices when they are edited behind its back", async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root });
    await mkdir(join(root, "manual"), { recursive: true });
    await writeFile(join(root, "manual", "file.txt"), "by hand");
    const { createHash } = await import("node:crypto");
    expect(await driver.head("manual/file.txt")).toMatchObject({
      size: 7,
      etag: createHash("md5").update("by hand").digest("hex"),
    });
    const put = await driver.put("manual/edited.txt", "original");
    await writeFile(join(root, "manual", "edited.txt"), "changed by someone");
    const future = new Date(Date.now() + 5_000);
    await utimes(join(root, "manual", "edited.txt"), future, future);
    const seen = must(await driver.head("manual/edited.txt"));
    expect(seen.etag).not.toBe(put.etag);
    expect(seen.etag).toBe(createHash("md5").update("changed by someone").digest("hex"));
    await expectCode(driver.put("manual/edited.txt", "x", { ifMatch: put.etag }), "E_PRECONDITION");
  });

  it("hashes a large file placed by hand once, and again only when it changes", async () => {
    const { createHash } = await import("node:crypto");
    const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");
    const root = await freshRoot();
    const driver = fsDriver({ root });
    const file = join(root, "packages", "big", "packument.json");
    await mkdir(join(root, "packages", "big"), { recursive: true });
    const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 13) % 251);
    await writeFile(file, big);
    // Every read of a file's content goes through FileHandle#read: count the bytes it reads.
    const probe = await open(file, "r");
    const read = vi.spyOn(Object.getPrototypeOf(probe), "read");
    await probe.close();
    const bytesRead = async () => {
      let total = 0;
      for (const result of read.mock.results) total += ((await result.value) as { bytesRead: number }).bytesRead;
      read.mockClear();
      return total;
    };
    try {
      expect(must(await driver.head("packages/big/packument.json")).etag).toBe(md5(big));
      expect(await bytesRead()).toBe(big.byteLength);
      expect(must(await driver.head("packages/big/packument.json")).etag).toBe(md5(big));
      const streamed = must(await driver.stream("packages/big/packument.json"));
      expect(streamed.etag).toBe(md5(big));
      await streamed.body.cancel();
      expect(await bytesRead()).toBe(0);

      const edited = big.slice(0, 2 * 1024 * 1024).reverse();
      await writeFile(file, edited);
      expect(must(await driver.head("packages/big/packument.json")).etag).toBe(md5(edited));
      expect(await bytesRead()).toBe(edited.byteLength);
    } finally {
      read.mockRestore();
    }
  });

  it("refuses a key below an existing object, and an object where a folder of keys is", async () => {
    const driver = fsDriver({ root: await freshRoot() });
    await driver.put("a", "object");
    await expectCode(driver.put("a/b", "below"), "E_INVALID_KEY");
    await driver.put("dir/child", "x");
    await expectCode(driver.put("dir", "over a folder"), "E_INVALID_KEY");
    expect(text.decode(must(await driver.get("a")).body)).toBe("object");
    expect(await driver.get("a/b")).toBeNull();
    expect(await driver.get("dir")).toBeNull();
  });

  it("removes folders emptied by deletes and hides its own bookkeeping from listings", async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root });
    await driver.put("deep/nested/folder/key", "x");
    await driver.delete("deep/nested/folder/key");
    expect((await readdir(root)).sort()).toEqual([".fw"]);
    expect(await driver.list()).toEqual({ objects: [] });
  });

  it("never follows a key outside the root, even through odd spellings", async () => {
    const root = await freshRoot();
    const outside = await freshRoot();
    await writeFile(join(outside, "secret"), "do not read");
    const driver = fsDriver({ root });
    for (const key of ["../secret", "../../secret", "a/../../secret", "%2e%2e/secret/..", ".fw/meta/x"]) {
      await expectCode(driver.get(key), "E_INVALID_KEY");
      await expectCode(driver.put(key, "x"), "E_INVALID_KEY");
    }
    // Percent-encoding is not decoded: it is an ordinary file name inside the root.
    await driver.put("%2e%2e/secret", "inside");
    expect((await stat(join(root, "%2e%2e", "secret"))).isFile()).toBe(true);
    expect(await readFile(join(outside, "secret"), "utf8")).toBe("do not read");
  });

  it("lets a writer take over a lock left by a crashed process", { timeout: 30_000 }, async () => {
    const root = await freshRoot();
    const driver = fsDriver({ root, staleLockMs: 2_000 });
    await driver.put("locked", "before");
    const { createHash } = await import("node:crypto");
    const lock = join(root, ".fw", "locks", `${createHash("sha256").update("locked").digest("hex")}.lock`);
    await mkdir(lock);
    const past = new Date(Date.now() - 60_000);
    await utimes(lock, past, past);
    await driver.put("locked", "after");
    expect(text.decode(must(await driver.get("locked")).body)).toBe("after");
  });
});
