/**
 * Scale-out on one bucket: replicas in their own processes share nothing but a Ceph RGW bucket, and every
 * acknowledged publish must be on every replica, intact, however the writes interleave or crash.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { s3Driver } from "@fw/storage-r2/s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectGarbage } from "../../src/services/gc.js";
import { addUser } from "../helpers/clients.js";
import { publishBody } from "../helpers/packages.js";
import { type Replica, rgwStorage, startReplica } from "../helpers/replicas.js";

interface Packument {
  versions: Record<string, { dist: { integrity: string; tarball: string } }>;
  "dist-tags": Record<string, string>;
}

/** Runs `work(0..count-1)` with at most `concurrency` in flight. */
async function pool<T>(count: number, concurrency: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await work(index);
      }
    }),
  );
  return results;
}

function publish(replica: Replica, token: string, name: string, version: string): Promise<Response> {
  return fetch(`${replica.url}/${name}`, {
    method: "PUT",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(publishBody(replica.url, { name, version })),
  });
}

async function packument(replica: Replica, name: string): Promise<Packument> {
  const response = await fetch(`${replica.url}/${name}`, { headers: { "cache-control": "no-cache" } });
  expect(response.status, `${name} on ${replica.url}`).toBe(200);
  return (await response.json()) as Packument;
}

/** Fetches every version's tarball (spread over the replicas) and checks it against its integrity. */
async function expectIntact(replicas: Replica[], doc: Packument): Promise<void> {
  const versions = Object.entries(doc.versions);
  const bad = await pool(versions.length, 16, async (index) => {
    const [version, manifest] = versions[index] as [string, Packument["versions"][string]];
    const replica = replicas[index % replicas.length] as Replica;
    const path = new URL(manifest.dist.tarball).pathname;
    const response = await fetch(`${replica.url}${path}`);
    if (response.status !== 200) return `${version}: ${response.status}`;
    const bytes = Buffer.from(await response.arrayBuffer());
    const integrity = `sha512-${createHash("sha512").update(bytes).digest("base64")}`;
    return integrity === manifest.dist.integrity ? undefined : `${version}: integrity mismatch`;
  });
  expect(bad.filter(Boolean)).toEqual([]);
}

/** A driver on the same bucket and prefix as the replicas, for looking at what they stored. */
function s3DriverFor(storage: Record<string, unknown>) {
  const text = (key: string) => String(storage[key]);
  return s3Driver({
    endpoint: text("endpoint"),
    bucket: text("bucket"),
    region: text("region"),
    forcePathStyle: true,
    credentials: { accessKeyId: text("accessKeyId"), secretAccessKey: text("secretAccessKey") },
    prefix: text("prefix"),
  });
}

/** A read on another replica may be up to its revalidation interval (1 s) old. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 1_500));

describe("three replicas on one RGW bucket", () => {
  let dir: string;
  let replicas: Replica[] = [];
  let token: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fw-replicas-"));
    const storage = rgwStorage(`fw-replicas/${randomUUID()}`);
    replicas = await Promise.all(
      ["a", "b", "c"].map((name) => startReplica(dir, name, { storage, auth: { signup: true } })),
    );
    token = await addUser((replicas[0] as Replica).url, "fleet");
  });

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("500 concurrent publishes over the replicas all land, on every replica, intact", {
    timeout: 600_000,
  }, async () => {
    const first = await publish(replicas[1] as Replica, token, "fleet-old", "1.0.0");
    expect(first.status).toBe(201);
    // 30 clients; publish i goes to replica i % 3, alternating between a new and an existing package.
    const statuses = await pool(500, 30, async (index) => {
      const name = index % 2 === 0 ? "fleet-new" : "fleet-old";
      const response = await publish(replicas[index % 3] as Replica, token, name, `2.0.${index}`);
      const body = await response.text();
      return response.status === 201 ? 201 : `${name}@2.0.${index}: ${response.status} ${body}`;
    });
    expect(statuses.filter((s) => s !== 201)).toEqual([]);

    await settle();
    for (const replica of replicas) {
      const fresh = await packument(replica, "fleet-new");
      const old = await packument(replica, "fleet-old");
      expect(Object.keys(fresh.versions)).toHaveLength(250);
      expect(Object.keys(old.versions)).toHaveLength(251);
    }
    await expectIntact(replicas, await packument(replicas[2] as Replica, "fleet-new"));
    await expectIntact(replicas, await packument(replicas[0] as Replica, "fleet-old"));
  });

  it("a package published on one replica reaches the others' search through the change feed", async () => {
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const before = (await (await fetch(`${b.url}/-/changes`)).json()) as { last_seq: number };
    expect((await publish(a, token, "fleet-solo-search", "1.0.0")).status).toBe(201);
    for (const replica of [b, c]) {
      let found = false;
      for (let i = 0; i < 100 && !found; i++) {
        const search = (await (await fetch(`${replica.url}/-/v1/search?text=fleet-solo-search`)).json()) as {
          objects: { package: { name: string } }[];
        };
        found = search.objects.some((o) => o.package.name === "fleet-solo-search");
        if (!found) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(found, `search on ${replica.url}`).toBe(true);
    }
    const feed = (await (await fetch(`${c.url}/-/changes?since=${before.last_seq}`)).json()) as {
      results: { seq: number; id: string }[];
      last_seq: number;
    };
    expect(feed.results.map((r) => r.id)).toContain("fleet-solo-search");
    expect(feed.last_seq).toBeGreaterThan(before.last_seq);
  });

  it("concurrent dist-tag moves from every replica converge to one value everywhere", async () => {
    const targets = Array.from({ length: 30 }, (_, i) => `2.0.${i * 2}`);
    const statuses = await Promise.all(
      targets.map(async (version, i) => {
        const replica = replicas[i % 3] as Replica;
        const response = await fetch(`${replica.url}/-/package/fleet-new/dist-tags/race`, {
          method: "PUT",
          headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
          body: JSON.stringify(version),
        });
        return response.status;
      }),
    );
    expect(statuses.every((status) => status >= 200 && status < 300)).toBe(true);
    await settle();
    const seen = await Promise.all(
      replicas.map(async (replica) => (await packument(replica, "fleet-new"))["dist-tags"].race),
    );
    expect(new Set(seen).size).toBe(1);
    expect(targets).toContain(seen[0]);
  });
});

describe("kill -9 during publishes", () => {
  let dir: string;
  let storage: Record<string, unknown>;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "fw-crash-"));
    storage = rgwStorage(`fw-crash/${randomUUID()}`);
    for (const name of ["a", "b", "c"])
      replicas.push(await startReplica(dir, name, { storage, auth: { signup: true } }));
  });

  afterAll(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await rm(dir, { recursive: true, force: true });
  });

  it("loses no acknowledged publish and corrupts nothing when replicas are killed mid-write", {
    timeout: 600_000,
  }, async () => {
    const token = await addUser((replicas[0] as Replica).url, "crash");
    const acknowledged = new Set<string>();
    let kills = 0;
    // SIGKILL a random replica and start a new one in its place, while other publishes are in flight.
    const crash = async () => {
      const slot = Math.floor(Math.random() * replicas.length);
      await (replicas[slot] as Replica).stop("SIGKILL");
      kills++;
      replicas[slot] = await startReplica(dir, `r${kills}`, { storage, auth: { signup: true } });
    };
    await pool(200, 10, async (index) => {
      if (index % 40 === 20) await crash();
      const version = `3.0.${index}`;
      // A client retries on another replica when the one it used died under it, as a load balancer would.
      for (let attempt = 0; attempt < 5; attempt++) {
        const replica = replicas[(index + attempt) % replicas.length] as Replica;
        try {
          const response = await publish(replica, token, "fleet-crash", version);
          await response.text();
          if (response.status === 201) acknowledged.add(version);
          if (response.status < 500) return;
        } catch {
          // connection refused or reset: the replica was killed
        }
      }
    });
    expect(kills).toBe(5);
    expect(acknowledged.size).toBeGreaterThan(100);

    await settle();
    for (const replica of replicas) {
      const doc = await packument(replica, "fleet-crash");
      const missing = [...acknowledged].filter((version) => !doc.versions[version]);
      expect(missing, `acknowledged versions missing on ${replica.url}`).toEqual([]);
    }
    const doc = await packument(replicas[0] as Replica, "fleet-crash");
    await expectIntact(replicas, doc);

    // Tarballs of publishes killed before their document changed are left behind: gc finds exactly
    // those (every stored tarball the document does not reference), and then removes them.
    const driver = s3DriverFor(storage);
    const referenced = new Set(
      Object.values(doc.versions).map(
        (v) => `packages/fleet-crash/-/${new URL(v.dist.tarball).pathname.split("/").pop()}`,
      ),
    );
    const stored = (await driver.list({ prefix: "packages/fleet-crash/-/" })).objects.map((o) => o.key);
    const orphans = stored.filter((key) => !referenced.has(key)).sort();
    for (const key of orphans) expect(acknowledged.has(key.replace(/^.*fleet-crash-(.*)\.tgz$/, "$1"))).toBe(false);
    const dry = await collectGarbage(driver, { graceMs: 0 });
    expect(dry.orphans.map((o) => o.key).sort()).toEqual(orphans);
    const applied = await collectGarbage(driver, { graceMs: 0, apply: true, settleMs: 0 });
    expect(applied.deleted.map((o) => o.key).sort()).toEqual(orphans);
    expect((await driver.list({ prefix: "packages/fleet-crash/-/" })).objects).toHaveLength(referenced.size);
    await driver.dispose?.();
  });
});
