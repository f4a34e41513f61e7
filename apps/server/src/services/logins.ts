import { randomBytes } from "node:crypto";
import { isStorageError, type StorageDriver } from "@fw/storage-r2";
import { RegistryError } from "../http/errors.js";

interface LoginSession {
  doneId: string;
  created: string;
  status: "pending" | "done";
  token?: string;
}

/** Sessions of npm's web login: `POST /-/v1/login` → a page in the browser → `doneUrl` polling. */
export class LoginService {
  constructor(
    private readonly storage: StorageDriver,
    private readonly ttlMs = 10 * 60 * 1000,
  ) {}

  /** Two unrelated random ids: the browser's page id never lets anyone poll for the token. */
  async start(): Promise<{ loginId: string; doneId: string }> {
    const loginId = randomBytes(24).toString("base64url");
    const doneId = randomBytes(24).toString("base64url");
    const session: LoginSession = { doneId, created: new Date().toISOString(), status: "pending" };
    await this.storage.put(`logins/${loginId}.json`, JSON.stringify(session), { ifNoneMatch: "*" });
    await this.storage.put(`logins/done-${doneId}.json`, JSON.stringify({ loginId }), { ifNoneMatch: "*" });
    return { loginId, doneId };
  }

  async pending(loginId: string): Promise<boolean> {
    const session = await this.session(loginId);
    return session?.status === "pending";
  }

  async complete(loginId: string, token: string): Promise<void> {
    const key = `logins/${loginId}.json`;
    const object = await this.storage.get(key);
    const session = object ? (JSON.parse(new TextDecoder().decode(object.body)) as LoginSession) : null;
    if (!object || !session || this.expired(session) || session.status !== "pending") {
      throw new RegistryError("E_NOT_FOUND", "this login link has expired; run `npm login` again");
    }
    try {
      await this.storage.put(key, JSON.stringify({ ...session, status: "done", token }), { ifMatch: object.etag });
    } catch (error) {
      if (isStorageError(error, "E_PRECONDITION"))
        throw new RegistryError("E_CONFLICT", "this login was already completed");
      throw error;
    }
  }

  /** `pending`, the token once (the session is then deleted), or `expired`. */
  async poll(
    doneId: string,
  ): Promise<{ status: "pending" } | { status: "done"; token: string } | { status: "expired" }> {
    if (!/^[A-Za-z0-9_-]{32}$/.test(doneId)) return { status: "expired" };
    const link = await this.storage.get(`logins/done-${doneId}.json`);
    if (!link) return { status: "expired" };
    const { loginId } = JSON.parse(new TextDecoder().decode(link.body)) as { loginId: string };
    const session = await this.session(loginId);
    if (!session || session.doneId !== doneId || this.expired(session)) {
      await this.forget(loginId, doneId);
      return { status: "expired" };
    }
    if (session.status === "done" && session.token) {
      await this.forget(loginId, doneId);
      return { status: "done", token: session.token };
    }
    return { status: "pending" };
  }

  private async session(loginId: string): Promise<LoginSession | null> {
    if (!/^[A-Za-z0-9_-]{32}$/.test(loginId)) return null;
    const object = await this.storage.get(`logins/${loginId}.json`);
    return object ? (JSON.parse(new TextDecoder().decode(object.body)) as LoginSession) : null;
  }

  private expired(session: LoginSession): boolean {
    return Date.now() - Date.parse(session.created) > this.ttlMs;
  }

  private async forget(loginId: string, doneId: string): Promise<void> {
    await this.storage.delete(`logins/${loginId}.json`);
    await this.storage.delete(`logins/done-${doneId}.json`);
  }
}
