import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { AuditLog, sanitiseDetails } from "./audit.js";
import { listKeys } from "./storage.js";

let now = Date.parse("2025-06-01T12:00:00Z");
const clock = () => now;

describe("AuditLog", () => {
  let storage: StorageDriver;
  let audit: AuditLog;

  beforeEach(() => {
    now = Date.parse("2025-06-01T12:00:00Z");
    storage = memoryDriver();
    audit = new AuditLog(storage, { clock });
  });

  it("appends create-only events and queries them by time, user, package and action", async () => {
    await audit.append({ action: "login", actor: "alice", ip: "10.0.0.1", outcome: "success" });
    now += 1000;
    await audit.append({ action: "token.create", actor: "alice", tokenKey: "k1", details: { name: "ci" } });
    now += 40 * 86_400_000;
    await audit.append({ action: "publish", actor: "bob", package: "@acme/web", version: "1.0.0" });
    await audit.append({ action: "dist-tag", actor: "bob", package: "@acme/web", details: { tag: "next" } });
    await audit.append({ action: "token.revoke", actor: "Bob", tokenKey: "k2" });

    expect((await audit.query()).map((e) => e.action)).toEqual([
      "login",
      "token.create",
      "publish",
      "dist-tag",
      "token.revoke",
    ]);
    expect((await audit.query({ user: "bob" })).map((e) => e.action)).toEqual(["publish", "dist-tag", "token.revoke"]);
    expect((await audit.query({ package: "@acme/web" })).map((e) => e.action)).toEqual(["publish", "dist-tag"]);
    expect((await audit.query({ action: "token" })).map((e) => e.tokenKey)).toEqual(["k1", "k2"]);
    expect((await audit.query({ since: "2025-06-01T12:00:01Z" })).map((e) => e.action)).toEqual([
      "token.create",
      "publish",
      "dist-tag",
      "token.revoke",
    ]);
    expect(await audit.query({ since: new Date("2025-06-02T00:00:00Z"), until: "2025-07-01T00:00:00Z" })).toEqual([]);
    expect(await audit.query({ limit: 2 })).toHaveLength(2);
    const keys: string[] = [];
    for await (const key of listKeys(storage, "audit/")) keys.push(key);
    expect(keys[0]).toMatch(/^audit\/2025-06\/20250601T120000000Z-0000-[0-9a-f]{8}\.json$/);
    expect(keys[2]).toMatch(/^audit\/2025-07\//);
  });

  it("keeps every event of 25 concurrent writers in the same millisecond, in each writer's order", async () => {
    const writers = Array.from({ length: 25 }, () => new AuditLog(storage, { clock }));
    await Promise.all(
      writers.flatMap((writer, w) =>
        [0, 1, 2].map((n) => writer.append({ action: "publish", actor: `w${w}`, package: "p", version: `1.0.${n}` })),
      ),
    );
    const events = await audit.query();
    expect(events).toHaveLength(75);
    expect(new Set(events.map((e) => e.id)).size).toBe(75);
    for (let w = 0; w < 25; w++) {
      expect(events.filter((e) => e.actor === `w${w}`).map((e) => e.version)).toEqual(["1.0.0", "1.0.1", "1.0.2"]);
    }
  });

  it("never goes back in time within a process when the clock does", async () => {
    await audit.append({ action: "login", actor: "a" });
    now -= 5_000;
    await audit.append({ action: "logout", actor: "a" });
    expect((await audit.query()).map((e) => e.action)).toEqual(["login", "logout"]);
  });

  it("never stores secrets", async () => {
    const token = `fw_${"x".repeat(40)}`;
    await audit.append({
      action: "login.failed",
      actor: "alice",
      details: { password: "hunter22", otp: "123456", token, note: `used ${token} from CI`, tag: "latest" },
    });
    const [event] = await audit.query();
    expect(event?.details).toEqual({ note: "used [redacted] from CI", tag: "latest" });
    for await (const key of listKeys(storage, "audit/")) {
      const text = new TextDecoder().decode((await storage.get(key))?.body);
      expect(text).not.toContain("hunter22");
      expect(text).not.toContain(token);
    }
    expect(sanitiseDetails(undefined)).toBeUndefined();
  });
});
