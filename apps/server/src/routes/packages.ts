import type { Hono } from "hono";
import semver from "semver";
import { type AppContext, type AppEnv, baseUrl, identity, json, type Services } from "../context.js";
import { readJsonBody } from "../http/body.js";
import { RegistryError } from "../http/errors.js";
import { parsePackagePath, tarballFilename } from "../npm/names.js";
import { abbreviatedDocument, fullDocument, type Packument, publicVersion } from "../npm/packument.js";
import type { Rendered } from "../services/cache.js";

const ABBREVIATED = "application/vnd.npm.install-v1+json";

function preferredEncoding(header: string | undefined): "br" | "gzip" | undefined {
  if (!header) return undefined;
  const accepted = new Map<string, number>();
  for (const part of header.split(",")) {
    const [token, ...params] = part.trim().toLowerCase().split(";");
    const q = params.find((p) => p.trim().startsWith("q="));
    accepted.set(token?.trim() ?? "", q ? Number(q.trim().slice(2)) : 1);
  }
  if ((accepted.get("br") ?? 0) > 0) return "br";
  if ((accepted.get("gzip") ?? 0) > 0 || (accepted.get("*") ?? 0) > 0) return "gzip";
  return undefined;
}

function etagMatches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  return ifNoneMatch.split(",").some((tag) => {
    const t = tag.trim().replace(/^W\//, "");
    return t === etag || t === "*";
  });
}

/** Sends prepared bytes with ETag/304 and content negotiation; the hot path of every install. */
function sendRendered(
  c: AppContext,
  services: Services,
  name: string,
  rendered: Rendered,
  contentType: string,
): Response {
  const headers: Record<string, string> = {
    "content-type": contentType,
    etag: rendered.etag,
    vary: "Accept, Accept-Encoding",
    "cache-control": "no-cache",
  };
  if (etagMatches(c.req.header("if-none-match"), rendered.etag)) return new Response(null, { status: 304, headers });
  const encoding = preferredEncoding(c.req.header("accept-encoding"));
  const body = encoding ? services.cache.compressed(name, rendered, encoding) : rendered.json;
  if (encoding) headers["content-encoding"] = encoding;
  headers["content-length"] = String(body.byteLength);
  return new Response(c.req.method === "HEAD" ? null : (body as Uint8Array<ArrayBuffer>), { status: 200, headers });
}

async function packument(c: AppContext, services: Services, name: string): Promise<Response> {
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
  const rendered = await services.cache.render(name, variant, (doc) => {
    if (Object.keys(doc.versions).length === 0) return null;
    return abbreviated ? abbreviatedDocument(doc, base) : fullDocument(doc, base);
  });
  if (!rendered || rendered.json.byteLength === 4)
    throw new RegistryError("E_NOT_FOUND", `package "${name}" not found`);
  return sendRendered(c, services, name, rendered, abbreviated ? ABBREVIATED : "application/json");
}

function resolveSpec(doc: Packument, spec: string): string | undefined {
  if (doc.versions[spec]) return spec;
  const tagged = doc["dist-tags"][spec];
  if (tagged && doc.versions[tagged]) return tagged;
  if (semver.validRange(spec)) {
    const latest = doc["dist-tags"].latest;
    if (latest && semver.satisfies(latest, spec)) return latest;
    return semver.maxSatisfying(Object.keys(doc.versions), spec) ?? undefined;
  }
  return undefined;
}

async function tarball(c: AppContext, services: Services, name: string, filename: string): Promise<Response> {
  const doc = await services.packages.read(name);
  const version = doc && Object.keys(doc.versions).find((v) => tarballFilename(name, v) === filename);
  if (!doc || !version) throw new RegistryError("E_NOT_FOUND", `tarball ${filename} not found`);
  const etagOf = (etag: string) => `"${etag}"`;
  const object = await services.packages.tarball(name, filename);
  if (!object) throw new RegistryError("E_NOT_FOUND", `tarball ${filename} not found`);
  const headers: Record<string, string> = {
    "content-type": "application/octet-stream",
    "content-length": String(object.size),
    etag: etagOf(object.etag),
    "cache-control": "public, max-age=31536000, immutable",
    "accept-ranges": "bytes",
  };
  if (etagMatches(c.req.header("if-none-match"), headers.etag as string)) {
    await object.body.cancel();
    return new Response(null, { status: 304, headers });
  }
  if (c.req.method === "HEAD") {
    await object.body.cancel();
    return new Response(null, { status: 200, headers });
  }
  return new Response(object.body, { status: 200, headers });
}

/** Package documents, versions and tarballs: `/<name>`, `/@scope/name`, `/@scope%2fname`. */
export function packageRoutes(app: Hono<AppEnv>, services: Services): void {
  const { packages } = services;

  app.get("/-/package/:scope{@[^/]+}/:pkg/dist-tags", async (c) =>
    json(await packages.tags(`${c.req.param("scope")}/${c.req.param("pkg")}`)),
  );
  app.get("/-/package/:name/dist-tags", async (c) =>
    json(await packages.tags(decodeURIComponent(c.req.param("name")))),
  );

  const tagName = (c: AppContext) => {
    const scope = c.req.param("scope");
    const pkg = c.req.param("pkg") ?? c.req.param("name");
    return scope ? `${scope}/${pkg}` : decodeURIComponent(pkg ?? "");
  };
  for (const path of ["/-/package/:scope{@[^/]+}/:pkg/dist-tags/:tag", "/-/package/:name/dist-tags/:tag"]) {
    const setTag = async (c: AppContext) => {
      const name = tagName(c);
      parsePackagePath(`/${name}`);
      return json(
        await packages.setTag(identity(c), name, decodeURIComponent(c.req.param("tag") ?? ""), await readJsonBody(c)),
        201,
      );
    };
    app.put(path, setTag);
    app.post(path, setTag);
    app.delete(path, async (c) => {
      const name = tagName(c);
      parsePackagePath(`/${name}`);
      return json(await packages.removeTag(identity(c), name, decodeURIComponent(c.req.param("tag") ?? "")));
    });
  }

  app.get("/-/npm/v1/attestations/:spec{.+}", async (c) => {
    const spec = decodeURIComponent(c.req.param("spec"));
    const at = spec.lastIndexOf("@");
    const name = spec.slice(0, at);
    const version = spec.slice(at + 1);
    parsePackagePath(`/${name}`);
    const bundle = at > 0 ? await packages.attestation(name, version) : null;
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
        const doc = await packages.read(name);
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
    const hasAttachments =
      typeof body === "object" &&
      body !== null &&
      "_attachments" in body &&
      (body as { _attachments?: unknown })._attachments;
    if (hasAttachments && target.kind === "packument") {
      const who = identity(c);
      const email = who ? (await services.users.getUser(who.name))?.email : undefined;
      await packages.publish(who, name, body, email);
      return json({ ok: true, id: name, success: true }, 201);
    }
    const doc = await packages.updateMetadata(
      identity(c),
      name,
      body,
      target.kind === "revision" ? target.rev : undefined,
    );
    return json({ ok: true, id: name, rev: doc?._rev }, 201);
  });

  app.delete("*", async (c, next) => {
    const parsed = parsePackagePath(c.req.path.slice(services.basePath.length) || "/");
    if (!parsed) return next();
    const { name, target } = parsed;
    if (target.kind === "revision") {
      await packages.unpublishPackage(identity(c), name, target.rev);
      return json({ ok: true });
    }
    if (target.kind === "tarball-revision") {
      await packages.deleteTarball(identity(c), name, target.filename);
      return json({ ok: true });
    }
    throw new RegistryError("E_NOT_FOUND", "not found");
  });
}
