import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PolicyConfig } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { fsDriver } from "@fw/storage-r2/fs";
import { type RunningRegistry, startRegistry } from "../../src/adapters/node.js";
import type { FwConfig } from "../../src/config/index.js";
import type { Logger } from "../../src/context.js";

export interface TestRegistryOptions {
  /** Storage to use instead of a fresh fs folder (e.g. an s3 driver). */
  storage?: StorageDriver;
  maxBodySize?: number;
  signup?: boolean;
  basePath?: string;
  /** The `roles`, `teams` and `packages` sections of the config. */
  access?: PolicyConfig;
  /** Login back-off and rate-limit settings. */
  auth?: Omit<FwConfig["auth"], "signup">;
  /** Any other config sections (publicUrl, trustedPublishing, trustProxy…), set as they are. */
  extra?: Partial<FwConfig>;
}

export interface TestRegistry extends AsyncDisposable {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:40123`. */
  url: string;
  storage: StorageDriver;
  running: RunningRegistry;
  /** Errors the server logged: a 500 in a test shows up here. */
  errors: string[];
  close(): Promise<void>;
}

export function testConfig(
  storagePath: string,
  options: {
    maxBodySize?: number;
    signup?: boolean;
    access?: PolicyConfig;
    auth?: Omit<FwConfig["auth"], "signup">;
  } = {},
): FwConfig {
  return {
    listen: { host: "127.0.0.1", port: 0 },
    storage: { driver: "fs", path: storagePath },
    auth: { signup: options.signup ?? true, ...options.auth },
    limits: { maxBodySize: options.maxBodySize ?? 100 * 1024 * 1024 },
    log: { level: "warn", format: "json" },
    ...(options.access && { access: options.access }),
  };
}

/** A logger that keeps errors (to assert no 500 happened) and stays quiet otherwise. */
export function collectingLogger(errors: string[]): Logger {
  return {
    debug() {},
    info() {},
    warn() {},
    error(message, fields) {
      errors.push(`${message} ${JSON.stringify(fields ?? {})}`);
    },
  };
}

/** Starts the registry on 127.0.0.1 port 0 with its own temp fs storage (unless given another driver). */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), "fw-e2e-storage-"));
  const storage = options.storage ?? fsDriver({ root: dir, fsync: false });
  const errors: string[] = [];
  const running = await startRegistry(
    { ...testConfig(dir, options), ...options.extra },
    {
      storage,
      logger: collectingLogger(errors),
      handleSignals: false,
      ...(options.basePath && { basePath: options.basePath }),
    },
  );
  await running.registry.ready;
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= running
      .close()
      .then(() => rm(dir, { recursive: true, force: true }))
      .then(() => undefined);
    return closed;
  };
  return { url: running.url, storage, running, errors, close, [Symbol.asyncDispose]: close };
}

/** Signs a new user up through `PUT /-/user/org.couchdb.user:<name>` (as `npm adduser` does) and returns the token. */
export async function signUp(
  registry: { fetch(request: Request): Promise<Response> },
  origin: string,
  name: string,
): Promise<string> {
  const response = await registry.fetch(
    new Request(`${origin}/-/user/org.couchdb.user:${name}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name, password: "correct horse battery" }),
    }),
  );
  const { token } = (await response.json()) as { token: string };
  return token;
}
