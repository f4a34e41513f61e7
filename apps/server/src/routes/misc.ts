import type { Hono } from "hono";
import { type AppContext, type AppEnv, identity, json, readDecision, requireUser, type Services } from "../context.js";
import { RegistryError } from "../http/errors.js";
import { AUDIT_PATHS, type AuditKind } from "../uplinks/audit.js";
import { forwardedParams, mergeSearch, uplinkWindow } from "../uplinks/search.js";

/** Small endpoints npm calls: ping, search, stars, audit. */
export function miscRoutes(app: Hono<AppEnv>, services: Services): void {
  app.get("/-/ping", () => json({}));

  // Hosted matches first, then the uplinks' (docs/uplinks.md, "Search"); an uplink that fails adds nothing.
  app.get("/-/v1/search", async (c) => {
    const text = c.req.query("text") ?? "";
    if (text.length > 256) throw new RegistryError("E_BAD_REQUEST", "search text is longer than 256 characters");
    const size = Math.min(250, Math.max(1, Number.parseInt(c.req.query("size") ?? "20", 10) || 20));
    const from = Math.max(0, Number.parseInt(c.req.query("from") ?? "0", 10) || 0);
    const who = identity(c);
    const visible = (name: string) => readDecision(services.policy, who, name).allowed;
    const local = services.search.search(text, size, from, visible);
    const upstream = await services.uplinks.search(
      { text, ...uplinkWindow(local, from, size), params: forwardedParams(c.req.query()) },
      visible,
    );
    return json(mergeSearch(local, upstream));
  });

  // `npm stars [user]`: CouchDB view kept for compatibility.
  app.get("/-/_view/starredByUser", (c) => {
    let user = c.req.query("key") ?? "";
    try {
      user = JSON.parse(user) as string;
    } catch {
      // a bare name is accepted too
    }
    if (!user) user = requireUser(c).name;
    const who = identity(c);
    const visible = (name: string) => readDecision(services.policy, who, name).allowed;
    return json({ rows: services.search.starredBy(String(user), visible).map((name) => ({ value: name })) });
  });

  // npm audit: forwarded to an uplink that offers it (without private names), else a clean report.
  // npm sends these bodies gzipped (arborist's audit-report, npm-registry-fetch `gzip: true`).
  const audit = (kind: AuditKind, empty: () => unknown) => async (c: AppContext) => {
    const body = new Uint8Array(await c.req.arrayBuffer());
    const answer = await services.uplinks.audit(kind, body, c.req.header("content-encoding"));
    if (!answer) return json(empty());
    return new Response(answer.body as Uint8Array<ArrayBuffer>, {
      status: answer.status,
      headers: { "content-type": answer.contentType },
    });
  };
  app.post(
    AUDIT_PATHS.bulk,
    audit("bulk", () => ({})),
  );
  app.post(
    AUDIT_PATHS.quick,
    audit("quick", () => ({
      actions: [],
      advisories: {},
      muted: [],
      metadata: {
        vulnerabilities: { info: 0, low: 0, moderate: 0, high: 0, critical: 0 },
        dependencies: 0,
        devDependencies: 0,
        optionalDependencies: 0,
        totalDependencies: 0,
      },
    })),
  );
}
