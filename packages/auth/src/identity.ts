import { AuthError } from "./errors.js";
import type { Policy } from "./policy.js";
import type { TokenPermission, TokenRecord, TrustedPublisherOrigin } from "./tokens.js";
import type { TfaMode } from "./totp.js";
import type { UserProfile } from "./users.js";

/** What a bearer token restricts, copied from its record. */
export interface TokenGrant {
  key: string;
  prefix: string;
  readonly: boolean;
  permission: TokenPermission;
  /** Exact package names; with `scopes` both empty: every package. */
  packages: readonly string[];
  scopes: readonly string[];
  environment?: string;
  bypass2fa: boolean;
  /** Set when trusted publishing minted the token: it may only publish new versions of its package. */
  trustedPublisher?: TrustedPublisherOrigin;
}

export interface AnonymousIdentity {
  kind: "anonymous";
}

/** A signed-in caller, built by the server from a verified token or session with `identityFor`. */
export interface UserIdentity {
  kind: "user";
  name: string;
  admin: boolean;
  /** Roles from the profile and from the policy's `roles`, including `admin` for admins. */
  roles: readonly string[];
  /** `org:team` names from the policy's `teams`. */
  teams: readonly string[];
  /** The account's 2FA mode; `null` when 2FA is off. */
  tfaMode: TfaMode | null;
  /** `token`: a bearer token (then `token` is set); `session`: a password login or web session. */
  via: "token" | "session";
  token?: TokenGrant;
}

export type Identity = AnonymousIdentity | UserIdentity;

export const ANONYMOUS: AnonymousIdentity = Object.freeze({ kind: "anonymous" });

export function tokenGrant(record: TokenRecord): TokenGrant {
  return {
    key: record.key,
    prefix: record.prefix,
    readonly: record.readonly,
    permission: record.readonly ? "read-only" : (record.packagesAndScopesPermission ?? "read-write"),
    packages: record.packages ?? [],
    scopes: record.scopes ?? [],
    ...(record.environment !== undefined && { environment: record.environment }),
    bypass2fa: record.bypass2fa === true,
    ...(record.trustedPublisher && { trustedPublisher: record.trustedPublisher }),
  };
}

/**
 * The identity of `user` under `policy`: its teams (from `policy.teams`) and roles (its profile's, plus
 * every policy role naming it or one of its teams). Pass the token record when the request used one.
 */
export function identityFor(policy: Policy, user: UserProfile, token?: TokenRecord): UserIdentity {
  const name = user.name.toLowerCase();
  if (token && token.user.toLowerCase() !== name) {
    // A mix-up here would hand one user's token limits (or lack of them) to another: refuse loudly.
    throw new AuthError("E_UNAUTHORIZED", `token ${token.prefix}… belongs to "${token.user}", not "${user.name}"`);
  }
  const teams = [...policy.teams].filter(([, members]) => members.includes(name)).map(([team]) => team);
  const roles = new Set(user.roles ?? []);
  for (const [role, members] of policy.roles) {
    if (members.some((member) => member === name || teams.includes(member))) roles.add(role);
  }
  const admin = user.admin === true || roles.has("admin");
  if (admin) roles.add("admin");
  return {
    kind: "user",
    name: user.name,
    admin,
    roles: [...roles].sort(),
    teams: teams.sort(),
    tfaMode: user.tfa?.mode ?? null,
    via: token ? "token" : "session",
    ...(token && { token: tokenGrant(token) }),
  };
}
