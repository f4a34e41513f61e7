import { AuditLog } from "@fw/auth";
import { print, printJson } from "../../output.js";
import { openAuth } from "./auth-store.js";

/** `fw registry audit [--since] [--user] [--package] [--action]`: the audit trail, oldest first. */
export async function run(opts: {
  config?: string;
  json: boolean;
  since?: string;
  user?: string;
  package?: string;
  action?: string;
  limit?: number;
}): Promise<void> {
  if (opts.since !== undefined && Number.isNaN(Date.parse(opts.since))) {
    throw new Error(`--since "${opts.since}" is not a date; use e.g. 2025-06-01 or 2025-06-01T12:00:00Z`);
  }
  const { storage } = await openAuth(opts.config);
  const events = await new AuditLog(storage).query({
    ...(opts.since !== undefined && { since: opts.since }),
    ...(opts.user !== undefined && { user: opts.user }),
    ...(opts.package !== undefined && { package: opts.package }),
    ...(opts.action !== undefined && { action: opts.action }),
    ...(opts.limit !== undefined && { limit: opts.limit }),
  });
  if (opts.json) printJson(events);
  else
    print(
      events.length === 0
        ? "no events"
        : events
            .map((e) =>
              [e.time, e.action, e.outcome ?? "", e.actor ?? "anonymous", e.package ?? "", e.ip ?? ""]
                .filter(Boolean)
                .join(" "),
            )
            .join("\n"),
    );
}
