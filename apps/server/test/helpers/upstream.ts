/**
 * A small npm registry the tests control, standing in for an uplink: packuments with ETags (and 304s),
 * tarballs, the audit endpoints, a log of every request, and faults injected per path — status codes,
 * stalls, resets, bodies cut off mid-way, tarballs whose bytes do not match their metadata.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import type { UplinkConfig } from "../../src/config/uplinks.js";
import { digests, makeTarball } from "./packages.js";
import { startTestRegistry, type TestRegistry } from "./registry.js";

export interface UpstreamRequest {
  method: string;
  /** Path as sent, e.g. `/@acme%2fwidget`. */
  path: string;
  headers: IncomingMessage["headers"];
  /** For POSTs: the body, un-gzipped. */
  body?: string;
}

export type Fault =
  /** Answer with this status (and a JSON error body). */
  | { kind: "status"; status: number }
  /** Send nothing for `ms` (the default: until the server closes), then answer normally. */
  | { kind: "stall"; ms?: number }
  /** Close the connection without an answer. */
  | { kind: "reset" }
  /** Send the headers (with the full Content-Length) and `fraction` of the body, then close the connection. */
  | { kind: "truncate"; fraction?: number }
  /** Send half of the body, then nothing for `ms`, then the rest. */
  | { kind: "stall-body"; ms: number }
  /** Tarballs: send other bytes of the same length than the metadata's integrity describes. */
  | { kind: "corrupt" };

interface Injected {
  fault: Fault;
  path: RegExp;
  /** How many more requests it applies to; Infinity until removed. */
  left: number;
}

interface Version {
  manifest: Record<string, unknown>;
  tarball: Uint8Array;
}

export interface UpstreamPackageSpec {
  name: string;
  version: string;
  dependencies?: Record<string, string>;
  /** Extra package.json fields. */
  manifest?: Record<string, unknown>;
  /** Tarball size padding: a file of this many random-ish bytes (for transfers long enough to cut). */
  padding?: number;
  distTag?: string;
}

/** An uplink config for a registry at `url` with test-sized timeouts (1 s) and no resting unless overridden. */
export function uplinkTo(url: string, overrides: Partial<UplinkConfig> = {}): UplinkConfig {
  return {
    url,
    timeouts: { responseMs: 1_000, idleMs: 1_000, totalMs: 10_000 },
    retries: 1,
    maxAgeMs: 60_000,
    circuit: { failures: 1_000, cooldownMs: 0 },
    takedowns: "remove",
    audit: true,
    ...overrides,
  };
}

function baseName(name: string): string {
  return name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
}

export class FakeUpstream implements AsyncDisposable {
  readonly requests: UpstreamRequest[] = [];
  /** Answer for audit POSTs; the tests replace it. */
  auditAnswer: unknown = {};
  /** When set, packuments and tarballs need `Authorization: Bearer <token>`. */
  requiredToken: string | undefined;
  private readonly packages = new Map<string, { versions: Map<string, Version>; tags: Record<string, string> }>();
  private readonly faults: Injected[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly stalls = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {
    server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  static async start(): Promise<FakeUpstream> {
    let upstream: FakeUpstream | undefined;
    const server = createServer((req, res) => {
      void upstream?.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    upstream = new FakeUpstream(server, `http://127.0.0.1:${port}`);
    return upstream;
  }

  /** An uplink config for this server, with short timeouts unless overridden. */
  uplink(overrides: Partial<UplinkConfig> = {}): UplinkConfig {
    return uplinkTo(this.url, overrides);
  }

  /** Adds a version (with a tarball holding its package.json and an index.js). */
  publish(spec: UpstreamPackageSpec): { tarball: Uint8Array; integrity: string } {
    const manifest: Record<string, unknown> = {
      name: spec.name,
      version: spec.version,
      description: `upstream fixture ${spec.name}`,
      main: "index.js",
      license: "MIT",
      ...(spec.dependencies && { dependencies: spec.dependencies }),
      ...spec.manifest,
    };
    const files: Record<string, string | Uint8Array> = {
      "package.json": JSON.stringify(manifest, null, 2),
      "index.js": `module.exports = ${JSON.stringify(`${spec.name}@${spec.version} (upstream)`)};\n`,
    };
    // Random bytes do not compress: the tarball is about this large.
    if (spec.padding) files["padding.bin"] = randomBytes(spec.padding);
    const tarball = makeTarball(files);
    const entry = this.packages.get(spec.name) ?? {
      versions: new Map<string, Version>(),
      tags: {} as Record<string, string>,
    };
    entry.versions.set(spec.version, { manifest, tarball });
    entry.tags[spec.distTag ?? "latest"] = spec.version;
    this.packages.set(spec.name, entry);
    return { tarball, integrity: digests(tarball).integrity };
  }

  /** A takedown: the version disappears from the packument and its tarball 404s. */
  unpublish(name: string, version?: string): void {
    const entry = this.packages.get(name);
    if (!entry) return;
    if (version === undefined) {
      this.packages.delete(name);
      return;
    }
    entry.versions.delete(version);
    for (const [tag, target] of Object.entries(entry.tags)) if (target === version) delete entry.tags[tag];
    const last = [...entry.versions.keys()].at(-1);
    if (!entry.tags.latest && last) entry.tags.latest = last;
  }

  /** Applies `fault` to the next `times` requests whose path matches (default: all, until `clearFaults`). */
  inject(fault: Fault, options: { path?: RegExp; times?: number } = {}): void {
    this.faults.push({ fault, path: options.path ?? /.*/, left: options.times ?? Number.POSITIVE_INFINITY });
  }

  clearFaults(): void {
    this.faults.length = 0;
    for (const release of this.stalls) release();
  }

  /** Requests whose path contains `text` (decoded), e.g. a package name. */
  requestsFor(text: string): UpstreamRequest[] {
    return this.requests.filter((request) => decodeURIComponent(request.path).includes(text));
  }

  packumentUrl(name: string): string {
    return `${this.url}/${name.startsWith("@") ? `@${encodeURIComponent(name.slice(1))}` : name}`;
  }

  private document(name: string): Record<string, unknown> | undefined {
    const entry = this.packages.get(name);
    if (!entry) return undefined;
    const versions: Record<string, unknown> = {};
    const time: Record<string, string> = { created: "2020-01-01T00:00:00.000Z", modified: "2020-01-02T00:00:00.000Z" };
    for (const [version, { manifest, tarball }] of entry.versions) {
      versions[version] = {
        ...manifest,
        _id: `${name}@${version}`,
        dist: { ...digests(tarball), tarball: `${this.url}/${name}/-/${baseName(name)}-${version}.tgz` },
      };
      time[version] = "2020-01-01T00:00:00.000Z";
    }
    return { _id: name, name, "dist-tags": entry.tags, versions, time, readme: `# ${name}` };
  }

  private takeFault(path: string): Fault | undefined {
    const injected = this.faults.find((each) => each.left > 0 && each.path.test(decodeURIComponent(path)));
    if (!injected) return undefined;
    injected.left--;
    return injected.fault;
  }

  private stall(ms: number | undefined): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        this.stalls.delete(release);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(release, ms);
      this.stalls.add(release);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = req.url ?? "/";
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const record: UpstreamRequest = { method: req.method ?? "GET", path, headers: req.headers };
    if (raw.byteLength > 0) {
      record.body = (req.headers["content-encoding"] === "gzip" ? gunzipSync(raw) : raw).toString("utf8");
    }
    this.requests.push(record);

    const fault = this.takeFault(path);
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "stall") await this.stall(fault.ms);
    if (fault?.kind === "status") {
      this.send(res, fault.status, JSON.stringify({ error: `injected ${fault.status}` }), "application/json");
      return;
    }

    if (req.method === "POST" && path.startsWith("/-/npm/v1/security/")) {
      this.send(res, 200, JSON.stringify(this.auditAnswer), "application/json", fault);
      return;
    }
    if (this.requiredToken && req.headers.authorization !== `Bearer ${this.requiredToken}`) {
      this.send(res, 401, JSON.stringify({ error: "unauthorized" }), "application/json");
      return;
    }
    const decoded = decodeURIComponent(path.split("?")[0] ?? "/");
    const tarball = /^\/((?:@[^/]+\/)?[^/@][^/]*)\/-\/([^/]+\.tgz)$/.exec(decoded);
    if (req.method === "GET" && tarball) {
      const [, name, filename] = tarball as unknown as [string, string, string];
      const entry = this.packages.get(name);
      const version = [...(entry?.versions.keys() ?? [])].find((each) => `${baseName(name)}-${each}.tgz` === filename);
      const found = version === undefined ? undefined : entry?.versions.get(version);
      if (!found) {
        this.send(res, 404, JSON.stringify({ error: "not found" }), "application/json");
        return;
      }
      let bytes = found.tarball;
      if (fault?.kind === "corrupt") {
        bytes = Uint8Array.from(bytes);
        bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
      }
      this.send(res, 200, bytes, "application/octet-stream", fault);
      return;
    }
    const name = decoded.replace(/^\//, "");
    const doc = req.method === "GET" ? this.document(name) : undefined;
    if (!doc) {
      this.send(res, 404, JSON.stringify({ error: "not found" }), "application/json");
      return;
    }
    const body = JSON.stringify(doc);
    const etag = `"${createHash("sha1").update(body).digest("hex")}"`;
    if (req.headers["if-none-match"] === etag && !fault) {
      res.writeHead(304, { etag }).end();
      return;
    }
    this.send(res, 200, body, "application/json", fault, { etag });
  }

  private send(
    res: ServerResponse,
    status: number,
    body: string | Uint8Array,
    contentType: string,
    fault?: Fault,
    headers: Record<string, string> = {},
  ): void {
    const bytes =
      typeof body === "string" ? Buffer.from(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    res.writeHead(status, { "content-type": contentType, "content-length": String(bytes.byteLength), ...headers });
    if (fault?.kind === "truncate") {
      res.write(bytes.subarray(0, Math.floor(bytes.byteLength * (fault.fraction ?? 0.5))), () => {
        // Let the bytes reach the client before the connection drops.
        setTimeout(() => res.socket?.destroy(), 20);
      });
      return;
    }
    if (fault?.kind === "stall-body") {
      const half = Math.floor(bytes.byteLength / 2);
      res.write(bytes.subarray(0, half));
      void this.stall(fault.ms).then(() => {
        if (!res.destroyed) res.end(bytes.subarray(half));
      });
      return;
    }
    res.end(bytes);
  }

  /** Stops answering: connections are dropped and new ones refused (the uplink is down). */
  async close(): Promise<void> {
    for (const release of this.stalls) release();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.server.listening) await this.close();
  }
}

export interface ProxyRegistryOptions {
  /** Uplinks by name (default: `public` → the given upstream with its test settings). */
  uplinks?: Record<string, UplinkConfig>;
  /** Pattern → rule; `proxy` is split out as the config parser does. Default: `@acme/*` private, `**` proxied. */
  packages?: Record<string, { access?: string[]; publish?: string[]; proxy?: string[] }>;
}

/** A test registry in front of `upstream`, with the usual private scope `@acme/*` and everything else proxied. */
export async function startProxyRegistry(
  upstream: FakeUpstream | { uplink(overrides?: Partial<UplinkConfig>): UplinkConfig },
  options: ProxyRegistryOptions & { uplink?: Partial<UplinkConfig> } = {},
): Promise<TestRegistry> {
  const rules = options.packages ?? {
    "@acme/*": { access: ["$all"], publish: ["$authenticated"], proxy: [] },
    "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["public"] },
  };
  const packages: Record<string, { access?: string[]; publish?: string[] }> = {};
  const proxy: Record<string, string[]> = {};
  for (const [pattern, { proxy: list, ...rule }] of Object.entries(rules)) {
    packages[pattern] = rule;
    if (list) proxy[pattern] = list;
  }
  return startTestRegistry({
    access: { packages },
    extra: { uplinks: options.uplinks ?? { public: upstream.uplink(options.uplink) }, proxy },
  });
}

/**
 * Closes a test registry after a short pause. A streamed response can reach the client whole a moment
 * before the server marks its connection idle; `server.close()` only drops connections idle at that
 * moment, and would otherwise wait out the keep-alive timeout (65 s) for that one.
 */
export async function closeRegistry(registry: TestRegistry | undefined): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 100));
  await registry?.close();
}
