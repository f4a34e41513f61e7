import type { AppContext, Services } from "../context.js";
import { RegistryError, retryAfter } from "../http/errors.js";
import type { User } from "../services/users.js";

/**
 * Flood control for the endpoints that check passwords or hand out tokens: a token bucket per client
 * address, answered with 429 and `Retry-After`. Guessing is `checkPassword`'s back-off; this only
 * keeps one client from hogging the scrypt work.
 */
export function limitAuthRequests(c: AppContext, services: Services): void {
  const verdict = services.authLimiter.take(c.env?.clientIp ?? "unknown");
  if (verdict.allowed) return;
  throw new RegistryError(
    "E_RATE_LIMITED",
    `too many login and token requests from this address: try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s`,
    { headers: retryAfter(verdict.retryAfterMs) },
  );
}

/**
 * Checks a password behind the login back-off (per account and per client address): a locked caller
 * gets 429 with `Retry-After` before any password is checked, a failure is counted, a success clears
 * the account's counter. `null` for a wrong password or an unknown user.
 */
export async function checkPassword(
  services: Services,
  name: string,
  password: string,
  clientIp: string | undefined,
): Promise<User | null> {
  const attempt = { user: name, ...(clientIp !== undefined && { ip: clientIp }) };
  const verdict = await services.backoff.check(attempt);
  if (!verdict.allowed) {
    throw new RegistryError("E_RATE_LIMITED", verdict.reason, { headers: retryAfter(verdict.retryAfterMs) });
  }
  const user = await services.users.authenticate(name, password);
  if (user) await services.backoff.recordSuccess({ user: name });
  else await services.backoff.recordFailure(attempt);
  return user;
}
