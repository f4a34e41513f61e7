import { randomBytes } from "node:crypto";
import type { StorageDriver } from "@fw/storage-r2";
import { AuthError } from "./errors.js";
import { createJson, listKeys, readJson } from "./storage.js";

export type AuditAction =
  | "login"
  | "login.failed"
  | "logout"
  | "user.create"
  | "user.disable"
  | "user.enable"
  | "user.admin"
  | "password.change"
  | "token.create"
  | "token.revoke"
  | "publish"
  | "unpublish"
  | "deprecate"
  | "dist-tag"
  | "owner"
  | "2fa"
  | "access.denied"
  | "policy.change"
  | "secret.read"
  | "secret.set"
  | "secret.rotate"
  | "secret.delete"
  | "secret.purge"
  | "secret.master-key";

export type AuditDetail = string | number | boolean | null;

export interface AuditEventInput {
  action: AuditAction;
  /** Who did it: a user name; absent for anonymous callers. */
  actor?: string;
  /** The token's key (its public id, not the token) when one was used. */
  tokenKey?: string;
  package?: string;
  version?: string;
  ip?: string;
  outcome?: "success" | "failure";
  /** Small extra facts (`tag`, `mode`, `reason`…). Keys that name secrets are dropped and token-like values redacted. */
  details?: Record<string, AuditDetail>;
}

export interface AuditEvent extends AuditEventInput {
  /** Unique and sortable: the storage key without `audit/` and `.json`. */
  id: string;
  time: string;
}

export interface AuditQuery {
  /** Inclusive lower bound (ISO time or Date). */
  since?: string | Date;
  /** Exclusive upper bound. */
  until?: string | Date;
  /** Events by this actor. */
  user?: string;
  package?: string;
  /** An action, or a family such as `token` for `token.create` and `token.revoke`. */
  action?: string;
  /** Most events returned (the oldest matching first). Default 1000. */
  limit?: number;
}

const SECRET_KEY = /pass|secret|token|otp|code|cookie|auth|hash|salt|credential/i;
const TOKEN_LIKE = /\b(fw|npm)_[A-Za-z0-9_-]{16,}/g;

/** Drops detail keys that name secrets, redacts token-like text, and caps lengths: the log never holds secrets. */
export function sanitiseDetails(
  details: Record<string, AuditDetail> | undefined,
): Record<string, AuditDetail> | undefined {
  if (!details) return undefined;
  const clean: Record<string, AuditDetail> = {};
  for (const [key, value] of Object.entries(details).slice(0, 32)) {
    if (SECRET_KEY.test(key)) continue;
    clean[key.slice(0, 64)] = typeof value === "string" ? value.replace(TOKEN_LIKE, "[redacted]").slice(0, 500) : value;
  }
  return clean;
}

/** `2025-06-01T12:00:00.123Z` → `20250601T120000123Z`: sorts like the time, and safe in every driver's keys. */
function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:.]/g, "");
}

function parseCompact(id: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(id);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7]));
}

function toMs(value: string | Date | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${String(value)}`);
  return ms;
}

export interface AuditLogOptions {
  clock?: () => number;
}

/**
 * Append-only audit trail under `audit/<yyyy-mm>/`. Each event is its own create-only object whose key is
 * `<time>-<process counter>-<random>`: writers never contend and never overwrite one another, and a
 * listing returns events in time order (strictly within a process; across replicas, as their clocks say).
 * Month folders keep `since` queries from listing the whole history.
 */
export class AuditLog {
  private readonly clock: () => number;
  private last = 0;
  private counter = 0;
  /** Tells this process's events apart from other writers' in the same millisecond. */
  private readonly writer = randomBytes(4).toString("hex");

  constructor(
    private readonly storage: StorageDriver,
    options: AuditLogOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
  }

  async append(input: AuditEventInput): Promise<AuditEvent> {
    // Never earlier than this process's previous event, so its own events keep their order even if the clock steps back.
    const ms = Math.max(this.clock(), this.last);
    this.counter = ms === this.last ? this.counter + 1 : 0;
    this.last = ms;
    const details = sanitiseDetails(input.details);
    for (let attempt = 0; ; attempt++) {
      const id = `${compactTime(ms)}-${this.counter.toString(36).padStart(4, "0")}-${this.writer}${attempt ? `-${randomBytes(4).toString("hex")}` : ""}`;
      const event: AuditEvent = {
        id,
        time: new Date(ms).toISOString(),
        action: input.action,
        ...(input.actor !== undefined && { actor: input.actor }),
        ...(input.tokenKey !== undefined && { tokenKey: input.tokenKey }),
        ...(input.package !== undefined && { package: input.package }),
        ...(input.version !== undefined && { version: input.version }),
        ...(input.ip !== undefined && { ip: input.ip }),
        ...(input.outcome !== undefined && { outcome: input.outcome }),
        ...(details && { details }),
      };
      const month = event.time.slice(0, 7);
      if (await createJson(this.storage, `audit/${month}/${id}.json`, event)) return event;
      // Only another writer with the same random id in the same millisecond gets here; a fresh suffix settles it.
      if (attempt >= 3) throw new AuthError("E_CONFLICT", `audit: no free key for an event at ${event.time}`);
    }
  }

  /** Matching events, oldest first. */
  async query(query: AuditQuery = {}): Promise<AuditEvent[]> {
    const since = toMs(query.since);
    const until = toMs(query.until);
    const limit = query.limit ?? 1000;
    const events: AuditEvent[] = [];
    for (const prefix of this.prefixes(since, until)) {
      for await (const key of listKeys(this.storage, prefix)) {
        const id = key.slice(key.lastIndexOf("/") + 1, -".json".length);
        const ms = parseCompact(id);
        if (since !== undefined && ms < since) continue;
        if (until !== undefined && ms >= until) continue;
        const event = await readJson<AuditEvent>(this.storage, key);
        if (!event || !matches(event, query)) continue;
        events.push(event);
        if (events.length >= limit) return events;
      }
    }
    return events;
  }

  private prefixes(since: number | undefined, until: number | undefined): string[] {
    if (since === undefined) return ["audit/"];
    const end = until ?? this.clock();
    const prefixes: string[] = [];
    const cursor = new Date(since);
    cursor.setUTCDate(1);
    cursor.setUTCHours(0, 0, 0, 0);
    while (cursor.getTime() <= end) {
      prefixes.push(`audit/${cursor.toISOString().slice(0, 7)}/`);
      cursor.setUTCMonth(cursor.getUTCMonth() + 1);
    }
    return prefixes;
  }
}

function matches(event: AuditEvent, query: AuditQuery): boolean {
  if (query.user !== undefined && event.actor?.toLowerCase() !== query.user.toLowerCase()) return false;
  if (query.package !== undefined && event.package !== query.package) return false;
  if (query.action !== undefined && event.action !== query.action && !event.action.startsWith(`${query.action}.`)) {
    return false;
  }
  return true;
}
