import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { getRequestListener } from "@hono/node-server";
import pino from "pino";
import { createRegistry, type Registry } from "../app.js";
import type { FwConfig } from "../config/index.js";
import type { Logger } from "../context.js";
import { Metrics } from "../services/metrics.js";
import { BUN_IDLE_TIMEOUT_SECONDS, bunServe, createBunFetch } from "./bun.js";
import { frontServer } from "./node-front.js";

/**
 * The storage driver a config names. The S3 driver (and the AWS SDK behind it, ~30 MB of memory) is
 * loaded only when the config asks for it.
 */
export async function storageFromConfig(config: FwConfig): Promise<StorageDriver> {
  const storage = config.storage;
  if (storage.driver === "fs") {
    return fsDriver({ root: storage.path, ...(storage.fsync !== undefined && { fsync: storage.fsync }) });
  }
  const { s3Driver } = await import("@fw/storage-r2/s3");
  return s3Driver({
    bucket: storage.bucket,
    region: storage.region,
    forcePathStyle: storage.forcePathStyle,
    credentials: { accessKeyId: storage.accessKeyId, secretAccessKey: storage.secretAccessKey },
    ...(storage.endpoint !== undefined && { endpoint: storage.endpoint }),
    ...(storage.prefix !== undefined && { prefix: storage.prefix }),
  });
}

/** A pino logger as the config asks (JSON lines or human-readable, whose formatter loads only then), on stderr. */
export async function createLogger(config: FwConfig): Promise<Logger> {
  const destination =
    config.log.format === "json"
      ? pino.destination(2)
      : (await import("pino-pretty")).default({ destination: 2, colorize: process.stderr.isTTY, sync: true });
  const base = pino({ level: config.log.level, base: undefined }, destination);
  const at = (level: "debug" | "info" | "warn" | "error") => (message: string, fields?: Record<string, unknown>) =>
    fields ? base[level](fields, message) : base[level](message);
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/**
 * A `node:http` request listener for the registry, for embedding it in another server. With
 * `basePath: "/npm"` it answers under `/npm/...` and writes links that include the prefix.
 */
export function createNodeListener(registry: Registry): (req: IncomingMessage, res: ServerResponse) => void {
  const forwardedFor = (req: { headers: IncomingMessage["headers"] }) => {
    const value = req.headers["x-forwarded-for"];
    return Array.isArray(value) ? value.join(", ") : value;
  };
  const viaFetch = getRequestListener((request, env) =>
    registry.fetch(request, {
      clientIp: registry.clientIp(env.incoming.socket.remoteAddress, forwardedFor(env.incoming)),
    }),
  );
  const { metrics } = registry.services;
  return (req, res) => {
    const started = performance.now();
    const fast = registry.fastRead({
      method: req.method ?? "GET",
      url: req.url ?? "/",
      origin: `http://${req.headers.host ?? "localhost"}`,
      header: (name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value.join(", ") : value;
      },
      clientIp: () => registry.clientIp(req.socket.remoteAddress, forwardedFor(req)),
      connection: req.socket,
    });
    if (!fast) return void viaFetch(req, res);
    res.writeHead(fast.status, fast.headers);
    res.end(fast.body ?? undefined);
    metrics.observeFastRead(req.method ?? "GET", fast.route, fast.status, (performance.now() - started) / 1000);
  };
}

export interface RunningRegistry {
  url: string;
  /** The `node:http` server; `undefined` on Bun, which serves with `Bun.serve`. */
  server: Server | undefined;
  registry: Registry;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

export interface StartOptions {
  storage?: StorageDriver;
  logger?: Logger;
  basePath?: string;
  onListening?(url: string): void;
  /** Install SIGINT/SIGTERM handlers that shut down gracefully and exit. Default true. */
  handleSignals?: boolean;
}

/**
 * The config with every `"secret:<name>"` value read from the secrets vault (@fw/secrets, loaded only
 * when the config has such values): the vault folder `secrets.vault`, else the registry's storage. A
 * missing secret is an error naming the config path, so the server does not start half-configured.
 */
export async function resolveConfigSecrets(config: FwConfig): Promise<FwConfig> {
  if (!JSON.stringify(config).includes('"secret:')) return config;
  const { defaultProviders, findSecretReferences, operatorIdentity, resolveSecretReferences, SecretsVault } =
    await import("@fw/secrets");
  if (findSecretReferences(config, "").length === 0) return config;
  let storage: StorageDriver;
  if (config.secrets?.vault !== undefined) {
    storage = fsDriver({ root: config.secrets.vault });
  } else {
    const inStorage = findSecretReferences(config.storage, "storage");
    if (inStorage.length > 0) {
      throw new Error(
        `${inStorage.map((r) => r.path).join(", ")} refer to secrets, which cannot be kept in the storage they unlock: set secrets.vault to a folder holding the vault (fw secrets --vault <dir>)`,
      );
    }
    storage = await storageFromConfig(config);
  }
  const vault = new SecretsVault({ storage, masterKeys: defaultProviders(), identity: operatorIdentity("fw-server") });
  try {
    return await resolveSecretReferences(config, vault);
  } finally {
    await storage.dispose?.();
  }
}

interface Listening {
  url: string;
  server: Server | undefined;
  /** Stops accepting connections and resolves once in-flight requests are answered. */
  stop(): Promise<void>;
}

async function listenWithNode(registry: Registry, config: FwConfig, basePath: string): Promise<Listening> {
  const server = createServer(createNodeListener(registry));
  // Cached reads on connections that have sent nothing else are answered before node:http parses them.
  const front = frontServer(server, {
    fastRead: (request) => registry.fastRead(request),
    fetch: (request, clientIp) => registry.fetch(request, { clientIp }),
    onError: (error) => registry.services.logger.error("could not answer a request", { error: String(error) }),
    clientIp: (address, forwardedFor) => registry.clientIp(address, forwardedFor),
    observe: (method, route, status, seconds) =>
      registry.services.metrics.observeFastRead(method, route, status, seconds),
    keepAliveTimeoutMs: 65_000,
    headersTimeoutMs: 66_000,
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 10 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const stop = () =>
    new Promise<void>((resolve) => {
      // Keep-alive connections that finish their in-flight response become idle afterwards; close
      // them as they do instead of waiting out the keep-alive timeout.
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      server.close(() => {
        clearInterval(sweep);
        resolve();
      });
      server.closeIdleConnections();
      front.closeAll();
    });
  return { url: `http://${host}:${address.port}${basePath}`, server, stop };
}

/**
 * On Bun: `Bun.serve`, which answers several times more small requests per second than Bun's `node:http`
 * (and Node's). Body size stays fw's to enforce (an npm-style 413), so Bun's own cap is lifted.
 */
function listenWithBun(registry: Registry, config: FwConfig, basePath: string): Listening {
  const serve = bunServe() as NonNullable<ReturnType<typeof bunServe>>;
  const server = serve({
    hostname: config.listen.host,
    port: config.listen.port,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: BUN_IDLE_TIMEOUT_SECONDS,
    development: false,
    fetch: createBunFetch(registry),
    error: (error) => {
      registry.services.logger.error("unhandled error", { error: error.message });
      return Response.json({ error: "internal server error" }, { status: 500 });
    },
  });
  const host = config.listen.host.includes(":") ? `[${config.listen.host}]` : config.listen.host;
  return {
    url: `http://${host}:${server.port}${basePath}`,
    server: undefined,
    stop: async () => void (await server.stop(false)),
  };
}

/** Starts the registry on `config.listen` (port 0 picks a free port) and resolves when it listens. */
export async function startRegistry(input: FwConfig, options: StartOptions = {}): Promise<RunningRegistry> {
  const config = await resolveConfigSecrets(input);
  const logger = options.logger ?? (await createLogger(config));
  const storage = options.storage ?? (await storageFromConfig(config));
  const registry = createRegistry(config, {
    storage,
    logger,
    metrics: new Metrics({ processMetrics: true }),
    ...(options.basePath && { basePath: options.basePath }),
  });
  const listening = bunServe()
    ? listenWithBun(registry, config, options.basePath ?? "")
    : await listenWithNode(registry, config, options.basePath ?? "");
  const { url, server } = listening;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= listening
      .stop()
      .then(() => registry.close())
      .then(() => storage.dispose?.());
    return closing;
  };
  if (options.handleSignals ?? true) {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info("shutting down", { signal });
      const force = setTimeout(() => process.exit(1), 30_000);
      force.unref();
      void close().then(() => process.exit(0));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }
  options.onListening?.(url);
  logger.info("fw registry listening", { url, storage: config.storage.driver });
  return { url, server, registry, close };
}
