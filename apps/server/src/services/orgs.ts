import { casUpdate, type StorageDriver } from "@fw/storage-r2";
import { RegistryError } from "../http/errors.js";

/** npm's org roles (`npm org set <org> <user> developer|admin|owner`). */
export type OrgRole = "developer" | "admin" | "owner";
export const ORG_ROLES: readonly OrgRole[] = ["developer", "admin", "owner"];

/** One org as stored in `orgs/<org>/org.json`: its members with their roles, and its teams. */
export interface OrgDocument {
  name: string;
  members: Record<string, OrgRole>;
  teams: Record<string, { description?: string; members: string[] }>;
  created: string;
  updated: string;
}

const NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

export function assertOrgName(name: string, what = "org"): string {
  const lower = name.toLowerCase();
  if (!NAME.test(lower) || Object.hasOwn(Object.prototype, lower)) {
    throw new RegistryError("E_BAD_REQUEST", `invalid ${what} name "${name.slice(0, 64)}"`);
  }
  return lower;
}

function orgKey(org: string): string {
  return `orgs/${org}/org.json`;
}

/**
 * Orgs and teams kept in storage, managed with `npm org` and `npm team`. Team memberships become
 * `org:team` names on signed-in identities, so package rules naming a team (declared under the config's
 * `teams`) also admit the members added here. Memberships are held in memory and reloaded from
 * storage every `refreshMs`, so changes made through another replica apply within that time.
 */
export class OrgService {
  private teamsByUser = new Map<string, string[]>();
  private timer: ReturnType<typeof setInterval> | undefined;
  readonly ready: Promise<void>;

  constructor(
    private readonly storage: StorageDriver,
    options: { refreshMs?: number; onError?(error: unknown): void } = {},
  ) {
    this.ready = this.reload().catch((error: unknown) => options.onError?.(error));
    this.timer = setInterval(() => {
      void this.reload().catch((error: unknown) => options.onError?.(error));
    }, options.refreshMs ?? 5_000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** `org:team` names `user` belongs to, as of the last reload or local change. */
  teamsOf(user: string): readonly string[] {
    return this.teamsByUser.get(user.toLowerCase()) ?? [];
  }

  async get(org: string): Promise<OrgDocument | null> {
    const object = await this.storage.get(orgKey(assertOrgName(org)));
    return object ? (JSON.parse(new TextDecoder().decode(object.body)) as OrgDocument) : null;
  }

  /** Applies `change` to the org with compare-and-swap; `create` allows the org not to exist yet. */
  async update(
    org: string,
    change: (doc: OrgDocument) => OrgDocument | undefined,
    options: { create?: boolean } = {},
  ): Promise<OrgDocument> {
    const name = assertOrgName(org);
    const now = new Date().toISOString();
    const result = await casUpdate<OrgDocument>(this.storage, orgKey(name), (current) => {
      if (!current && !options.create) throw new RegistryError("E_NOT_FOUND", `org "${name}" not found`);
      const base: OrgDocument = current ?? { name, members: {}, teams: {}, created: now, updated: now };
      const next = change(structuredClone(base));
      return next && { ...next, updated: now };
    });
    if (!result.value) throw new RegistryError("E_NOT_FOUND", `org "${name}" not found`);
    await this.reload();
    return result.value;
  }

  /** Rebuilds the user → teams map from every org in storage. */
  async reload(): Promise<void> {
    const next = new Map<string, string[]>();
    let cursor: string | undefined;
    do {
      const page = await this.storage.list({ prefix: "orgs/", ...(cursor !== undefined && { cursor }) });
      for (const object of page.objects) {
        if (!object.key.endsWith("/org.json")) continue;
        const stored = await this.storage.get(object.key);
        if (!stored) continue;
        const doc = JSON.parse(new TextDecoder().decode(stored.body)) as OrgDocument;
        for (const [team, { members }] of Object.entries(doc.teams)) {
          for (const member of members) {
            const list = next.get(member) ?? [];
            list.push(`${doc.name}:${team}`);
            next.set(member, list);
          }
        }
      }
      cursor = page.cursor;
    } while (cursor !== undefined);
    this.teamsByUser = next;
  }
}
