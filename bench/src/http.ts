import { Agent, type IncomingHttpHeaders, request } from "node:http";
import { gunzipSync, inflateSync } from "node:zlib";

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** Bytes as they came over the wire (still compressed when the server compressed them). */
  body: Buffer;
  ms: number;
}

/** Everything the benchmark sends stays on this machine; a typo in a URL must not reach a real host. */
export function assertLoopback(url: string): URL {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (!(host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)) || parsed.protocol !== "http:") {
    throw new Error(`refusing to contact ${parsed.origin}: the benchmark only talks to http servers on loopback`);
  }
  return parsed;
}

/** A keep-alive HTTP client bound to one loopback registry URL (path prefix kept). */
export class RegistryClient {
  readonly base: URL;
  private readonly agent: Agent;
  private readonly options: { maxSockets?: number; timeoutMs?: number };

  constructor(url: string, options: { maxSockets?: number; timeoutMs?: number } = {}) {
    this.options = options;
    this.base = assertLoopback(url.endsWith("/") ? url : `${url}/`);
    this.agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 8 });
  }

  request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ): Promise<HttpResponse> {
    const fullPath = this.base.pathname.replace(/\/$/, "") + path;
    const timeoutMs = this.options.timeoutMs ?? 120_000;
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const headers: Record<string, string | number> = { ...init.headers };
      if (init.body !== undefined) headers["content-length"] = Buffer.byteLength(init.body);
      const req = request(
        {
          host: this.base.hostname,
          port: this.base.port,
          path: fullPath,
          method,
          headers,
          agent: this.agent,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("error", reject);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
              ms: performance.now() - started,
            }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${fullPath}: no answer after ${timeoutMs} ms`)));
      req.on("error", reject);
      req.end(init.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export function decodedBody(response: HttpResponse): Buffer {
  const encoding = String(response.headers["content-encoding"] ?? "");
  if (encoding.includes("gzip")) return gunzipSync(response.body);
  if (encoding.includes("deflate")) return inflateSync(response.body);
  return response.body;
}

export function bearer(token: string | undefined): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}
