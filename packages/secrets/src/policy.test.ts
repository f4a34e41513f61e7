import { parsePolicy } from "@fw/auth";
import { describe, expect, it } from "vitest";
import { user } from "../test/helpers.js";
import { isSecretsError } from "./errors.js";
import { parseDuration, validateSecretName } from "./names.js";
import { ADMINS_ONLY, authorizeSecret, parseSecretsPolicy, rotationFor, secretsJsonSchema } from "./policy.js";

function problem(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isSecretsError(error, "E_BAD_REQUEST")) return error.message;
    throw error;
  }
  throw new Error("expected E_BAD_REQUEST");
}

describe("parseSecretsPolicy", () => {
  it("names the dotted path of every problem", () => {
    expect(problem(() => parseSecretsPolicy({ rules: { "uplinks/*": { read: ["bad name!"], when: 1 } } }))).toBe(
      'invalid secrets policy: secrets.rules.uplinks/*.read.0: expected $all, $authenticated, a user, role:<name>, a team as org:team, env:<token environment>, or several joined with + (all must hold); secrets.rules.uplinks/*: Unrecognized key: "when"',
    );
    expect(problem(() => parseSecretsPolicy({ rules: { "a/b c": {} } }))).toMatch(
      /^invalid secrets policy: secrets.rules.a\/b c: expected a secret name or pattern/,
    );
    expect(problem(() => parseSecretsPolicy({ rules: { a: { rotateEvery: "3 months" } } }))).toBe(
      "invalid secrets policy: secrets.rules.a.rotateEvery: expected a duration such as 12h, 90d or 2w",
    );
    expect(problem(() => parseSecretsPolicy({ rulez: {} }, { root: "config.secrets" }))).toBe(
      'invalid secrets policy: config.secrets: Unrecognized key: "rulez"',
    );
  });

  it("checks roles and teams against the registry's access policy when given", () => {
    const access = parsePolicy({ teams: { "acme:ops": ["olga"] }, roles: { deployer: ["olga"] } });
    expect(
      problem(() => parseSecretsPolicy({ rules: { "*": { read: ["role:ghost", "acme:devs"] } } }, { access })),
    ).toBe(
      'invalid secrets policy: secrets.rules.*.read: unknown role "ghost" (add it under roles); secrets.rules.*.read: unknown team "acme:devs" (add it under teams)',
    );
    const policy = parseSecretsPolicy({ rules: { "*": { read: ["deployer", "acme:ops"] } } }, { access });
    // A bare name that is a role means the role.
    expect(authorizeSecret(policy, user("x", { roles: ["deployer"] }), "read", "a").allowed).toBe(true);
    expect(authorizeSecret(policy, user("deployer"), "read", "a").allowed).toBe(false);
    expect(authorizeSecret(policy, user("y", { teams: ["acme:ops"] }), "read", "a").allowed).toBe(true);
  });

  it("accepts a space-separated list and exports a JSON Schema", () => {
    const policy = parseSecretsPolicy({ rules: { "**": { read: "$authenticated user:bob" } } });
    expect(policy.rules[0]?.read).toEqual(["$authenticated", "user:bob"]);
    expect(secretsJsonSchema()).toMatchObject({ title: "fw secrets policy", type: "object" });
  });
});

describe("authorizeSecret", () => {
  const policy = parseSecretsPolicy({
    rules: {
      "**": { read: ["role:reader"] },
      "uplinks/*": { write: ["alice"] },
      "uplinks/public": { read: ["$all"] },
      "prod/**": { read: ["role:deployer+env:prod"], write: [] },
    },
  });

  it("lets admins do anything and, without a rule, nobody else", () => {
    expect(authorizeSecret(ADMINS_ONLY, user("root", { admin: true }), "write", "x")).toEqual({
      allowed: true,
      reason: "root is an admin",
      rule: null,
    });
    expect(authorizeSecret(ADMINS_ONLY, user("bob"), "read", "x").allowed).toBe(false);
  });

  it("takes the most specific rule with a list for the action", () => {
    expect(authorizeSecret(policy, { kind: "anonymous" }, "read", "uplinks/public")).toMatchObject({
      allowed: true,
      rule: "uplinks/public",
    });
    expect(authorizeSecret(policy, { kind: "anonymous" }, "read", "uplinks/private")).toMatchObject({
      allowed: false,
      rule: "**",
    });
    // uplinks/public has no write list: uplinks/* decides.
    expect(authorizeSecret(policy, user("alice"), "write", "uplinks/public")).toEqual({
      allowed: true,
      reason: 'alice may write secret uplinks/public: rule "uplinks/*" allows alice',
      rule: "uplinks/*",
    });
    expect(authorizeSecret(policy, user("alice"), "write", "other")).toMatchObject({ allowed: false, rule: null });
    expect(authorizeSecret(policy, user("alice"), "write", "prod/db")).toEqual({
      allowed: false,
      reason: 'alice may not write secret prod/db: rule "prod/**" allows nobody',
      rule: "prod/**",
    });
  });

  it("requires every part of a +-joined entry, token environments included", () => {
    const prodToken = user("dan", { roles: ["deployer"], environment: "prod" });
    expect(authorizeSecret(policy, prodToken, "read", "prod/db").allowed).toBe(true);
    expect(authorizeSecret(policy, user("dan", { roles: ["deployer"] }), "read", "prod/db").allowed).toBe(false);
    expect(authorizeSecret(policy, user("eve", { environment: "prod" }), "read", "prod/db").allowed).toBe(false);
  });

  it("finds the rotation schedule of the most specific rule that sets one", () => {
    const schedules = parseSecretsPolicy({ rules: { "**": { rotateEvery: "2w" }, "ci/*": { rotateEvery: "12h" } } });
    expect(rotationFor(schedules, "ci/token")).toEqual({ rotateEvery: "12h", ms: 12 * 3_600_000 });
    expect(rotationFor(schedules, "ci/a/b")).toEqual({ rotateEvery: "2w", ms: 14 * 86_400_000 });
    expect(rotationFor(ADMINS_ONLY, "x")).toBeUndefined();
  });
});

describe("names and durations", () => {
  it("accepts path-like names and refuses anything that could escape or collide", () => {
    for (const name of ["uplinks/public/token", "storage/r2-secret-key", "A_B.c", "_x"]) {
      expect(validateSecretName(name)).toBe(name);
    }
    for (const name of ["", "/a", "a/", "a//b", "..", "a/../b", "a@2", "a b", ".hidden", "a/@meta.json", 3]) {
      expect(() => validateSecretName(name)).toThrow(/is not a secret name/);
    }
    expect(() => validateSecretName("a/b/c/d/e/f/g/h/i")).toThrow(/is not a secret name/);
  });

  it("parses hours, days and weeks", () => {
    expect(parseDuration("12h")).toBe(43_200_000);
    expect(parseDuration("90d")).toBe(90 * 86_400_000);
    expect(parseDuration("2w")).toBe(14 * 86_400_000);
    expect(() => parseDuration("0d")).toThrow('rotateEvery: "0d" is not a duration');
    expect(() => parseDuration("1y", "--rotate-every")).toThrow(/^--rotate-every:/);
  });
});
