import type { UplinkAuthConfig, UplinkConfig } from "../config/uplinks.js";
import type { Logger } from "../context.js";

/**
 * Why an upstream call failed. `timeout`: no answer (or no progress) within the configured bounds;
 * `unavailable`: connection refused or reset, 5xx, 429, a truncated body, or the uplink resting after
 * repeated failures; `bad-response`: an answer fw cannot use (not JSON, the wrong package, an unexpected
 * status); `refused`: 401/403, the uplink's credentials are wrong.
 */
export type UpstreamFailureKind = "timeout" | "unavailable" | "bad-response" | "refused";

export class UpstreamFailure extends Error {
  override readonly name = "UpstreamFailure";
  constructor(
    readonly kind: UpstreamFailureKind,
    readonly uplink: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.retryable = options.retryable ?? false;
  }
  readonly retryable: boolean;
}

export type PackumentFetch =
  | { status: "ok"; body: Uint8Array; etag: string | undefined }
  | { status: "not-modified" }
  | { status: "not-found" };

export interface TarballFetch {
  /** The body, guarded by the idle and total timeouts; it errors on a stall, a reset or a truncation. */
  body: ReadableStream<Uint8Array>;
  /** Content-Length when the upstream sent one. */
  size: number | undefined;
}

/** Bounds of one `getJson` call; unset ones are the uplink's own settings. */
export interface JsonFetchOptions {
  /** Largest answer accepted; a larger one fails as `bad-response`. */
  maxBytes: number;
  /** The whole call, retries included; capped by the uplink's `timeouts.totalMs` (and its other timeouts by this). */
  totalMs?: number;
  retries?: number;
  /**
   * Whether the call's outcome counts in the circuit breaker (default `true`). `false` for calls whose
   * failures must not rest the uplink for installs, nor their successes clear the installs' failures
   * (search); such a call still fails at once while the uplink rests.
   */
  circuit?: boolean;
}

export interface UpstreamClientOptions {
  logger: Logger;
  /** Default: the global `fetch` (undici in Node; Bun's and the Worker runtime's own elsewhere). */
  fetch?: typeof fetch;
  /** Where `auth.tokenEnv` is read. Default: `process.env` when there is one. */
  env?: Record<string, string | undefined>;
  now?: () => number;
}

/** Largest metadata document accepted from an uplink. */
const MAX_METADATA_BYTES = 256 * 1024 * 1024;
const USER_AGENT = "fw-registry (uplink)";

/**
 * Statuses that mean "no such package or file here": 404 and 410, and other 4xx except those about
 * credentials and rate limits (an upstream that calls a name invalid does not have it either). They do
 * not count as failures, so requests for odd names cannot rest an uplink.
 */
function isMissing(status: number): boolean {
  return status >= 400 && status < 500 && status !== 401 && status !== 403 && status !== 429;
}

/** `@scope%2fname` as npm writes it (npm-package-arg's escapedName), `name` otherwise. */
export function packumentPath(name: string): string {
  const slash = name.indexOf("/");
  if (!name.startsWith("@") || slash < 0) return encodeURIComponent(name);
  return `@${encodeURIComponent(name.slice(1, slash))}%2f${encodeURIComponent(name.slice(slash + 1))}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A function giving the token for each request, or `undefined` for none; it never throws. */
function tokenSource(
  uplink: string,
  auth: UplinkConfig["auth"],
  env: Record<string, string | undefined>,
  logger: Logger,
): () => string | undefined {
  if (!auth) return () => undefined;
  let warned = false;
  const warnOnce = (message: string, fields: Record<string, unknown>) => {
    if (warned) return;
    warned = true;
    logger.warn(message, { uplink, ...fields });
  };
  const { tokenEnv, token } = auth;
  if (tokenEnv !== undefined) {
    return () => {
      const value = env[tokenEnv];
      if (value) return value;
      warnOnce("uplink token variable is not set; asking without credentials", { variable: tokenEnv });
      return undefined;
    };
  }
  if (token?.startsWith("secret:")) {
    // Resolved by @fw/secrets before the config reaches the registry; still a reference means no vault ran.
    return () => {
      warnOnce("uplink token is an unresolved secret reference; asking without credentials", {});
      return undefined;
    };
  }
  return () => token;
}

/**
 * HTTP to one upstream registry with Web `fetch` only (so it runs on Node, Bun and in a Worker): every
 * call bounded by a response timeout, an idle timeout on the body and a total timeout; GETs retried with
 * exponential back-off after network errors and 5xx; after `circuit.failures` failed calls in a row the
 * uplink rests for `circuit.cooldownMs` and calls fail at once. The token is sent only to the uplink's own
 * origin and is never logged or put in an error.
 */
export class UpstreamClient {
  readonly url: URL;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;
  private readonly token: () => string | undefined;
  private failures = 0;
  private restingUntil = 0;

  /** The uplink's settings without the token, which only the `token` closure holds (so it is never serialised). */
  readonly settings: Omit<UplinkConfig, "auth"> & { auth?: Pick<UplinkAuthConfig, "type"> };
  private readonly logger: Logger;

  constructor(
    readonly name: string,
    settings: UplinkConfig,
    options: UpstreamClientOptions,
  ) {
    const { auth, ...rest } = settings;
    this.settings = { ...rest, ...(auth && { auth: { type: auth.type } }) };
    this.url = new URL(`${settings.url}/`);
    this.logger = options.logger;
    this.fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.now = options.now ?? Date.now;
    const env = options.env ?? (typeof process === "undefined" ? {} : process.env);
    this.token = tokenSource(name, auth, env, options.logger);
  }

  /** `GET /<name>`, conditional on `etag` when given. */
  async packument(name: string, etag?: string): Promise<PackumentFetch> {
    const url = new URL(packumentPath(name), this.url);
    return this.withRetries("GET", url, async (signal, timers) => {
      const response = await this.send(
        url,
        {
          method: "GET",
          headers: this.headers(url, {
            accept: "application/json",
            ...(etag !== undefined && { "if-none-match": etag }),
          }),
          signal,
        },
        timers,
      );
      if (response.status === 304 && etag !== undefined) return { status: "not-modified" } as const;
      if (isMissing(response.status)) {
        await response.body?.cancel().catch(() => {});
        return { status: "not-found" } as const;
      }
      await this.expectOk(response, url);
      const body = await this.readAll(guardBody(response.body, timers, url), url);
      return { status: "ok", body, etag: response.headers.get("etag") ?? undefined } as const;
    });
  }

  /**
   * `GET` a tarball. Retries cover getting the response only: once bytes flow they go to the client, so a
   * failure after that ends the transfer instead. `null` when the upstream has no such file.
   */
  async tarball(location: string): Promise<TarballFetch | null> {
    const url = new URL(location, this.url);
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new UpstreamFailure("bad-response", this.name, `the tarball URL is not http(s)`);
    return this.withRetries(
      "GET",
      url,
      async (signal, timers) => {
        const response = await this.send(
          url,
          // Identity: a tarball's bytes must reach the hash exactly as published.
          { method: "GET", headers: this.headers(url, { accept: "*/*", "accept-encoding": "identity" }), signal },
          timers,
        );
        if (isMissing(response.status)) {
          await response.body?.cancel().catch(() => {});
          timers.done();
          return null;
        }
        await this.expectOk(response, url);
        const length = Number(response.headers.get("content-length") ?? Number.NaN);
        return {
          body: guardBody(response.body, timers, url),
          size: Number.isSafeInteger(length) && length >= 0 ? length : undefined,
        };
      },
      { keepTimers: true },
    );
  }

  /**
   * `GET` a small JSON answer (a search page) at `path` with `query`. `null` when the upstream does not
   * offer it (404, and other 4xx but 401, 403 and 429), which is no failure.
   */
  async getJson(path: string, query: URLSearchParams, options: JsonFetchOptions): Promise<Uint8Array | null> {
    const url = new URL(path.replace(/^\/+/, ""), this.url);
    url.search = query.toString();
    const { timeouts } = this.settings;
    const totalMs = Math.max(1, Math.min(timeouts.totalMs, options.totalMs ?? timeouts.totalMs));
    return this.withRetries(
      "GET",
      url,
      async (signal, timers) => {
        const response = await this.send(
          url,
          { method: "GET", headers: this.headers(url, { accept: "application/json" }), signal },
          timers,
        );
        if (isMissing(response.status)) {
          await response.body?.cancel().catch(() => {});
          return null;
        }
        await this.expectOk(response, url);
        return this.readAll(guardBody(response.body, timers, url), url, options.maxBytes);
      },
      {
        retries: options.retries ?? this.settings.retries,
        timeouts: {
          responseMs: Math.min(timeouts.responseMs, totalMs),
          idleMs: Math.min(timeouts.idleMs, totalMs),
          totalMs,
        },
        circuit: options.circuit ?? true,
      },
    );
  }

  /** Whether the uplink rests after repeated failures: calls now fail at once without asking it. */
  isResting(): boolean {
    return this.restingUntil > this.now();
  }

  /** A POST (npm audit); never retried. Resolves with any status the upstream answered with below 500. */
  async post(
    path: string,
    body: Uint8Array,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: Uint8Array; contentType: string }> {
    const url = new URL(path.replace(/^\/+/, ""), this.url);
    return this.withRetries(
      "POST",
      url,
      async (signal, timers) => {
        const response = await this.send(
          url,
          {
            method: "POST",
            headers: this.headers(url, { accept: "application/json", ...headers }),
            body: body as Uint8Array<ArrayBuffer>,
            signal,
          },
          timers,
        );
        if (response.status >= 500 || response.status === 429) {
          await response.body?.cancel().catch(() => {});
          throw new UpstreamFailure("unavailable", this.name, `answered ${response.status}`);
        }
        const bytes = await this.readAll(guardBody(response.body, timers, url), url);
        return {
          status: response.status,
          body: bytes,
          contentType: response.headers.get("content-type") ?? "application/json",
        };
      },
      { retries: 0 },
    );
  }

  /** Counts a failure found after a call returned (a body that is not JSON, a tarball that failed its check). */
  recordFailure(): void {
    this.failures++;
    if (this.failures >= this.settings.circuit.failures) {
      const wasResting = this.restingUntil > this.now();
      this.restingUntil = this.now() + this.settings.circuit.cooldownMs;
      if (!wasResting && this.settings.circuit.cooldownMs > 0)
        this.logger.warn("uplink failed repeatedly; resting it", {
          uplink: this.name,
          failures: this.failures,
          cooldownMs: this.settings.circuit.cooldownMs,
        });
    }
  }

  private recordSuccess(): void {
    this.failures = 0;
    this.restingUntil = 0;
  }

  private headers(url: URL, extra: Record<string, string>): Record<string, string> {
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...extra };
    // Like npm: credentials go to the registry's own origin only, never to a CDN the metadata points at.
    if (url.origin === this.url.origin) {
      const token = this.token();
      if (token) headers.authorization = `${this.settings.auth?.type === "basic" ? "Basic" : "Bearer"} ${token}`;
    }
    return headers;
  }

  private async expectOk(response: Response, url: URL): Promise<void> {
    if (response.status === 200) return;
    await response.body?.cancel().catch(() => {});
    const where = `${url.pathname}`;
    if (response.status >= 500 || response.status === 429)
      throw new UpstreamFailure("unavailable", this.name, `answered ${response.status} for ${where}`, {
        retryable: true,
      });
    if (response.status === 401 || response.status === 403)
      throw new UpstreamFailure("refused", this.name, `refused fw's credentials (${response.status}) for ${where}`);
    throw new UpstreamFailure("bad-response", this.name, `answered ${response.status} for ${where}`);
  }

  /**
   * Runs `attempt` with timers for each try, retrying GETs on retryable failures while the total time
   * allows, and keeps the circuit's count unless `circuit` is false. `keepTimers` leaves the total and
   * idle timers running after a success: the body is still being read by someone else.
   */
  private async withRetries<T>(
    method: string,
    url: URL,
    attempt: (signal: AbortSignal, timers: Timers) => Promise<T>,
    options: {
      keepTimers?: boolean;
      retries?: number;
      timeouts?: UplinkConfig["timeouts"];
      circuit?: boolean;
    } = {},
  ): Promise<T> {
    const restingFor = this.restingUntil - this.now();
    if (restingFor > 0) {
      throw new UpstreamFailure(
        "unavailable",
        this.name,
        `failed ${this.failures} times in a row; not asked again for ${Math.ceil(restingFor / 1000)} s`,
      );
    }
    const timeouts = options.timeouts ?? this.settings.timeouts;
    const circuit = options.circuit ?? true;
    const deadline = this.now() + timeouts.totalMs;
    const retries = method === "GET" ? (options.retries ?? this.settings.retries) : 0;
    for (let tries = 0; ; tries++) {
      const timers = new Timers(this.name, timeouts, deadline - this.now());
      try {
        const result = await attempt(timers.signal, timers);
        if (!options.keepTimers || result === null) timers.done();
        if (circuit) this.recordSuccess();
        return result;
      } catch (error) {
        timers.done();
        const failure = timers.failure(error, url);
        const backoff = Math.min(2_000, 100 * 2 ** tries) * (0.5 + Math.random() / 2);
        if (failure.retryable && tries < retries && this.now() + backoff < deadline) {
          this.logger.debug("uplink request failed; retrying", {
            uplink: this.name,
            url: url.href,
            err: failure.message,
          });
          await sleep(backoff);
          continue;
        }
        if (circuit) this.recordFailure();
        throw failure;
      }
    }
  }

  private async send(url: URL, init: RequestInit, timers: Timers): Promise<Response> {
    const response = await this.fetch(url, { ...init, redirect: "follow" });
    timers.responded();
    return response;
  }

  private async readAll(
    body: ReadableStream<Uint8Array>,
    url: URL,
    maxBytes = MAX_METADATA_BYTES,
  ): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let total = 0;
    const reader = body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new UpstreamFailure(
          "bad-response",
          this.name,
          `${url.pathname} is larger than ${maxBytes / 1024 / 1024} MB`,
        );
      }
      chunks.push(value);
    }
    const out = new Uint8Array(total);
    let offset = 0;
    for (const chunk of chunks) {
      out.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return out;
  }
}

/**
 * The timers of one attempt: the response timeout runs until headers arrive, the idle timeout while the
 * body waits for its next chunk, the total timeout throughout. Each aborts the attempt's signal, which
 * fails the pending `fetch` or body read.
 */
class Timers {
  private readonly controller = new AbortController();
  private response: ReturnType<typeof setTimeout> | undefined;
  private total: ReturnType<typeof setTimeout> | undefined;
  private idle: ReturnType<typeof setTimeout> | undefined;
  private expired: string | undefined;

  constructor(
    private readonly uplink: string,
    private readonly timeouts: UplinkConfig["timeouts"],
    remainingMs: number,
  ) {
    const remaining = Math.max(1, remainingMs);
    this.total = setTimeout(() => this.expire(`did not finish within ${timeouts.totalMs} ms`), remaining);
    this.response = setTimeout(
      () => this.expire(`did not answer within ${Math.min(timeouts.responseMs, remaining)} ms`),
      Math.min(timeouts.responseMs, remaining),
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  responded(): void {
    clearTimeout(this.response);
    this.response = undefined;
  }

  /** Starts the idle timer before waiting for a body chunk. */
  waiting(): void {
    clearTimeout(this.idle);
    this.idle = setTimeout(
      () => this.expire(`sent nothing for ${this.timeouts.idleMs} ms in the middle of a response`),
      this.timeouts.idleMs,
    );
  }

  received(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
  }

  done(): void {
    clearTimeout(this.response);
    clearTimeout(this.total);
    clearTimeout(this.idle);
  }

  private expire(reason: string): void {
    if (this.expired) return;
    this.expired = reason;
    this.controller.abort(new UpstreamFailure("timeout", this.uplink, reason));
  }

  /** The failure an error of this attempt amounts to. */
  failure(error: unknown, url: URL): UpstreamFailure {
    if (this.expired) return new UpstreamFailure("timeout", this.uplink, `${url.pathname}: ${this.expired}`);
    if (error instanceof UpstreamFailure) return error;
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
    const message = error instanceof Error ? error.message : String(error);
    return new UpstreamFailure("unavailable", this.uplink, `${url.pathname}: ${message}${cause}`, {
      cause: error,
      retryable: true,
    });
  }
}

/** The body of a response, each read bounded by the idle timer; the timers stop when it ends or fails. */
function guardBody(body: ReadableStream<Uint8Array> | null, timers: Timers, url: URL): ReadableStream<Uint8Array> {
  if (!body) {
    timers.done();
    return new ReadableStream({ start: (controller) => controller.close() });
  }
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      timers.waiting();
      try {
        const { done, value } = await reader.read();
        timers.received();
        if (done) {
          timers.done();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        const failure = timers.failure(error, url);
        timers.done();
        controller.error(failure);
      }
    },
    async cancel(reason) {
      timers.done();
      await reader.cancel(reason).catch(() => {});
    },
  });
}
