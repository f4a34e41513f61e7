import autocannon from "autocannon";
import { packumentPath, tarballPath } from "../corpus.ts";
import { bearer, decodedBody, RegistryClient } from "../http.ts";
import type { FullPackument, Manifest } from "../packument.ts";
import { publishOk } from "../registry-api.ts";
import { writeFwPackument, writeVerdaccioPackument } from "../seed.ts";
import { writeStaticPackument } from "../servers/nginx.ts";
import { isFw, type RunningServer } from "../servers/types.ts";
import { type Stats, stats } from "../stats.ts";
import { smallPublishDoc } from "../synthetic.ts";
import { ABBREVIATED_ACCEPT } from "./http-load.ts";

export interface PopularResult {
  registry: string;
  kind: RunningServer["kind"];
  versions: number;
  fullBytes: number;
  fullWireBytes: number;
  abbreviatedBytes: number;
  abbreviatedWireBytes: number;
  /** First GET after seeding: the server reads, parses and renders the document. */
  coldGetMs: number;
  fullGetMs: Stats;
  abbreviatedGetMs: Stats;
  /** autocannon on the abbreviated packument (what installs fetch). */
  load?: { connections: number; reqPerSec: number; p50Ms: number; p99Ms: number; non2xx: number; errors: number };
  publishMs?: Stats;
  /** The first abbreviated GET after each publish: the re-render a publish costs every reader. */
  getAfterPublishMs?: Stats;
  error?: string;
}

/**
 * Puts the document straight into each server's storage: publishing thousands of versions through
 * the API would take many minutes (every publish rewrites the whole document) and measure nothing new.
 */
export function seedPopular(server: RunningServer & { root?: string }, doc: FullPackument, maintainer: string): void {
  if (isFw(server.kind)) writeFwPackument(server.storageDir as string, doc, maintainer);
  else if (server.kind === "verdaccio") writeVerdaccioPackument(server.storageDir as string, doc, server.url);
  else {
    const versions: Record<string, Manifest> = {};
    for (const [v, m] of Object.entries(doc.versions)) {
      versions[v] = { ...m, dist: { ...(m.dist as object), tarball: server.url + tarballPath(m.name, v) } };
    }
    writeStaticPackument(server.root as string, { ...doc, versions });
  }
}

export async function measurePopular(
  server: RunningServer,
  doc: FullPackument,
  options: {
    token?: string | undefined;
    canPublish: boolean;
    gets: number;
    publishes: number;
    loadSeconds: number;
    connections: number;
  },
): Promise<PopularResult> {
  const client = new RegistryClient(server.url, { maxSockets: 1, timeoutMs: 120_000 });
  const path = packumentPath(doc.name);
  const headers = (abbreviated: boolean) => ({
    ...bearer(options.token),
    "accept-encoding": "gzip,deflate",
    accept: abbreviated ? ABBREVIATED_ACCEPT : "application/json",
  });
  const get = async (abbreviated: boolean) => {
    const response = await client.request("GET", path, { headers: headers(abbreviated) });
    if (response.status !== 200) {
      throw new Error(
        `GET ${path} (${abbreviated ? "abbreviated" : "full"}): HTTP ${response.status} ${response.body.toString().slice(0, 200)}`,
      );
    }
    return response;
  };
  const result: PopularResult = {
    registry: server.label,
    kind: server.kind,
    versions: Object.keys(doc.versions).length,
    fullBytes: 0,
    fullWireBytes: 0,
    abbreviatedBytes: 0,
    abbreviatedWireBytes: 0,
    coldGetMs: Number.NaN,
    fullGetMs: stats([]),
    abbreviatedGetMs: stats([]),
  };
  try {
    const cold = await get(false);
    result.coldGetMs = cold.ms;
    result.fullWireBytes = cold.body.length;
    const full = JSON.parse(decodedBody(cold).toString()) as FullPackument;
    result.fullBytes = decodedBody(cold).length;
    if (Object.keys(full.versions).length !== result.versions) {
      throw new Error(`served ${Object.keys(full.versions).length} versions, seeded ${result.versions}`);
    }
    const fullMs: number[] = [];
    const abbreviatedMs: number[] = [];
    for (let i = 0; i < options.gets; i++) {
      fullMs.push((await get(false)).ms);
      const abbreviated = await get(true);
      abbreviatedMs.push(abbreviated.ms);
      result.abbreviatedWireBytes = abbreviated.body.length;
      result.abbreviatedBytes = decodedBody(abbreviated).length;
    }
    result.fullGetMs = stats(fullMs);
    result.abbreviatedGetMs = stats(abbreviatedMs);
    if (options.loadSeconds > 0) {
      const load = await autocannon({
        url: server.url + path,
        headers: headers(true),
        connections: options.connections,
        duration: options.loadSeconds,
        timeout: 60,
      });
      result.load = {
        connections: options.connections,
        reqPerSec: load.requests.average,
        p50Ms: load.latency.p50,
        p99Ms: load.latency.p99,
        non2xx: load.non2xx,
        errors: load.errors + load.timeouts,
      };
    }
    if (options.canPublish && options.token) {
      const publishMs: number[] = [];
      const afterMs: number[] = [];
      for (let i = 0; i < options.publishes; i++) {
        publishMs.push(await publishOk(client, options.token, smallPublishDoc(doc.name, `900.0.${i}`, server.url)));
        afterMs.push((await get(true)).ms);
      }
      result.publishMs = stats(publishMs);
      result.getAfterPublishMs = stats(afterMs);
    }
  } catch (error) {
    result.error = (error as Error).message;
  } finally {
    client.close();
  }
  return result;
}
