import { describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import { ANONYMOUS, type Identity, identityFor, type UserIdentity } from "./identity.js";
import {
  type AuthorizeRequest,
  authorize,
  explain,
  type PolicyConfig,
  parsePolicy,
  policyJsonSchema,
} from "./policy.js";
import type { TokenRecord } from "./tokens.js";
import type { UserProfile } from "./users.js";

const config: PolicyConfig = {
  teams: { "acme:devs": ["alice", "bob"], "acme:ops": ["olga"] },
  roles: { publisher: ["acme:ops"], auditor: ["carol"] },
  packages: {
    "@acme/secret": { access: ["acme:devs"], publish: ["acme:devs"] },
    "@acme/*": { access: "$authenticated", publish: ["acme:devs", "publisher"], environments: ["ci", "prod"] },
    "@public/*": { access: ["$all"], publish: ["$authenticated"] },
    "**": { access: ["$authenticated"] },
  },
};
const policy = parsePolicy(config);

function profile(name: string, extra: Partial<UserProfile> = {}): UserProfile {
  return {
    name,
    passwordHash: "x",
    created: "2025-01-01T00:00:00.000Z",
    updated: "2025-01-01T00:00:00.000Z",
    ...extra,
  };
}

function token(user: string, extra: Partial<TokenRecord> = {}): TokenRecord {
  return {
    key: "7f1c0d2e-0000-4000-8000-000000000000",
    user,
    hash: "h",
    prefix: "fw_abcdef",
    readonly: false,
    cidr_whitelist: [],
    created: "2025-01-01T00:00:00.000Z",
    environment: "ci",
    ...extra,
  };
}

const alice = identityFor(policy, profile("alice"), token("alice"));
const carol = identityFor(policy, profile("carol"), token("carol"));
const root = identityFor(policy, profile("root", { admin: true }), token("root"));

function check(request: Partial<AuthorizeRequest> & { identity: Identity }) {
  return authorize(policy, { action: "access", pkg: "@acme/web", ...request });
}

describe("parsePolicy", () => {
  it("orders rules most specific first, whatever the config order", () => {
    const parsed = parsePolicy({
      packages: { "**": {}, "@acme/*": {}, "@acme/web": {}, "@acme/web-*": {}, "*": {}, "@*/*": {} },
    });
    expect(parsed.rules.map((r) => r.pattern)).toEqual(["@acme/web", "@acme/web-*", "@acme/*", "@*/*", "*", "**"]);
  });

  it("names the dotted path of each problem", () => {
    const bad = [
      [{ packages: { "@acme/*": { publish: ["$everyone"] } } }, "packages.@acme/*.publish.0"],
      [{ packages: { "@acme/*": { publish: ["acme:nobody"] } } }, 'unknown team "acme:nobody"'],
      [{ packages: { "@acme/*": { publish: ["role:ghost"] } } }, 'unknown role "ghost"'],
      [{ packages: { "@acme/*": { pubish: ["x"] } } }, "packages.@acme/*"],
      [{ packages: { "Bad Name": {} } }, "packages.Bad Name"],
      [{ teams: { devs: ["a"] } }, "teams.devs"],
      [{ roles: { ops: ["acme:none"] } }, 'roles.ops: unknown team "acme:none"'],
    ] as const;
    for (const [input, message] of bad) {
      let error: unknown;
      try {
        parsePolicy(input, "");
      } catch (caught) {
        error = caught;
      }
      expect(isAuthError(error, "E_BAD_REQUEST")).toBe(true);
      expect((error as Error).message).toContain(message);
    }
  });

  it("accepts Verdaccio's space-separated lists and prefixes paths with a root", () => {
    const parsed = parsePolicy({ packages: { "**": { access: "$all", publish: "$authenticated alice" } } });
    expect(parsed.rules[0]?.publish).toEqual(["$authenticated", "alice"]);
    expect(() => parsePolicy({ packages: { "**": { access: 3 } } }, "auth")).toThrow(/auth\.packages\.\*\*\.access/);
  });

  it("generates a JSON Schema for editors", () => {
    expect(JSON.stringify(policyJsonSchema())).toContain("environments");
  });
});

describe("identityFor", () => {
  it("collects teams and roles from the policy and the profile", () => {
    const olga = identityFor(policy, profile("olga", { roles: ["reader"] }));
    expect(olga).toMatchObject({ kind: "user", teams: ["acme:ops"], roles: ["publisher", "reader"], admin: false });
    expect(olga.via).toBe("session");
    expect(root.roles).toContain("admin");
    expect(alice.token).toMatchObject({ permission: "read-write", environment: "ci", bypass2fa: false });
    expect(() => identityFor(policy, profile("carol"), token("alice"))).toThrow(/belongs to "alice", not "carol"/);
  });
});

describe("authorize: refusals and their allowed counterparts", () => {
  it("read-only tokens may read but not write", () => {
    const ro = identityFor(policy, profile("alice"), token("alice", { readonly: true }));
    const denied = check({ identity: ro, action: "publish" });
    expect(denied).toMatchObject({ allowed: false, code: "E_FORBIDDEN" });
    expect(denied.reason).toMatch(/read-only.*read-write token/);
    const scoped = identityFor(policy, profile("alice"), token("alice", { packagesAndScopesPermission: "read-only" }));
    expect(check({ identity: scoped, action: "unpublish" }).reason).toMatch(/read-only/);
    expect(check({ identity: ro, action: "access" }).allowed).toBe(true);
    expect(check({ identity: alice, action: "publish" }).allowed).toBe(true);
  });

  it("tokens limited to packages or scopes are refused elsewhere", () => {
    const limited = identityFor(
      policy,
      profile("alice"),
      token("alice", { packages: ["@acme/api"], scopes: ["@public"] }),
    );
    const denied = check({ identity: limited, pkg: "@acme/web" });
    expect(denied).toMatchObject({ allowed: false, code: "E_FORBIDDEN", rule: null });
    expect(denied.reason).toContain("@acme/api, @public/*");
    expect(check({ identity: limited, pkg: "@acme/api", action: "publish" }).allowed).toBe(true);
    expect(check({ identity: limited, pkg: "@public/x", action: "publish" }).allowed).toBe(true);
    // Admins are held to their token's limits too.
    const rootLimited = identityFor(policy, profile("root", { admin: true }), token("root", { scopes: ["@public"] }));
    expect(check({ identity: rootLimited, pkg: "@acme/web" }).allowed).toBe(false);
  });

  it("rules requiring an environment refuse other tokens and sessions", () => {
    const dev = identityFor(policy, profile("alice"), token("alice", { environment: "laptop" }));
    const denied = check({ identity: dev, action: "publish" });
    expect(denied).toMatchObject({ allowed: false, code: "E_FORBIDDEN" });
    expect(denied.reason).toBe(
      'publish of @acme/web needs a token for environment ci or prod (rule "@acme/*"); this request used a "laptop" token',
    );
    const session = identityFor(policy, profile("alice"));
    expect(check({ identity: session, action: "publish" }).reason).toMatch(/used a login session/);
    expect(check({ identity: root, action: "publish" }).allowed).toBe(true);
    expect(check({ identity: dev, action: "access" }).allowed).toBe(true);
    expect(check({ identity: session, action: "publish", pkg: "@public/x" }).allowed).toBe(true);
  });

  it("needs a maintainer to publish an existing package, unless admin", () => {
    const denied = check({ identity: alice, action: "publish", packageMaintainers: ["bob"] });
    expect(denied).toMatchObject({ allowed: false, code: "E_FORBIDDEN" });
    expect(denied.reason).toContain("npm owner add alice @acme/web");
    expect(check({ identity: alice, action: "publish", packageMaintainers: ["bob", "Alice"] }).allowed).toBe(true);
    expect(check({ identity: alice, action: "publish", packageMaintainers: [] }).allowed).toBe(true);
    expect(check({ identity: root, action: "unpublish", packageMaintainers: ["bob"] }).allowed).toBe(true);
  });

  it("refuses users outside the teams and roles a rule names", () => {
    const denied = check({ identity: carol, action: "publish" });
    expect(denied).toMatchObject({ allowed: false, code: "E_FORBIDDEN" });
    expect(denied.reason).toBe('carol may not publish @acme/web: rule "@acme/*" allows acme:devs, publisher');
    expect(denied.rule).toEqual({ pattern: "@acme/*", action: "publish", list: ["acme:devs", "publisher"] });
    expect(check({ identity: carol, pkg: "@acme/secret" }).allowed).toBe(false);
    expect(check({ identity: alice, pkg: "@acme/secret" }).allowed).toBe(true);
    const olga = identityFor(policy, profile("olga"), token("olga"));
    expect(check({ identity: olga, action: "publish" }).allowed).toBe(true);
  });

  it("hides private packages from anonymous callers as not found", () => {
    const denied = check({ identity: ANONYMOUS });
    expect(denied).toMatchObject({ allowed: false, notFound: true, code: "E_NOT_FOUND" });
    expect(check({ identity: ANONYMOUS, pkg: "lodash" }).notFound).toBe(true);
    expect(check({ identity: ANONYMOUS, pkg: "@public/x" }).allowed).toBe(true);
    const publish = check({ identity: ANONYMOUS, pkg: "@public/x", action: "publish" });
    expect(publish).toMatchObject({ allowed: false, code: "E_UNAUTHORIZED" });
    expect(publish.notFound).toBeUndefined();
  });

  describe("one-time passwords for accounts in auth-and-writes mode", () => {
    const tfa = {
      tfa: {
        mode: "auth-and-writes" as const,
        secret: "",
        enabled: "",
        lastStep: 0,
        recoverySalt: "",
        recoveryHashes: [],
      },
    };
    const secured = identityFor(policy, profile("alice", tfa), token("alice"));

    it("refuses writes without a code or with a wrong one", () => {
      const missing = check({ identity: secured, action: "publish" });
      expect(missing).toMatchObject({ allowed: false, code: "E_OTP_REQUIRED" });
      expect(missing.reason).toMatch(/--otp/);
      const wrong = check({ identity: secured, action: "publish", otp: "invalid" });
      expect(wrong).toMatchObject({ allowed: false, code: "E_OTP_REQUIRED" });
      expect(wrong.reason).toMatch(/wrong or was already used/);
    });

    it("allows writes with a valid code, reads without one, and bypass-2fa tokens", () => {
      expect(check({ identity: secured, action: "publish", otp: "valid" }).allowed).toBe(true);
      expect(check({ identity: secured, action: "access" }).allowed).toBe(true);
      const ci = identityFor(policy, profile("alice", tfa), token("alice", { bypass2fa: true }));
      expect(check({ identity: ci, action: "publish" }).allowed).toBe(true);
      const authOnly = identityFor(
        policy,
        profile("alice", { tfa: { ...tfa.tfa, mode: "auth-only" } }),
        token("alice"),
      );
      expect(check({ identity: authOnly, action: "publish" }).allowed).toBe(true);
    });

    it("does not ask for a code when the request would be refused anyway", () => {
      expect(check({ identity: secured, action: "publish", packageMaintainers: ["bob"] }).code).toBe("E_FORBIDDEN");
    });
  });
});

describe("rule evaluation", () => {
  it("inherits missing lists from less specific patterns, unpublish from publish, then the defaults", () => {
    const p = parsePolicy({
      packages: { "@acme/web": { access: ["alice"] }, "@acme/*": { publish: ["bob"] } },
    });
    const bob = identityFor(p, profile("bob"));
    const alicee: UserIdentity = identityFor(p, profile("alice"));
    expect(authorize(p, { identity: bob, action: "access", pkg: "@acme/web" }).allowed).toBe(false);
    expect(authorize(p, { identity: bob, action: "publish", pkg: "@acme/web" }).rule?.pattern).toBe("@acme/*");
    expect(authorize(p, { identity: alicee, action: "unpublish", pkg: "@acme/web" })).toMatchObject({
      allowed: false,
      rule: { pattern: "@acme/*", action: "publish", list: ["bob"] },
    });
    expect(authorize(p, { identity: ANONYMOUS, action: "access", pkg: "left-pad" })).toMatchObject({
      allowed: true,
      rule: { pattern: "(default)" },
    });
    expect(authorize(p, { identity: alicee, action: "publish", pkg: "left-pad" }).allowed).toBe(true);
  });

  it("keeps bare role names for roles, so a user named like a role gets nothing from it", () => {
    const p = parsePolicy({ roles: { ops: [] }, packages: { "**": { publish: ["ops"] } } });
    expect(authorize(p, { identity: identityFor(p, profile("ops")), action: "publish", pkg: "x" }).allowed).toBe(false);
    const q = parsePolicy({ roles: { ops: [] }, packages: { "**": { publish: ["user:ops"] } } });
    expect(authorize(q, { identity: identityFor(q, profile("ops")), action: "publish", pkg: "x" }).allowed).toBe(true);
  });

  it("$anonymous names only callers without credentials", () => {
    const p = parsePolicy({ packages: { "**": { access: ["$anonymous"] } } });
    expect(authorize(p, { identity: ANONYMOUS, action: "access", pkg: "x" }).allowed).toBe(true);
    expect(authorize(p, { identity: carol, action: "access", pkg: "x" }).allowed).toBe(false);
  });

  it("explain shows every check, the candidates and the deciding rule", () => {
    const result = explain(policy, { identity: carol, action: "publish", pkg: "@acme/web" });
    expect(result.who).toBe("carol (token fw_abcdef…)");
    expect(result.candidates).toEqual(["@acme/*", "**", "(default)"]);
    expect(result.steps.map((s) => `${s.check}:${s.outcome}`)).toEqual([
      "token-package:pass",
      "token-permission:pass",
      "rule:fail",
    ]);
    const ok = explain(policy, { identity: root, action: "publish", pkg: "@acme/web", packageMaintainers: ["bob"] });
    expect(ok.allowed).toBe(true);
    expect(ok.reason).toMatch(/\(as admin\)$/);
    expect(ok.steps.map((s) => `${s.check}:${s.outcome}`)).toEqual([
      "token-package:pass",
      "token-permission:pass",
      "rule:pass",
      "environment:pass",
      "maintainer:pass",
      "otp:skip",
    ]);
  });
});
