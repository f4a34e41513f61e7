import type { Hono } from "hono";
import semver from "semver";
import {
  type AppContext,
  type AppEnv,
  authorizeRead,
  authorizeWrite,
  baseUrl,
  identity,
  json,
  readDecision,
  record,
  type Services,
} from "../context.js";
import { readJsonBody } from "../http/body.js";
import { RegistryError } from "../http/errors.js";
import { heldBytesResponse } from "../http/held.js";
import { assertReadableName, parsePackagePath, tarballVersion } from "../npm/names.js";
import { abbreviatedDocument, fullDocument, type Packument, publicVersion } from "../npm/packument.js";
import type { PackumentCache, Rendered } from "../services/cache.js";
import { own } from "../services/packages.js";

const ABBREVIATED = "application/vnd.npm.install-v1+json";

type Encoding = "br" | "gzip" | undefined;

interface Accepted {
  preferred: Encoding;
  gzip: boolean;
}

/** Clients send a handful of distinct Accept-Encoding values: each is parsed once. */
const acceptedByHeader = new Map<string, Accepted>();
const ACCEPTS_NOTHING: Accepted = { preferred: undefined, gzip: false };

function acceptedEncodings(header: string | undefined): Accepted {
  if (!header) return ACCEPTS_NOTHING;
  let accepted = acceptedByHeader.get(header);
  if (accepted === undefined) {
    accepted = parseAcceptEncoding(header);
    if (acceptedByHeader.size >= 256) acceptedByHeader.clear();
    acceptedByHeader.set(header, accepted);
  }
  return accepted;
}

function parseAcceptEncoding(header: string): Accepted {
  const accepted = new Map<string, number>();
  for (const part of header.split(",")) {
    const [token, ...params] = part.trim().toLowerCase().split(";");
    const q = params.find((p) => p.trim().startsWith("q="));
    accepted.set(token?.trim() ?? "", q ? Number(q.trim().slice(2)) : 1);
  }
  const gzip = (accepted.get("gzip") ?? 0) > 0 || (accepted.get("*") ?? 0) > 0;
  if ((accepted.get("br") ?? 0) > 0) return { preferred: "br", gzip };
  return { preferred: gzip ? "gzip" : undefined, gzip };
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim().replace(/^W\//, "");
    return t === etag || t === "*";
  });
}

/** A response as plain parts, so the Node fast path can write it without building Web objects. */
export interface ResponseParts {
  status: number;
  /** Shared between responses: copy before adding to them. */
  headers: Readonly<Record<string, string>>;
  body: Uint8Array | null;
}

/**
 * Prepared bytes with ETag/304 and content negotiation: the hot path of every install. The headers of
 * each answer are built once per form and shared (read-only: a caller adding one copies them first).
 */
function renderedParts(
  cache: PackumentCache,
  name: string,
  rendered: Rendered,
  contentType: string,
  request: { method: string; ifNoneMatch: string | undefined; acceptEncoding: string | undefined },
): FastReadParts {
  if (etagMatches(request.ifNoneMatch, rendered.etag)) {
    return { status: 304, headers: formHeaders(rendered, contentType, "304"), body: null, route: "packument" };
  }
  const accepted = acceptedEncodings(request.acceptEncoding);
  // A form kept only as gzip (a large document) is not recompressed as brotli for clients that take gzip too.
  const encoding =
    accepted.preferred === "br" && accepted.gzip && !rendered.br && !rendered.json ? "gzip" : accepted.preferred;
  const body = encoding ? cache.compressed(name, rendered, encoding) : cache.identity(rendered);
  return {
    status: 200,
    headers: formHeaders(rendered, contentType, encoding ?? "identity", body.byteLength),
    body: request.method === "HEAD" ? null : body,
    route: "packument",
  };
}

function formHeaders(
  rendered: Rendered,
  contentType: string,
  variant: "304" | "identity" | "gzip" | "br",
  length?: number,
): Readonly<Record<string, string>> {
  // A form has one content type and one body per encoding, so the encoding is the whole key.
  rendered.headers ??= {};
  let headers = rendered.headers[variant];
  if (!headers) {
    headers = {
      "content-type": contentType,
      etag: rendered.etag,
      vary: "Accept, Accept-Encoding",
      "cache-control": "no-cache",
      ...(variant === "gzip" || variant === "br" ? { "content-encoding": variant } : {}),
      ...(length !== undefined && { "content-length": String(length) }),
    };
    rendered.headers[variant] = headers;
  }
  return headers;
}

type View = (doc: Packument) => unknown;
const views = new Map<string, View>();

/** The function rendering one variant ("a|<base>" or "f|<base>"), made once per variant. */
function buildView(abbreviated: boolean, base: string, variant: string): View {
  let view = views.get(variant);
  if (!view) {
    view = (doc: Packument) => (abbreviated ? abbreviatedDocument(doc, base) : fullDocument(doc, base));
    if (views.size >= 64) views.clear();
    views.set(variant, view);
  }
  return view;
}

async function packument(c: AppContext, services: Services, name: string): Promise<Response> {
  authorizeRead(c, services, name, `package "${name}" not found`);
  const base = baseUrl(c, services);
  if (c.req.query("write") === "true") {
    // Read-modify-write flows (deprecate, unpublish, owner) need the current revision, not a cached one.
    services.cache.invalidate(name);
    const doc = await services.packages.read(name);
    if (!doc) throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
    return json(fullDocument(doc, base));
  }
  const abbreviated = (c.req.header("accept") ?? "").includes(ABBREVIATED);
  const variant = `${abbreviated ? "a" : "f"}|${base}`;
  let cache = services.cache;
  let rendered = await cache.render(name, variant, buildView(abbreviated, base, variant));
  let notice: string | undefined;
  if (!rendered && services.uplinks.proxies(name)) {
    // Not hosted (the uplinks check again: an unpublished hosted name stays reserved): an upstream's copy.
    const proxied = await services.uplinks.render(name, variant, buildView(abbreviated, base, variant));
    if (proxied) {
      cache = services.uplinks.cache;
      rendered = proxied.rendered;
      notice = proxied.notice;
    }
  }
  if (!rendered) throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
  const parts = renderedParts(cache, name, rendered, abbreviated ? ABBREVIATED : "application/json", {
    method: c.req.method,
    ifNoneMatch: c.req.header("if-none-match"),
    acceptEncoding: c.req.header("accept-encoding"),
  });
  if (notice) {
    // npm prints this header as an `npm notice` line (npm-registry-fetch's check-response.js), but only
    // for responses its cache does not store (make-fetch-happen marks stored ones x-local-cache): a
    // fallback copy is not worth keeping anyway, so the next install asks again.
    parts.headers = { ...parts.headers, "npm-notice": notice, "cache-control": "no-store" };
  }
  const init = { status: parts.status, headers: parts.headers };
  return parts.body ? heldBytesResponse(parts.body, init) : new Response(null, init);
}

export interface FastReadRequest {
  method: string;
  /** Path and query as received, e.g. `/@acme%2fwidget`. */
  url: string;
  /** `http://host[:port]` of the request, for links when no `publicUrl` is configured. */
  origin: string;
  header(name: string): string | undefined;
  /**
   * The client's address, or a function computing it: asked only for a token restricted to IP ranges
   * (finding the address costs more than the rest of a cached read on Bun).
   */
  clientIp?: string | (() => string | undefined);
  /**
   * An object that lives as long as the client's connection (the adapter's socket), when the adapter
   * has one: the token's hash is remembered for the next request on the same connection.
   */
  connection?: object;
}

// Only plain package paths: anything with other escapes, a query or more segments takes the full route.
const PACKUMENT_PATH = /^\/((?:@[a-z0-9][\w.~-]*(?:\/|%2[fF]))?[a-z0-9_][\w.~-]*)$/;
const TARBALL_PATH = /^\/((?:@[a-z0-9][\w.~-]*(?:\/|%2[fF]))?[a-z0-9_][\w.~-]*)\/-\/([\w~+-][\w.~+-]*\.tgz)$/;

/** What the fast path answered, so adapters count it under the route the full path would have used. */
export type FastReadParts = ResponseParts & { route: "packument" | "tarball" };

/**
 * Answers packument and tarball GETs synchronously when everything they need is already in memory
 * (document fresh, token known, tarball cached); `undefined` sends the request down the normal async
 * route, which gives the same answer. It skips building Web Request/Response objects, which on Node
 * costs more than the rest of the request.
 */
export function createFastRead(services: Services): (request: FastReadRequest) => FastReadParts | undefined {
  /** The identity behind the request's token, `null` when anonymous, `undefined` to take the full route. */
  const reader = (request: FastReadRequest, name: string) => {
    const authorization = request.header("authorization");
    let who: ReturnType<typeof services.users.cachedBearer> | null = null;
    if (authorization) {
      who = services.users.cachedBearer(authorization, request.clientIp, request.connection);
      if (!who) return undefined;
    }
    // The same read authorisation as the full route, decided synchronously (the policy is pure);
    // any refusal goes down the full route, which produces the error.
    // Without rules or token limits the built-in default lets everyone read: skip the evaluation.
    const limited =
      services.policy.rules.length > 0 || (who?.token?.packages?.length ?? 0) + (who?.token?.scopes?.length ?? 0) > 0;
    if (limited && !readDecision(services.policy, who ?? undefined, name).allowed) return undefined;
    return who;
  };

  const packumentRead = (request: FastReadRequest, name: string): FastReadParts | undefined => {
    const base = services.config.publicUrl ?? request.origin + services.basePath;
    const abbreviated = (request.header("accept") ?? "").includes(ABBREVIATED);
    const variant = `${abbreviated ? "a" : "f"}|${base}`;
    let cache = services.cache;
    let rendered = cache.renderFresh(name, variant, buildView(abbreviated, base, variant));
    // A fresh upstream copy, only once the hosted cache is sure no document (even an unpublished one) exists.
    if (rendered === null && services.uplinks.enabled && cache.knownAbsent(name)) {
      cache = services.uplinks.cache;
      rendered = services.uplinks.renderFresh(name, variant, buildView(abbreviated, base, variant));
    }
    if (!rendered) return undefined;
    return renderedParts(cache, name, rendered, abbreviated ? ABBREVIATED : "application/json", {
      method: request.method,
      ifNoneMatch: request.header("if-none-match"),
      acceptEncoding: request.header("accept-encoding"),
    });
  };

  const tarballRead = (request: FastReadRequest, name: string, filename: string): FastReadParts | undefined => {
    const doc = services.cache.docFresh(name);
    if (!doc || !own(doc.versions, tarballVersion(name, filename))) return undefined;
    const content = services.packages.peekTarball(name, filename);
    if (!content) return undefined;
    let headers = tarballHeadersOf.get(content);
    if (!headers) {
      headers = tarballHeaders(content);
      tarballHeadersOf.set(content, headers);
    }
    if (etagMatches(request.header("if-none-match"), headers.etag as string)) {
      return { status: 304, headers, body: null, route: "tarball" };
    }
    return { status: 200, headers, body: request.method === "HEAD" ? null : content.body, route: "tarball" };
  };

  return (request) => {
    if (request.method !== "GET" && request.method !== "HEAD") return undefined;
    let path = request.url;
    if (services.basePath) {
      if (!path.startsWith(`${services.basePath}/`)) return undefined;
      path = path.slice(services.basePath.length);
    }
    const packumentMatch = PACKUMENT_PATH.exec(path);
    if (packumentMatch) {
      const name = (packumentMatch[1] as string).replace(/%2f/i, "/");
      return reader(request, name) === undefined ? undefined : packumentRead(request, name);
    }
    const tarballMatch = TARBALL_PATH.exec(path);
    if (tarballMatch) {
      const name = (tarballMatch[1] as string).replace(/%2f/i, "/");
      return reader(request, name) === undefined ? undefined : tarballRead(request, name, tarballMatch[2] as string);
    }
    return undefined;
  };
}

function resolveSpec(doc: Packument, spec: string): string | undefined {
  // Own properties only: a spec such as "constructor" must not find what every object inherits.
  if (own(doc.versions, spec)) return spec;
  const tagged = own(doc["dist-tags"], spec);
  if (tagged && own(doc.versions, tagged)) return tagged;
  if (semver.validRange(spec)) {
    const latest = doc["dist-tags"].latest;
    if (latest && semver.satisfies(latest, spec)) return latest;
    return semver.maxSatisfying(Object.keys(doc.versions), spec) ?? undefined;
  }
  return undefined;
}

async function tarball(c: AppContext, services: Services, name: string, filename: string): Promise<Response> {
  authorizeRead(c, services, name, `tarball ${filename} not found`);
  const published = await services.packages.hasVersion(name, tarballVersion(name, filename));
  if (published === null && services.uplinks.proxies(name)) {
    const proxied = await services.uplinks.tarball(name, filename);
    if (!proxied) throw new RegistryError("E_NOT_FOUND", `tarball ${filename} not found`);
    return tarballResponse(c, proxied);
  }
  if (!published) throw new RegistryError("E_NOT_FOUND", `tarball ${filename} not found`);
  const content = await services.packages.tarball(name, filename);
  if (!content) throw new RegistryError("E_NOT_FOUND", `tarball ${filename} not found`);
  return tarballResponse(c, content);
}

/** The headers of tarballs held in memory, made once per tarball. */
const tarballHeadersOf = new WeakMap<object, Readonly<Record<string, string>>>();

function tarballHeaders(content: { etag?: string; size?: number }): Record<string, string> {
  return {
    "content-type": "application/octet-stream",
    ...(content.size !== undefined && { "content-length": String(content.size) }),
    ...(content.etag !== undefined && { etag: `"${content.etag}"` }),
    "cache-control": "public, max-age=31536000, immutable",
  };
}

/** A tarball with ETag/304 and HEAD; a tarball still streaming from an uplink has no ETag (and maybe no length) yet. */
async function tarballResponse(
  c: AppContext,
  content: { etag?: string; size?: number; body: Uint8Array | ReadableStream<Uint8Array> },
): Promise<Response> {
  const headers = tarballHeaders(content);
  const matches = headers.etag !== undefined && etagMatches(c.req.header("if-none-match"), headers.etag);
  if (matches || c.req.method === "HEAD") {
    if (content.body instanceof ReadableStream) await content.body.cancel();
    return new Response(null, { status: matches ? 304 : 200, headers });
  }
  return content.body instanceof Uint8Array
    ? heldBytesResponse(content.body, { status: 200, headers })
    : new Response(content.body, { status: 200, headers });
}

/** Package documents, versions and tarballs: `/<name>`, `/@scope/name`, `/@scope%2fname`. */
export function packageRoutes(app: Hono<AppEnv>, services: Services): void {
  const { packages } = services;

  const readTags = async (c: AppContext, name: string) => {
    authorizeRead(c, services, name, `package "${name}" not found`);
    if (!(await packages.read(name)) && services.uplinks.proxies(name)) {
      const proxied = await services.uplinks.document(name);
      if (proxied) return json(proxied.doc["dist-tags"]);
    }
    return json(await packages.tags(name));
  };
  app.get("/-/package/:scope{@[^/]+}/:pkg/dist-tags", (c) =>
    readTags(c, `${c.req.param("scope")}/${c.req.param("pkg")}`),
  );
  // Hono hands over path parameters already percent-decoded; decoding again breaks on a literal "%".
  app.get("/-/package/:name/dist-tags", (c) => readTags(c, c.req.param("name")));

  /** The stored maintainers' names, for the ownership step of the policy. */
  const maintainersOf = async (name: string) => ((await packages.read(name))?.maintainers ?? []).map((m) => m.name);

  const tagName = (c: AppContext) => {
    const scope = c.req.param("scope");
    const pkg = c.req.param("pkg") ?? c.req.param("name");
    return scope ? `${scope}/${pkg}` : (pkg ?? "");
  };
  for (const path of ["/-/package/:scope{@[^/]+}/:pkg/dist-tags/:tag", "/-/package/:name/dist-tags/:tag"]) {
    const setTag = async (c: AppContext) => {
      const name = tagName(c);
      parsePackagePath(`/${name}`);
      await authorizeWrite(c, services, "publish", name, await maintainersOf(name));
      const tag = c.req.param("tag") ?? "";
      const tags = await packages.setTag(identity(c), name, tag, await readJsonBody(c));
      await record(c, services, { action: "dist-tag", package: name, details: { tag, set: tags[tag] ?? null } });
      return json(tags, 201);
    };
    app.put(path, setTag);
    app.post(path, setTag);
    app.delete(path, async (c) => {
      const name = tagName(c);
      parsePackagePath(`/${name}`);
      await authorizeWrite(c, services, "publish", name, await maintainersOf(name));
      const tag = c.req.param("tag") ?? "";
      const tags = await packages.removeTag(identity(c), name, tag);
      await record(c, services, { action: "dist-tag", package: name, details: { tag, set: null } });
      return json(tags);
    });
  }

  app.get("/-/npm/v1/attestations/:spec{.+}", async (c) => {
    const spec = c.req.param("spec");
    const at = spec.lastIndexOf("@");
    const name = spec.slice(0, at);
    const version = spec.slice(at + 1);
    if (at <= 0) throw new RegistryError("E_NOT_FOUND", "no attestations for this version");
    assertReadableName(name);
    // The package's read rules apply, and only versions it still has are answered for.
    authorizeRead(c, services, name, "no attestations for this version");
    const doc = await packages.read(name);
    const bundle = doc && own(doc.versions, version) ? await packages.attestation(name, version) : null;
    if (!bundle) throw new RegistryError("E_NOT_FOUND", "no attestations for this version");
    return json({ attestations: [{ predicateType: "https://slsa.dev/provenance/v1", bundle: JSON.parse(bundle) }] });
  });

  app.on(["GET", "HEAD"], "*", async (c, next) => {
    const parsed = parsePackagePath(c.req.path.slice(services.basePath.length) || "/");
    if (!parsed) return next();
    const { name, target } = parsed;
    switch (target.kind) {
      case "packument":
        return packument(c, services, name);
      case "version": {
        authorizeRead(c, services, name, `version "${target.spec.slice(0, 60)}" of "${name}" not found`);
        let doc = await packages.read(name);
        if (!doc && services.uplinks.proxies(name)) doc = (await services.uplinks.document(name))?.doc ?? null;
        const version = doc && resolveSpec(doc, target.spec);
        if (!doc || !version)
          throw new RegistryError("E_NOT_FOUND", `version "${target.spec.slice(0, 60)}" of "${name}" not found`);
        return json(publicVersion(doc.versions[version] as Packument["versions"][string], baseUrl(c, services)));
      }
      case "tarball":
        return tarball(c, services, name, target.filename);
      default:
        throw new RegistryError("E_NOT_FOUND", "not found");
    }
  });

  app.put("*", async (c, next) => {
    const parsed = parsePackagePath(c.req.path.slice(services.basePath.length) || "/");
    if (!parsed) return next();
    const { name, target } = parsed;
    if (target.kind !== "packument" && target.kind !== "revision") throw new RegistryError("E_NOT_FOUND", "not found");
    const body = await readJsonBody(c);
    const stored = await packages.read(name);
    const maintainers = (stored?.maintainers ?? []).map((m) => m.name);
    const hasAttachments =
      typeof body === "object" &&
      body !== null &&
      "_attachments" in body &&
      (body as { _attachments?: unknown })._attachments;
    if (hasAttachments && target.kind === "packument") {
      await authorizeWrite(c, services, "publish", name, maintainers, { newVersion: true });
      const who = identity(c);
      const published = await packages.publish(who, name, body, who?.email);
      const version = Object.keys((body as { versions?: object }).versions ?? {})[0];
      await record(c, services, {
        action: "publish",
        package: name,
        ...(version !== undefined && published.versions[version] && { version }),
      });
      return json({ ok: true, id: name, success: true }, 201);
    }
    // npm unpublish of one version PUTs the document without it (libnpmpublish's unpublish).
    const versions = (body as { versions?: unknown } | null)?.versions;
    const removes =
      stored !== null &&
      typeof versions === "object" &&
      versions !== null &&
      Object.keys(stored.versions).some((v) => !(v in versions));
    await authorizeWrite(c, services, removes ? "unpublish" : "publish", name, maintainers);
    const doc = await packages.updateMetadata(
      identity(c),
      name,
      body,
      target.kind === "revision" ? target.rev : undefined,
    );
    const before = maintainers.join(",");
    const after = (doc?.maintainers ?? []).map((m) => m.name).join(",");
    if (removes) await record(c, services, { action: "unpublish", package: name, details: { kind: "versions" } });
    else if (doc && before !== after)
      await record(c, services, { action: "owner", package: name, details: { before, after } });
    return json({ ok: true, id: name, rev: doc?._rev }, 201);
  });

  app.delete("*", async (c, next) => {
    const parsed = parsePackagePath(c.req.path.slice(services.basePath.length) || "/");
    if (!parsed) return next();
    const { name, target } = parsed;
    if (target.kind === "revision" || target.kind === "tarball-revision") {
      await authorizeWrite(c, services, "unpublish", name, await maintainersOf(name));
    }
    if (target.kind === "revision") {
      await packages.unpublishPackage(identity(c), name, target.rev);
      await record(c, services, { action: "unpublish", package: name, details: { kind: "package" } });
      return json({ ok: true });
    }
    if (target.kind === "tarball-revision") {
      await packages.deleteTarball(identity(c), name, target.filename);
      return json({ ok: true });
    }
    throw new RegistryError("E_NOT_FOUND", "not found");
  });
}
