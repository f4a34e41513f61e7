import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import ini from "ini";

/** Where the client's registry and token came from, for messages (never the token itself). */
export interface ClientSources {
  registry: "--registry" | "FW_REGISTRY" | "config";
  token: "--token" | "FW_TOKEN" | ".npmrc" | "none";
}

export interface ClientOptions {
  /** `--registry`: wins over FW_REGISTRY and the config. */
  registry?: string;
  /** `--token`: wins over FW_TOKEN and .npmrc. */
  token?: string;
  /** `--config`: the fw config whose publicUrl (else listen address) is the default registry. */
  config?: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Where the project `.npmrc` search starts. Default `process.cwd()`. */
  cwd?: string;
  /** Default the global fetch; tests may pass their own. */
  fetch?: typeof fetch;
}

/** A failed registry request: the registry's own `{"error": …}` message, the status and the request. */
export class RegistryRequestError extends Error {
  readonly code: string;
  constructor(
    message: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "RegistryRequestError";
    this.code = status === 0 ? "E_NETWORK" : `E${status}`;
  }
}

/** `http://127.0.0.1:4873/npm/` → `//127.0.0.1:4873/npm/`, the key prefix npm uses in .npmrc ("nerf dart"). */
function nerfDart(url: URL): string {
  return `//${url.host}${url.pathname.endsWith("/") ? url.pathname : `${url.pathname}/`}`;
}

/** `${VAR}` in .npmrc values, as npm expands them (a missing variable is an error in npm; here it is empty). */
function expand(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/(\\*)\$\{([^${}]+)\}/g, (whole, slashes: string, name: string) =>
    slashes.length % 2 ? whole.slice(1) : `${slashes}${env[name] ?? ""}`,
  );
}

async function readIni(path: string): Promise<Record<string, unknown> | undefined> {
  try {
    return ini.parse(await readFile(path, "utf8"));
  } catch (error) {
    if (error instanceof Error && "code" in error && (error.code === "ENOENT" || error.code === "EISDIR"))
      return undefined;
    throw new Error(`cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
}

/** npm's project root: the nearest folder at or above `cwd` with a package.json or node_modules. */
async function projectRoot(cwd: string): Promise<string> {
  let dir = resolve(cwd);
  for (;;) {
    for (const marker of ["package.json", "node_modules"]) {
      if (
        await stat(join(dir, marker)).then(
          () => true,
          () => false,
        )
      )
        return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) return resolve(cwd);
    dir = parent;
  }
}

/**
 * The `_authToken` npm would send to `registry`, from the project's .npmrc, then the user's
 * (`NPM_CONFIG_USERCONFIG`, else `~/.npmrc`), as npm reads them: the key for the registry's path,
 * then for each parent path (npm-registry-fetch's `getAuth` walks up the same way).
 */
export async function npmrcToken(registry: URL, env: NodeJS.ProcessEnv, cwd: string): Promise<string | undefined> {
  const userConfig = env.NPM_CONFIG_USERCONFIG || env.npm_config_userconfig || join(homedir(), ".npmrc");
  const files = [join(await projectRoot(cwd), ".npmrc"), userConfig];
  const keys: string[] = [];
  for (let path = nerfDart(registry); path.startsWith("//"); ) {
    keys.push(`${path}:_authToken`);
    const trimmed = path.replace(/[^/]*\/$/, "");
    if (trimmed === path || trimmed === "//") break;
    path = trimmed;
  }
  for (const file of files) {
    const values = await readIni(file);
    if (!values) continue;
    for (const key of keys) {
      const value = values[key];
      if (typeof value === "string" && value !== "") {
        const token = expand(value, env);
        if (token !== "") return token;
      }
    }
  }
  return undefined;
}

/** The registry a started `fw registry start` serves: config publicUrl, else its listen address. */
async function configuredRegistry(configFile: string | undefined): Promise<string> {
  const { loadConfig } = await import("@fw/server");
  const { config } = await loadConfig({ file: configFile, overrides: {} });
  if (config.publicUrl) return config.publicUrl;
  const { host, port } = config.listen;
  const reachable = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${reachable.includes(":") ? `[${reachable}]` : reachable}:${port}/`;
}

/** A package name in a registry path: `@scope/name` → `@scope%2fname`, as npm sends it. */
export function escapePackageName(name: string): string {
  return name.startsWith("@") ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name);
}

/**
 * The one way `fw` client commands talk to a registry, as npm would: JSON in and out, a bearer token
 * when there is one, and npm-style error bodies (`{"error": "…"}`) turned into one-line errors.
 *
 * ```ts
 * const client = await RegistryClient.create({ registry: flags.registry, token: flags.token });
 * const doc = await client.getJson<Packument>(`/${escapePackageName("@acme/web")}`); // null on 404
 * await client.putJson(`/-/package/${escapePackageName("@acme/web")}/dist-tags/latest`, "1.2.3");
 * ```
 */
export class RegistryClient {
  /** The registry's base URL, ending with `/`. */
  readonly registry: URL;
  readonly sources: ClientSources;
  readonly #token: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(registry: string | URL, token: string | undefined, sources: ClientSources, fetcher = fetch) {
    const url = new URL(registry);
    if (url.protocol !== "http:" && url.protocol !== "https:")
      throw new Error(`registry "${url.href}" is not an http(s) URL`);
    if (!url.pathname.endsWith("/")) url.pathname += "/";
    this.registry = url;
    this.sources = sources;
    this.#token = token;
    this.#fetch = fetcher;
  }

  /**
   * Resolves the registry (`--registry`, else FW_REGISTRY, else the fw config's publicUrl or
   * listen address) and the token (`--token`, else FW_TOKEN, else the registry's `_authToken` in
   * the project or user .npmrc).
   */
  static async create(options: ClientOptions = {}): Promise<RegistryClient> {
    const env = options.env ?? process.env;
    let registry: string;
    let registrySource: ClientSources["registry"];
    if (options.registry) [registry, registrySource] = [options.registry, "--registry"];
    else if (env.FW_REGISTRY) [registry, registrySource] = [env.FW_REGISTRY, "FW_REGISTRY"];
    else [registry, registrySource] = [await configuredRegistry(options.config), "config"];
    let url: URL;
    try {
      url = new URL(registry);
    } catch (error) {
      throw new Error(`registry "${registry}" (from ${registrySource}) is not a URL`, { cause: error });
    }
    let token: string | undefined;
    let tokenSource: ClientSources["token"] = "none";
    if (options.token) [token, tokenSource] = [options.token, "--token"];
    else if (env.FW_TOKEN) [token, tokenSource] = [env.FW_TOKEN, "FW_TOKEN"];
    else {
      token = await npmrcToken(url, env, options.cwd ?? process.cwd());
      if (token !== undefined) tokenSource = ".npmrc";
    }
    return new RegistryClient(url, token, { registry: registrySource, token: tokenSource }, options.fetch);
  }

  /** Whether requests carry a token. */
  get authenticated(): boolean {
    return this.#token !== undefined;
  }

  /** `path` (e.g. `/-/whoami`, leading slash optional) under the registry URL, keeping its path prefix. */
  url(path: string): URL {
    return new URL(path.replace(/^\//, ""), this.registry);
  }

  /**
   * One request; resolves with the response when it is 2xx (or 404 with `allowMissing`), throws a
   * {@link RegistryRequestError} with the registry's message otherwise.
   */
  async request(
    method: string,
    path: string,
    options: { body?: unknown; allowMissing?: boolean } = {},
  ): Promise<Response> {
    const url = this.url(path);
    const headers: Record<string, string> = { accept: "application/json" };
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await this.#fetch(url, {
        method,
        headers,
        ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
      });
    } catch (error) {
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new RegistryRequestError(`cannot reach the registry at ${this.registry.href}: ${reason}`, 0, {
        cause: error,
      });
    }
    if (response.ok || (options.allowMissing && response.status === 404)) return response;
    const text = await response.text();
    let message = text.trim().slice(0, 300);
    try {
      const body = JSON.parse(text) as { error?: unknown; reason?: unknown; message?: unknown };
      const said = body.error ?? body.reason ?? body.message;
      if (typeof said === "string" && said !== "") message = said;
    } catch {
      // Not JSON (a proxy's HTML page, say): the text itself, shortened, is the best there is.
    }
    const hint =
      response.status === 401 && this.#token === undefined ? "; log in (npm login) or pass --token / FW_TOKEN" : "";
    throw new RegistryRequestError(
      `${message || response.statusText}${hint} (${response.status} from ${method} ${url.href})`,
      response.status,
    );
  }

  /** GET JSON; `null` when the registry answers 404 ("missing is a value, not an error"). */
  async getJson<T>(path: string): Promise<T | null> {
    const response = await this.request("GET", path, { allowMissing: true });
    if (response.status === 404) {
      await response.body?.cancel();
      return null;
    }
    return (await response.json()) as T;
  }

  /** PUT a JSON body; resolves with the JSON answer. */
  async putJson<T>(path: string, body: unknown): Promise<T> {
    return (await (await this.request("PUT", path, { body })).json()) as T;
  }

  /** DELETE; resolves with the JSON answer. */
  async deleteJson<T>(path: string): Promise<T> {
    return (await (await this.request("DELETE", path)).json()) as T;
  }
}
