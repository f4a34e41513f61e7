import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { casUpdate, type StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { memoryDriver } from "@fw/storage-r2/memory";
import { afterAll, describe, expect, it } from "vitest";
import { createRegistry } from "../src/app.js";
import type { Packument, VersionManifest } from "../src/npm/packument.js";
import { collectGarbage, DEFAULT_GC_GRACE_MS } from "../src/services/gc.js";
import { storageSnapshot } from "./helpers/http.js";
import { digests, makeTarball, publishBody } from "./helpers/packages.js";
import { testConfig } from "./helpers/registry.js";

const ORIGIN = "http://registry.test";
const MINUTE = 60_000;
const dirs: string[] = [];

afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const drivers: Array<[string, () => Promise<StorageDriver>]> = [
  ["memory", async () => memoryDriver()],
  [
    "fs",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "fw-gc-"));
      dirs.push(dir);
      return fsDriver({ root: dir, fsync: false });
    },
  ],
];

/**
 * A registry with real publishes (so packuments, tarballs and attestations are exactly what the server
 * writes), then the debris of crashed publishes and unpublishes written straight to storage.
 */
async function seeded(storage: StorageDriver) {
  const registry = createRegistry(testConfig("/unused"), { storage });
  await registry.ready;
  const login = await registry.fetch(
    new Request(`${ORIGIN}/-/user/org.couchdb.user:alice`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "alice", password: "alice password 1" }),
    }),
  );
  const { token } = (await login.json()) as { token: string };
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  const publish = async (name: string, version: string, provenance = false) => {
    const body = publishBody(ORIGIN, { name, version });
    if (provenance) {
      const bundle = JSON.stringify({ mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.2" });
      (body._attachments as Record<string, unknown>)[`${name}@${version}.sigstore`] = {
        content_type: "application/vnd.dev.sigstore.bundle+json;version=0.2",
        data: Buffer.from(bundle).toString("base64"),
        length: bundle.length,
      };
    }
    const path = `${ORIGIN}/${name.replace("/", "%2f")}`;
    const response = await registry.fetch(new Request(path, { method: "PUT", headers, body: JSON.stringify(body) }));
    expect(response.status, await response.clone().text()).toBe(201);
  };
  await publish("kept", "1.0.0", true);
  await publish("kept", "1.1.0");
  await publish("@acme/widget", "2.0.0", true);
  await publish("gone", "1.0.0");

  // `npm unpublish gone@1.0.0 --force` of the only version: the whole package is unpublished.
  const doc = (await (await registry.fetch(new Request(`${ORIGIN}/gone?write=true`, { headers }))).json()) as {
    _rev: string;
  };
  const unpublished = await registry.fetch(
    new Request(`${ORIGIN}/gone/-rev/${doc._rev}`, { method: "DELETE", headers }),
  );
  expect(unpublished.status).toBe(200);
  await registry.idle();

  const debris = {
    // A publish of a new version that crashed after storing the tarball and the attestation.
    crashedTarball: "packages/kept/-/kept-1.2.0.tgz",
    crashedAttestation: "packages/kept/attestations/1.2.0.json",
    // The first publish of a package that crashed: no packument at all.
    firstPublish: "packages/@acme/lost/-/lost-0.1.0.tgz",
    // An unpublish that crashed before deleting the tarball, and an attestation unpublish never deletes.
    unpublishedTarball: "packages/gone/-/gone-1.0.0.tgz",
    leftAttestation: "packages/@acme/widget/attestations/1.9.0.json",
  };
  await storage.put(debris.crashedTarball, makeTarball({ "package.json": '{"name":"kept","version":"1.2.0"}' }));
  await storage.put(debris.crashedAttestation, "{}");
  await storage.put(debris.firstPublish, makeTarball({ "package.json": '{"name":"@acme/lost","version":"0.1.0"}' }));
  await storage.put(debris.unpublishedTarball, makeTarball({ "package.json": '{"name":"gone","version":"1.0.0"}' }));
  await storage.put(debris.leftAttestation, "{}");
  // Not fw's: left alone whatever they are.
  await storage.put("packages/kept/notes.txt", "hello");
  await storage.put("packages/kept/-/README", "not a tarball");

  const referenced = [
    "packages/kept/-/kept-1.0.0.tgz",
    "packages/kept/-/kept-1.1.0.tgz",
    "packages/kept/attestations/1.0.0.json",
    "packages/@acme/widget/-/widget-2.0.0.tgz",
    "packages/@acme/widget/attestations/2.0.0.json",
  ];
  for (const key of referenced) expect(await storage.head(key), key).not.toBeNull();
  return { registry, headers, debris, referenced };
}

const later = (ms: number) => () => Date.now() + ms;

function manifest(name: string, version: string, tarball: Uint8Array): VersionManifest {
  return { name, version, dist: { ...digests(tarball), tarball: "" } };
}

describe.each(drivers)("collectGarbage on %s storage", (_, makeStorage) => {
  it("lists exactly the unreferenced objects older than the grace period, and deletes nothing in a dry run", async () => {
    const storage = await makeStorage();
    const { debris } = await seeded(storage);
    const before = await storageSnapshot(storage);

    const fresh = await collectGarbage(storage);
    expect(fresh.orphans).toEqual([]);
    expect(fresh.young).toBe(Object.keys(debris).length);

    const report = await collectGarbage(storage, { now: later(DEFAULT_GC_GRACE_MS + MINUTE) });
    expect(report.orphans.map((o) => o.key).sort()).toEqual(Object.values(debris).sort());
    expect(report.young).toBe(0);
    expect(report.errors).toEqual([]);
    expect(report.deleted).toEqual([]);
    expect(report.bytes).toBe(report.orphans.reduce((sum, o) => sum + o.size, 0));
    expect(report.orphans.find((o) => o.key === debris.firstPublish)).toMatchObject({
      package: "@acme/lost",
      kind: "tarball",
    });
    expect(report.orphans.find((o) => o.key === debris.leftAttestation)).toMatchObject({
      package: "@acme/widget",
      kind: "attestation",
    });
    expect(await storageSnapshot(storage)).toEqual(before);
  });

  it("honours the grace period it is given", async () => {
    const storage = await makeStorage();
    await seeded(storage);
    expect((await collectGarbage(storage, { graceMs: 30 * MINUTE, now: later(20 * MINUTE) })).orphans).toEqual([]);
    expect((await collectGarbage(storage, { graceMs: 30 * MINUTE, now: later(31 * MINUTE) })).orphans).toHaveLength(5);
    expect((await collectGarbage(storage, { graceMs: 0 })).orphans).toHaveLength(5);
  });

  it("deletes the orphans with --apply and never a referenced object; the registry still serves everything", async () => {
    const storage = await makeStorage();
    const { registry, debris, referenced } = await seeded(storage);
    const before = await storageSnapshot(storage);
    const report = await collectGarbage(storage, {
      apply: true,
      settleMs: 0,
      now: later(DEFAULT_GC_GRACE_MS + MINUTE),
    });
    expect(report.deleted.map((o) => o.key).sort()).toEqual(Object.values(debris).sort());
    expect(report.skipped).toEqual([]);
    const orphanKeys = new Set<string>(Object.values(debris));
    expect(await storageSnapshot(storage)).toEqual(before.filter((line) => !orphanKeys.has(line.split(" ")[0] ?? "")));
    for (const key of referenced) expect(await storage.head(key), key).not.toBeNull();
    for (const path of ["/kept/-/kept-1.0.0.tgz", "/kept/-/kept-1.1.0.tgz", "/@acme/widget/-/widget-2.0.0.tgz"]) {
      expect((await registry.fetch(new Request(`${ORIGIN}${path}`))).status, path).toBe(200);
    }
    const again = await collectGarbage(storage, { apply: true, settleMs: 0, now: later(DEFAULT_GC_GRACE_MS + MINUTE) });
    expect(again.orphans).toEqual([]);
  });

  it("skips an orphan that was uploaded again since it was listed (its ETag changed)", async () => {
    const storage = await makeStorage();
    const { debris } = await seeded(storage);
    const racing: StorageDriver = {
      ...storage,
      name: storage.name,
      async delete(key, options) {
        // A publish replaces the abandoned tarball between the listing and the delete.
        if (key === debris.crashedTarball) await storage.put(key, "new bytes of a concurrent publish");
        return storage.delete(key, options);
      },
    };
    const report = await collectGarbage(racing, { apply: true, settleMs: 0, now: later(DEFAULT_GC_GRACE_MS + MINUTE) });
    expect(report.skipped.map((s) => [s.key, s.reason])).toEqual([
      [debris.crashedTarball, "it changed since it was listed"],
    ]);
    expect(new TextDecoder().decode((await storage.get(debris.crashedTarball))?.body)).toBe(
      "new bytes of a concurrent publish",
    );
  });

  it("puts a tarball back when a retried publish with the same bytes commits while it is being deleted", async () => {
    const storage = await makeStorage();
    await seeded(storage);
    const key = "packages/kept/-/kept-2.0.0.tgz";
    const bytes = makeTarball({ "package.json": '{"name":"kept","version":"2.0.0"}' });
    await storage.put(key, bytes);
    const racing: StorageDriver = {
      ...storage,
      name: storage.name,
      async delete(target, options) {
        const deleted = await storage.delete(target, options);
        // The retry's storeTarball found these very bytes before the delete (same ETag, so it wrote
        // nothing) and commits the version right after it.
        if (target === key) {
          await casUpdate<Packument>(storage, "packages/kept/packument.json", (doc) =>
            doc ? { ...doc, versions: { ...doc.versions, "2.0.0": manifest("kept", "2.0.0", bytes) } } : undefined,
          );
        }
        return deleted;
      },
    };
    const report = await collectGarbage(racing, { apply: true, settleMs: 0, now: later(DEFAULT_GC_GRACE_MS + MINUTE) });
    expect(report.skipped.filter((s) => s.key === key).map((s) => s.reason)).toEqual([
      "a publish referenced it while it was deleted: put back",
    ]);
    expect(report.deleted.map((o) => o.key)).not.toContain(key);
    expect(Buffer.from((await storage.get(key))?.body ?? []).equals(Buffer.from(bytes))).toBe(true);
  });

  it("leaves every object of a package whose packument cannot be read", async () => {
    const storage = await makeStorage();
    await storage.put("packages/broken/packument.json", "{ not json");
    await storage.put("packages/broken/-/broken-1.0.0.tgz", "bytes");
    const report = await collectGarbage(storage, { apply: true, settleMs: 0, graceMs: 0 });
    expect(report.errors).toEqual([{ package: "broken", reason: "the packument is not valid JSON" }]);
    expect(report.orphans).toEqual([]);
    expect(await storage.head("packages/broken/-/broken-1.0.0.tgz")).not.toBeNull();
  });
});
