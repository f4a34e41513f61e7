/**
 * The vault on real storage: the fs driver in a temp folder and the s3 driver on the Ceph RGW that
 * @fw/tooling's global setup starts. What lands on disk and in the bucket is read back raw, around the
 * vault, and searched for the values in every encoding they could leak in.
 */
import { randomUUID } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
} from "@aws-sdk/client-s3";
import { AuditLog } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { s3Driver } from "@fw/storage-r2/s3";
import { tempDir } from "@fw/tooling/test";
import { afterAll, describe, expect, it } from "vitest";
import { SecretsVault } from "../src/vault.js";
import { everythingShown, expectNoPlaintext, expectSecretsError, ringOf } from "./helpers.js";

function fromEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set; the Ceph global setup of @fw/tooling sets it`);
  return value;
}

const values = [
  "r2-secret-4ccess-key-0123456789abcdefghij",
  "npm_upstreamT0kenZZZZZZZZZZZZZZZZZZZZZZZZ",
  "multi-line\nPEM-ish value with ünïcödé and spaces",
];

/** Writes, rotates, deletes, reads and re-wraps, so every kind of file and audit event is there. */
async function exercise(storage: StorageDriver): Promise<SecretsVault> {
  const ring = await ringOf();
  const vault = new SecretsVault({ storage, masterKeys: ring, audit: new AuditLog(storage) });
  await vault.setSecret("storage/r2-secret-key", values[0] as string, { rotateEvery: "90d" });
  await vault.setSecret("uplinks/public/token", values[1] as string);
  await vault.rotateSecret("uplinks/public/token", values[2] as string);
  await vault.setSecret("ci/deleted", values[1] as string);
  await vault.deleteSecret("ci/deleted");
  expect(await vault.getSecret("uplinks/public/token", { version: 1 })).toBe(values[1]);
  expect(await vault.getSecret("uplinks/public/token")).toBe(values[2]);
  return vault;
}

async function walk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** Concurrent rotations by vaults that share nothing but the backend, each with its own driver. */
async function rotateConcurrently(create: () => StorageDriver, writers: number): Promise<void> {
  const ring = await ringOf();
  await new SecretsVault({ storage: create(), masterKeys: ring, audit: false }).setSecret("hot", "v1 value");
  const results = await Promise.all(
    Array.from({ length: writers }, (_, i) =>
      new SecretsVault({ storage: create(), masterKeys: ring, audit: false }).rotateSecret("hot", `writer ${i}`),
    ),
  );
  expect(results.map((r) => r.version).sort((a, b) => a - b)).toEqual(Array.from({ length: writers }, (_, i) => i + 2));
  const reader = new SecretsVault({ storage: create(), masterKeys: ring, audit: false });
  for (const [i, result] of results.entries()) {
    expect(await reader.getSecret("hot", { version: result.version })).toBe(`writer ${i}`);
  }
  expect((await reader.getSecretVersions("hot")).map((v) => v.version)).toEqual(
    Array.from({ length: writers + 1 }, (_, i) => i + 1),
  );
  expect(await reader.getSecret("hot")).toBe(`writer ${results.findIndex((r) => r.version === writers + 1)}`);
}

describe("fs driver", () => {
  it("keeps no plaintext in any file, the driver's own bookkeeping included", async () => {
    await using dir = await tempDir();
    await exercise(fsDriver({ root: dir.path, fsync: false }));
    const files = await walk(dir.path);
    expect(files.some((f) => f.includes(`${join("secrets", "uplinks", "public", "token", "@v")}`))).toBe(true);
    expect(files.some((f) => f.includes(`${join("audit")}`))).toBe(true);
    const contents: Array<[string, string]> = [];
    for (const file of files) contents.push([file, (await readFile(file)).toString("latin1")]);
    for (const file of files) contents.push([`${file} (utf-8)`, await readFile(file, "utf8")]);
    expectNoPlaintext(contents, values);
  });

  it("detects a bit flipped on disk and a version file copied over another, with no plaintext", async () => {
    await using dir = await tempDir();
    const vault = await exercise(fsDriver({ root: dir.path, fsync: false }));
    const versions = join(dir.path, "secrets", "uplinks", "public", "token", "@v");
    const v1 = join(versions, "0000000001.json");
    const v2 = join(versions, "0000000002.json");
    const original = await readFile(v2, "utf8");
    const file = JSON.parse(original) as { value: { ciphertext: string } };
    const bytes = Buffer.from(file.value.ciphertext, "base64url");
    bytes[3] = (bytes[3] as number) ^ 0x80;
    await writeFile(v2, original.replace(file.value.ciphertext, bytes.toString("base64url")));
    vault.clearCache();
    const flipped = await expectSecretsError(vault.getSecret("uplinks/public/token"), "E_INTEGRITY");
    expectNoPlaintext(everythingShown(flipped), values);

    await writeFile(v2, await readFile(v1));
    const swapped = await expectSecretsError(vault.getSecret("uplinks/public/token"), "E_INTEGRITY");
    expect(swapped.message).toContain("was swapped or copied");
    expectNoPlaintext(everythingShown(swapped), values);
    await writeFile(v2, original);
    expect(await vault.getSecret("uplinks/public/token")).toBe(values[2]);
  });

  it("lands every concurrent rotation from separate drivers on one folder", async () => {
    await using dir = await tempDir();
    await rotateConcurrently(() => fsDriver({ root: dir.path, fsync: false }), 12);
  });
});

describe("s3 driver on Ceph RGW", () => {
  const credentials = {
    accessKeyId: fromEnv("FW_TEST_S3_ACCESS_KEY"),
    secretAccessKey: fromEnv("FW_TEST_S3_SECRET_KEY"),
  };
  const endpoint = fromEnv("FW_TEST_S3_ENDPOINT");
  const bucket = fromEnv("FW_TEST_S3_BUCKET");
  const admin = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials,
    requestChecksumCalculation: "WHEN_REQUIRED",
  });
  const prefixes: string[] = [];
  const drivers: StorageDriver[] = [];
  const driver = (prefix: string) => {
    const created = s3Driver({ endpoint, region: "us-east-1", forcePathStyle: true, credentials, bucket, prefix });
    drivers.push(created);
    return created;
  };

  async function rawObjects(prefix: string): Promise<Array<[string, string]>> {
    const objects: Array<[string, string]> = [];
    let token: string | undefined;
    do {
      const page: ListObjectsV2CommandOutput = await admin.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }),
      );
      for (const { Key } of page.Contents ?? []) {
        if (!Key) continue;
        const object = await admin.send(new GetObjectCommand({ Bucket: bucket, Key }));
        objects.push([Key, Buffer.from((await object.Body?.transformToByteArray()) ?? []).toString("latin1")]);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return objects;
  }

  afterAll(async () => {
    await Promise.all(drivers.map((d) => d.dispose?.()));
    for (const prefix of prefixes) {
      const keys = (await rawObjects(prefix)).map(([Key]) => ({ Key }));
      for (let i = 0; i < keys.length; i += 1000) {
        await admin.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000) } }));
      }
    }
    admin.destroy();
  });

  it("keeps no plaintext in any object of the bucket", async () => {
    const prefix = `secrets-at-rest-${randomUUID()}`;
    prefixes.push(prefix);
    await exercise(driver(prefix));
    const objects = await rawObjects(prefix);
    expect(objects.map(([key]) => key)).toContain(`${prefix}/secrets/uplinks/public/token/@v/0000000002.json`);
    expect(objects.some(([key]) => key.startsWith(`${prefix}/audit/`))).toBe(true);
    expectNoPlaintext(objects, values);
    expectNoPlaintext(
      objects.map(([key, text]) => [key, Buffer.from(text, "latin1").toString("utf8")]),
      values,
    );
  });

  it("lands every concurrent rotation from separate drivers on one bucket", async () => {
    const prefix = `secrets-race-${randomUUID()}`;
    prefixes.push(prefix);
    await rotateConcurrently(() => driver(prefix), 8);
  });
});
