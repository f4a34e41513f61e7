import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Corpus,
  type CorpusEntry,
  packumentPath,
  publishDocument,
  publishOrder,
  readPackedPackage,
} from "./corpus.ts";
import { bearer, type HttpResponse, RegistryClient } from "./http.ts";
import { type Stats, stats } from "./stats.ts";

/** `npm adduser`'s CouchDB call (npm-profile `adduserCouch`): creates the user or logs in, returns a token. */
export async function addUser(registry: string, name: string, password: string): Promise<string> {
  const client = new RegistryClient(registry);
  try {
    const body = JSON.stringify({
      _id: `org.couchdb.user:${name}`,
      name,
      password,
      email: `${name}@example.com`,
      type: "user",
      roles: [],
      date: new Date().toISOString(),
    });
    const response = await client.request("PUT", `/-/user/org.couchdb.user:${encodeURIComponent(name)}`, {
      headers: { "content-type": "application/json", accept: "application/json" },
      body,
    });
    const parsed = JSON.parse(response.body.toString() || "{}") as { token?: string };
    if (response.status >= 300 || !parsed.token) {
      throw new Error(`adduser on ${registry}: HTTP ${response.status} ${response.body.toString().slice(0, 200)}`);
    }
    return parsed.token;
  } finally {
    client.close();
  }
}

export async function publish(
  client: RegistryClient,
  token: string,
  doc: Record<string, unknown>,
): Promise<HttpResponse> {
  return client.request("PUT", packumentPath(doc.name as string), {
    headers: {
      ...bearer(token),
      "content-type": "application/json",
      accept: "application/json",
      "npm-command": "publish",
      "user-agent": `npm/11.0.0 node/${process.version} linux x64 workspaces/false`,
    },
    body: JSON.stringify(doc),
  });
}

export async function publishOk(client: RegistryClient, token: string, doc: Record<string, unknown>): Promise<number> {
  const response = await publish(client, token, doc);
  if (response.status < 200 || response.status >= 300) {
    throw new Error(`publish ${String(doc._id)}: HTTP ${response.status} ${response.body.toString().slice(0, 300)}`);
  }
  return response.ms;
}

export interface LoadSummary {
  published: number;
  failed: number;
  seconds: number;
  perSecond: number;
  uploadMB: number;
  latencyMs: Stats;
  errors: string[];
  /** The corpus entries that did not make it, with the registry's answer. */
  rejected: { entry: CorpusEntry; error: string }[];
}

/**
 * Publishes every corpus tarball with the npm protocol (the same bytes, so lockfile integrity holds).
 * Versions of one package go one after another in semver order; different packages in parallel.
 */
export async function loadCorpus(
  registry: string,
  token: string,
  corpus: Corpus,
  options: { concurrency: number; deadline: number },
): Promise<LoadSummary> {
  const client = new RegistryClient(registry, { maxSockets: options.concurrency, timeoutMs: 300_000 });
  const byName = new Map<string, Map<string, Corpus["packages"][number]>>();
  for (const entry of corpus.packages) {
    const versions = byName.get(entry.name) ?? new Map();
    versions.set(entry.version, entry);
    byName.set(entry.name, versions);
  }
  const queue = [...byName.values()]
    .map((versions) => publishOrder([...versions.keys()]).map((v) => versions.get(v) as Corpus["packages"][number]))
    .sort((a, b) => b.length - a.length);
  const latencies: number[] = [];
  const rejected: { entry: CorpusEntry; error: string }[] = [];
  let bytes = 0;
  const started = performance.now();
  const worker = async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      for (const entry of group) {
        const id = `${entry.name}@${entry.version}`;
        try {
          if (Date.now() > options.deadline) throw new Error("time limit reached");
          const tgz = readFileSync(join(corpus.dir, "tarballs", entry.file));
          const { pkg, readme, readmeFilename } = readPackedPackage(tgz);
          const doc = publishDocument({ pkg, tgz, registry, readme, readmeFilename });
          const body = JSON.stringify(doc);
          bytes += body.length;
          const response = await publish(client, token, doc);
          latencies.push(response.ms);
          if (response.status < 200 || response.status >= 300) {
            throw new Error(`HTTP ${response.status} ${response.body.toString().slice(0, 200)}`);
          }
        } catch (error) {
          rejected.push({ entry, error: `${id}: ${(error as Error).message}` });
        }
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  client.close();
  const seconds = (performance.now() - started) / 1000;
  return {
    published: corpus.packages.length - rejected.length,
    failed: rejected.length,
    seconds,
    perSecond: corpus.packages.length / seconds,
    uploadMB: bytes / 1e6,
    latencyMs: stats(latencies),
    errors: rejected.slice(0, 20).map((r) => r.error),
    rejected,
  };
}
