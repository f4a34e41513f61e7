import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { beforeEach, describe, expect, it } from "vitest";
import { addressBucket, LoginBackoff, RateLimiter } from "./backoff.js";

let now = 1_750_000_000_000;
const clock = () => now;

/** Counts reads, to show which checks reach storage. */
function counting(driver: StorageDriver): StorageDriver & { reads: number } {
  const wrapped = Object.create(driver) as StorageDriver & { reads: number };
  wrapped.reads = 0;
  wrapped.get = (key, options) => {
    wrapped.reads++;
    return driver.get(key, options);
  };
  return wrapped;
}

describe("LoginBackoff", () => {
  let storage: StorageDriver;
  let backoff: LoginBackoff;

  beforeEach(() => {
    now = 1_750_000_000_000;
    storage = memoryDriver();
    backoff = new LoginBackoff(storage, { clock, freeAttemptsPerUser: 3, baseDelayMs: 1_000, maxDelayMs: 60_000 });
  });

  it("lets the free attempts through, then waits longer after each failure, up to the bound", async () => {
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      const verdict = await backoff.recordFailure({ user: "alice" });
      delays.push(verdict.allowed ? 0 : verdict.retryAfterMs);
    }
    expect(delays).toEqual([0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]);
    const verdict = await backoff.check({ user: "ALICE" });
    expect(verdict).toEqual({
      allowed: false,
      retryAfterMs: 60_000,
      reason: "too many failed logins for this account: try again in 60 s",
    });
    now += 60_000;
    expect((await backoff.check({ user: "alice" })).allowed).toBe(true);
  });

  it("forgets old failures and clears the account's count on success, not the address's", async () => {
    for (let i = 0; i < 3; i++) await backoff.recordFailure({ user: "bob", ip: "203.0.113.9" });
    expect(await backoff.failures({ user: "bob" })).toBe(3);
    await backoff.recordSuccess({ user: "bob" });
    expect(await backoff.failures({ user: "bob" })).toBe(0);
    expect(await backoff.failures({ ip: "203.0.113.9" })).toBe(3);
    now += 2 * 60 * 60_000;
    await backoff.recordFailure({ ip: "203.0.113.9" });
    expect(await backoff.failures({ ip: "203.0.113.9" })).toBe(1);
  });

  it("backs off per address across accounts, counting IPv6 per /64", async () => {
    const perIp = new LoginBackoff(storage, { clock, freeAttemptsPerIp: 2, freeAttemptsPerUser: 100 });
    await perIp.recordFailure({ user: "a", ip: "2001:db8:1:2::1" });
    const verdict = await perIp.recordFailure({ user: "b", ip: "2001:db8:1:2:ffff::9" });
    expect(verdict).toMatchObject({ allowed: false, reason: expect.stringMatching(/this address/) });
    expect((await perIp.check({ user: "c", ip: "2001:db8:1:2::77" })).allowed).toBe(false);
    expect((await perIp.check({ user: "c", ip: "2001:db8:1:3::1" })).allowed).toBe(true);
    expect(addressBucket("::ffff:198.51.100.7")).toBe("198.51.100.7");
    expect(addressBucket("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
  });

  it("counts every failure when 25 replicas record them at once", async () => {
    const replicas = Array.from({ length: 25 }, () => new LoginBackoff(storage, { clock, freeAttemptsPerUser: 100 }));
    await Promise.all(replicas.map((replica) => replica.recordFailure({ user: "carol", ip: "198.51.100.7" })));
    expect(await backoff.failures({ user: "carol" })).toBe(25);
    expect(await backoff.failures({ ip: "198.51.100.7" })).toBe(25);
  });

  it("answers a locked account from memory, without reading storage", async () => {
    const tracked = counting(storage);
    const local = new LoginBackoff(tracked, { clock, freeAttemptsPerUser: 1 });
    await local.recordFailure({ user: "dave" });
    const reads = tracked.reads;
    for (let i = 0; i < 50; i++) expect((await local.check({ user: "dave" })).allowed).toBe(false);
    expect(tracked.reads).toBe(reads);
    // Another replica learns the lock from storage once, then from memory.
    const other = new LoginBackoff(tracked, { clock });
    expect((await other.check({ user: "dave" })).allowed).toBe(false);
    const afterFirst = tracked.reads;
    expect((await other.check({ user: "dave" })).allowed).toBe(false);
    expect(tracked.reads).toBe(afterFirst);
  });
});

describe("RateLimiter", () => {
  it("allows a burst, then refills at its rate", () => {
    let t = 0;
    const limiter = new RateLimiter({ capacity: 3, refillPerSecond: 0.5, clock: () => t });
    expect([1, 2, 3, 4].map(() => limiter.take("ip").allowed)).toEqual([true, true, true, false]);
    expect(limiter.take("ip")).toEqual({ allowed: false, remaining: 0, retryAfterMs: 2_000 });
    expect(limiter.take("other").allowed).toBe(true);
    t += 2_000;
    expect(limiter.take("ip")).toMatchObject({ allowed: true, remaining: 0 });
    t += 60_000;
    expect(limiter.take("ip").remaining).toBe(2);
  });

  it("forgets the least recently used keys beyond its size", () => {
    const limiter = new RateLimiter({ capacity: 1, refillPerSecond: 0.001, maxKeys: 2, clock: () => 0 });
    limiter.take("a");
    limiter.take("b");
    limiter.take("c");
    expect(limiter.take("a").allowed).toBe(true);
    expect(() => new RateLimiter({ capacity: 0, refillPerSecond: 1 })).toThrow(RangeError);
  });
});
