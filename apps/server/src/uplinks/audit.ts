import { createHash } from "node:crypto";
import { gunzipSync, gzipSync } from "node:zlib";
import { LRUCache } from "lru-cache";
import type { Logger } from "../context.js";
import { RegistryError } from "../http/errors.js";
import { type UpstreamClient, UpstreamFailure } from "./client.js";

/** npm's two audit endpoints: `bulk` (npm 7+, `{ name: [versions] }`) and `quick` (the older tree format). */
export type AuditKind = "bulk" | "quick";

export const AUDIT_PATHS: Record<AuditKind, string> = {
  bulk: "/-/npm/v1/security/advisories/bulk",
  quick: "/-/npm/v1/security/audits/quick",
};

export interface AuditAnswer {
  status: number;
  body: Uint8Array;
  contentType: string;
}

export interface AuditForwarderOptions {
  /** Uplinks that offer audits, in config order. */
  clients: readonly UpstreamClient[];
  proxyFor(name: string): readonly string[];
  isHosted(name: string): Promise<boolean>;
  logger: Logger;
  now?: () => number;
}

/** Identical audits (same lockfile, same uplink) within this time get the same answer. */
const AUDIT_CACHE_MS = 5 * 60 * 1000;
const MAX_AUDIT_BYTES = 64 * 1024 * 1024;
/** Statuses meaning the uplink has no audit endpoint. */
const NOT_OFFERED = new Set([400, 404, 405, 501]);

/** A JSON object (not an array, not `null`). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every package name a bulk or quick audit body mentions. */
function namesIn(kind: AuditKind, body: Record<string, unknown>): Set<string> {
  const names = new Set<string>();
  if (kind === "bulk") {
    for (const name of Object.keys(body)) names.add(name);
    return names;
  }
  const walk = (node: Record<string, unknown>, depth: number) => {
    if (depth > 200) return;
    if (isObject(node.requires)) for (const name of Object.keys(node.requires)) names.add(name);
    if (isObject(node.dependencies)) {
      for (const [name, child] of Object.entries(node.dependencies)) {
        names.add(name);
        if (isObject(child)) walk(child, depth + 1);
      }
    }
  };
  walk(body, 0);
  return names;
}

/** The body with only the names `keep` allows. */
function filterBody(kind: AuditKind, body: Record<string, unknown>, keep: (name: string) => boolean) {
  if (kind === "bulk") return Object.fromEntries(Object.entries(body).filter(([name]) => keep(name)));
  const prune = (node: Record<string, unknown>, depth: number): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...node };
    if (isObject(node.requires))
      out.requires = Object.fromEntries(Object.entries(node.requires).filter(([name]) => keep(name)));
    if (isObject(node.dependencies) && depth <= 200) {
      out.dependencies = Object.fromEntries(
        Object.entries(node.dependencies)
          .filter(([name]) => keep(name))
          .map(([name, child]) => [name, isObject(child) ? prune(child, depth + 1) : child]),
      );
    }
    return out;
  };
  return prune(body, 0);
}

/** Checks names with at most `limit` lookups at a time. */
export async function hostedNames(names: Iterable<string>, isHosted: (name: string) => Promise<boolean>, limit = 16) {
  const queue = [...names];
  const hosted = new Set<string>();
  const worker = async () => {
    for (let name = queue.pop(); name !== undefined; name = queue.pop()) if (await isHosted(name)) hosted.add(name);
  };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
  return hosted;
}

/**
 * Forwards `npm audit` to an uplink that offers it, gzipped as npm sends it. Names that uplink does not
 * serve — hosted packages and names whose rule keeps them off it — are taken out first, so private names
 * never leave fw. Answers are cached briefly; `null` means no uplink could be asked (an empty report).
 */
export class AuditForwarder {
  private readonly answers = new LRUCache<string, AuditAnswer>({
    max: 500,
    maxSize: 32 * 1024 * 1024,
    sizeCalculation: (answer) => Math.max(1, answer.body.byteLength),
    ttl: AUDIT_CACHE_MS,
  });

  constructor(private readonly options: AuditForwarderOptions) {}

  async forward(kind: AuditKind, raw: Uint8Array, contentEncoding: string | undefined): Promise<AuditAnswer | null> {
    if (this.options.clients.length === 0) return null;
    const body = this.decode(raw, contentEncoding);
    const names = namesIn(kind, body);
    const hosted = await hostedNames(names, this.options.isHosted);
    const failures: UpstreamFailure[] = [];
    for (const client of this.options.clients) {
      const keep = (name: string) => !hosted.has(name) && this.options.proxyFor(name).includes(client.name);
      if (![...names].some(keep)) continue;
      const json = JSON.stringify(filterBody(kind, body, keep));
      const key = `${client.name}\n${kind}\n${createHash("sha256").update(json).digest("hex")}`;
      const cached = this.answers.get(key);
      if (cached) return cached;
      try {
        const answer = await client.post(AUDIT_PATHS[kind], gzipSync(json), {
          "content-type": "application/json",
          "content-encoding": "gzip",
        });
        if (NOT_OFFERED.has(answer.status)) continue;
        if (answer.status !== 200) {
          throw new UpstreamFailure("bad-response", client.name, `answered ${answer.status} to an audit`);
        }
        this.answers.set(key, answer);
        return answer;
      } catch (error) {
        if (!(error instanceof UpstreamFailure)) throw error;
        failures.push(error);
        this.options.logger.warn("uplink audit request failed", { uplink: client.name, err: error.message });
      }
    }
    if (failures.length > 0) {
      // A failed audit must not read as a clean one.
      const timeout = failures.every((failure) => failure.kind === "timeout");
      throw new RegistryError(
        timeout ? "E_UPSTREAM_TIMEOUT" : "E_UPSTREAM",
        `the audit could not be run upstream: ${failures.map((f) => `uplink "${f.uplink}" ${f.message}`).join("; ")}`,
      );
    }
    return null;
  }

  private decode(raw: Uint8Array, contentEncoding: string | undefined): Record<string, unknown> {
    let text: string;
    try {
      const encoding = (contentEncoding ?? "").trim().toLowerCase();
      const bytes =
        encoding === "gzip" || encoding === "x-gzip" ? gunzipSync(raw, { maxOutputLength: MAX_AUDIT_BYTES }) : raw;
      text = new TextDecoder().decode(bytes);
    } catch (cause) {
      throw new RegistryError("E_BAD_REQUEST", "the audit body is not valid gzip data", { cause });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (cause) {
      throw new RegistryError("E_BAD_REQUEST", "the audit body is not valid JSON", { cause });
    }
    if (!isObject(body)) throw new RegistryError("E_BAD_REQUEST", "the audit body must be a JSON object");
    return body;
  }
}
