import type { Hono } from "hono";
import { type AppEnv, identity, json, readDecision, type Services } from "../context.js";
import { RegistryError } from "../http/errors.js";

function count(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined || value === "") return fallback;
  if (!/^\d{1,15}$/.test(value)) throw new RegistryError("E_BAD_REQUEST", `${name} must be a whole number`);
  return Math.min(Number(value), max);
}

/**
 * `GET /-/changes?since=<seq>&limit=<n>`: the change feed in CouchDB `_changes` style, for mirrors and
 * tools that follow the registry. Packages the caller may not read are left out (their sequence numbers
 * still advance `last_seq`, so a follower never asks for them again).
 */
export function changesRoutes(app: Hono<AppEnv>, services: Services): void {
  app.get("/-/changes", async (c) => {
    const feed = services.changes;
    if (!feed) throw new RegistryError("E_NOT_FOUND", "this registry keeps no change feed");
    const since = count(c.req.query("since"), "since", 0, Number.MAX_SAFE_INTEGER);
    const limit = Math.max(1, count(c.req.query("limit"), "limit", 1000, 1000));
    const changes = await feed.since(since, limit);
    const who = identity(c);
    const results = changes
      .filter((change) => readDecision(services.policy, who, change.name).allowed)
      .map((change) => ({
        seq: change.seq,
        id: change.name,
        changes: change.rev ? [{ rev: change.rev }] : [],
        ...(change.deleted && { deleted: true }),
        time: change.time,
      }));
    return json({ results, last_seq: changes.at(-1)?.seq ?? since });
  });
}
