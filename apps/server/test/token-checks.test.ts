import { parsePolicy, TokenStore, UserStore } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { RegistryError } from "../src/http/errors.js";
import { UsersService } from "../src/services/users.js";

const CACHE_MS = 1_000;
const IP = "127.0.0.1";
const START = Date.parse("2026-06-01T12:00:00Z");

/** Memory storage that counts reads of token records and can hold one read's answer back. */
function countingStorage() {
  const inner = memoryDriver();
  let tokenReads = 0;
  let hold: Promise<void> | undefined;
  const storage: StorageDriver = new Proxy(inner, {
    get(target, property, receiver) {
      if (property !== "get") return Reflect.get(target, property, receiver);
      return async (key: string, ...rest: unknown[]) => {
        const answer = await (target.get as (...args: unknown[]) => ReturnType<StorageDriver["get"]>)(key, ...rest);
        if (key.startsWith("tokens/")) {
          tokenReads++;
          const held = hold;
          hold = undefined;
          if (held) await held;
        }
        return answer;
      };
    },
  });
  return {
    storage,
    tokenReads: () => tokenReads,
    /** The next token read answers what storage held then, but only once `release` is called. */
    holdNextTokenRead(): () => void {
      let release = () => {};
      hold = new Promise((resolve) => {
        release = resolve;
      });
      return release;
    },
  };
}

/** Lets background checks (storage reads in memory) finish. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

let template: Map<string, Uint8Array>;

async function setup() {
  const counted = countingStorage();
  for (const [key, body] of template) await counted.storage.put(key, body);
  const users = new UsersService(counted.storage, { policy: parsePolicy({}), tokenCacheMs: CACHE_MS });
  const { token } = await users.createToken("alice");
  return { ...counted, users, token };
}

describe("token checks behind cached reads", () => {
  // One scrypt hash for the file: each test copies the stored account into fresh storage.
  beforeAll(async () => {
    const seed = memoryDriver();
    await new UserStore(seed).create("alice", "password-1");
    template = new Map();
    for (const { key } of (await seed.list()).objects) template.set(key, (await seed.get(key))?.body as Uint8Array);
  });

  afterEach(() => {
    vi.useRealTimers();
  });

  it("checks a token in steady use again in the background, so it never expires under its requests, and a revocation made by another replica applies within the cache time", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const { users, token, storage, tokenReads } = await setup();
    expect((await users.resolveToken(token, IP)).name).toBe("alice");
    const reads = tokenReads();

    vi.setSystemTime(START + CACHE_MS * 0.4);
    expect(users.cachedIdentity(token, IP)?.name).toBe("alice");
    await settle();
    expect(tokenReads()).toBe(reads);

    // Past half the cache time: still answered at once, and read again from storage behind the answer.
    vi.setSystemTime(START + CACHE_MS * 0.6);
    expect(users.cachedIdentity(token, IP)?.name).toBe("alice");
    await settle();
    expect(tokenReads()).toBe(reads + 1);
    vi.setSystemTime(START + CACHE_MS * 1.3);
    expect(users.cachedIdentity(token, IP)?.name).toBe("alice");
    await settle();

    // Another replica revokes it: a background check finds out before the cached check would have
    // expired, and the fast path stops answering within the cache time.
    const lastRead = START + CACHE_MS * 1.3;
    const revokedAt = START + CACHE_MS * 1.4;
    vi.setSystemTime(revokedAt);
    const otherReplica = new TokenStore(storage, { users: new UserStore(storage) });
    expect(await otherReplica.revokeValue(token)).not.toBeNull();
    let refusedAt: number | undefined;
    for (let at = revokedAt; at <= revokedAt + CACHE_MS && refusedAt === undefined; at += CACHE_MS / 10) {
      vi.setSystemTime(at);
      if (users.cachedIdentity(token, IP) === undefined) refusedAt = at;
      await settle();
    }
    expect(refusedAt).toBeDefined();
    expect(refusedAt as number).toBeLessThan(lastRead + CACHE_MS);
    await expect(users.resolveToken(token, IP)).rejects.toThrow(/revoked/);
  });

  it("lets the requests that find a token's check expired share one storage read", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const { users, token, tokenReads } = await setup();
    await users.resolveToken(token, IP);
    vi.setSystemTime(START + CACHE_MS * 2);
    expect(users.cachedIdentity(token, IP)).toBeUndefined();
    const reads = tokenReads();
    const identities = await Promise.all(Array.from({ length: 20 }, () => users.resolveToken(token, IP)));
    expect(identities.map((identity) => identity.name)).toEqual(Array(20).fill("alice"));
    expect(tokenReads()).toBe(reads + 1);
    expect(users.cachedIdentity(token, IP)?.name).toBe("alice");
  });

  it("answers a connection's repeated Authorization header from its last check, and stops the moment the token is revoked", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(START);
    const { users, token, tokenReads } = await setup();
    const connection = {};
    const header = `Bearer ${token}`;
    await users.resolveToken(token, IP);
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");

    // Another header on the same connection is checked on its own: a wrong token of the same length,
    // another scheme, the same token with other spacing.
    const wrong = `${header.slice(0, -1)}${header.endsWith("a") ? "b" : "a"}`;
    expect(users.cachedBearer(wrong, IP, connection)).toBeUndefined();
    expect(
      users.cachedBearer(`Basic ${Buffer.from("alice:password-1").toString("base64")}`, IP, connection),
    ).toBeUndefined();
    expect(users.cachedBearer(`Bearer  ${token}`, IP, connection)?.name).toBe("alice");
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");
    // A header refused before any lookup (not an fw token, too long) is never taken for the last token's.
    for (const refused of ["Bearer not-an-fw-token", `Bearer ${token}${"x".repeat(200)}`]) {
      expect(users.cachedBearer(refused, IP, connection)).toBeUndefined();
      expect(users.cachedBearer(refused, IP, connection)).toBeUndefined();
    }
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");

    // Past half the cache time the header is still answered, and the token is read again behind it.
    const reads = tokenReads();
    vi.setSystemTime(START + CACHE_MS * 0.6);
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");
    await settle();
    expect(tokenReads()).toBe(reads + 1);
    expect(users.cachedBearer(header, IP, connection)?.name).toBe("alice");

    expect(await users.revokeTokenValue(token)).toBe(true);
    expect(users.cachedBearer(header, IP, connection)).toBeUndefined();
    expect(users.cachedBearer(header, IP, {})).toBeUndefined();
  });

  it("checks the client's address on every request of a connection when the token is limited to some", async () => {
    const { users } = await setup();
    const { token } = await users.createToken("alice", { cidr: ["10.0.0.0/8"] });
    const connection = {};
    const header = `Bearer ${token}`;
    await users.resolveToken(token, "10.1.2.3");
    expect(users.cachedBearer(header, "10.1.2.3", connection)?.name).toBe("alice");
    expect(users.cachedBearer(header, "10.1.2.3", connection)?.name).toBe("alice");
    // A proxy's connection carries requests of several clients.
    expect(users.cachedBearer(header, "192.168.1.1", connection)).toBeUndefined();
    expect(users.cachedBearer(header, () => "10.9.9.9", connection)?.name).toBe("alice");
  });

  it("does not remember or share a check that read the token before it was revoked here", async () => {
    const { users, token, holdNextTokenRead } = await setup();
    const release = holdNextTokenRead();
    const check = users.resolveToken(token, IP);
    // Logout while the check holds what it read before; a request after the logout does not join that check.
    expect(await users.revokeTokenValue(token)).toBe(true);
    const after = users.resolveToken(token, IP).catch((error: unknown) => error);
    release();
    expect((await check).name).toBe("alice");
    expect(await after).toBeInstanceOf(RegistryError);
    expect(users.cachedIdentity(token, IP)).toBeUndefined();
    const refused = await users.resolveToken(token, IP).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RegistryError);
  });
});
