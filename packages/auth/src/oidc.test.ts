import type { StorageDriver } from "@fw/storage-r2";
import { memoryDriver } from "@fw/storage-r2/memory";
import { type OidcIssuer, startOidcIssuer } from "@fw/tooling/test";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isAuthError } from "./errors.js";
import { identityFor } from "./identity.js";
import {
  isOidcError,
  matchTrustedPublisher,
  npmAudience,
  type OidcErrorCode,
  OidcVerifier,
  parseTrustedPublishing,
  TrustedPublishing,
  type TrustedPublishingInput,
  trustedPublishersFor,
  trustedPublishingJsonSchema,
} from "./oidc.js";
import { authorize, parsePolicy } from "./policy.js";
import { listKeys } from "./storage.js";
import { TokenStore } from "./tokens.js";
import { UserStore } from "./users.js";

const AUDIENCE = "npm:registry.test";
const MINUTE = 60_000;

/** The refusal `promise` ends with, checked to be an `OidcError` with `oidcCode` that never shows the ID token. */
async function refusal(promise: Promise<unknown>, oidcCode: OidcErrorCode, idToken?: string) {
  const error = await promise.then(
    () => {
      throw new Error(`expected ${oidcCode}`);
    },
    (caught: unknown) => caught,
  );
  if (!isOidcError(error)) throw error;
  expect({ oidcCode: error.oidcCode, message: error.message }).toMatchObject({ oidcCode });
  if (idToken) {
    const signature = idToken.split(".")[2] as string;
    expect(error.message).not.toContain(idToken);
    if (signature) expect(error.message).not.toContain(signature);
    for (const detail of error.details) expect(detail).not.toContain(idToken);
  }
  return error;
}

describe("trusted publishing", () => {
  let issuer: OidcIssuer;
  let storage: StorageDriver;
  let tokens: TokenStore;
  let exchange: TrustedPublishing;

  const configFor = (url: string): TrustedPublishingInput => ({
    issuers: [url],
    audience: AUDIENCE,
    packages: {
      "@acme/web": [
        { issuer: url, repository: "acme/web", workflow: "release.yml", environment: "npm", tokenEnvironment: "ci" },
      ],
      "@acme/*": [{ issuer: url, repository: "acme/monorepo", workflow: ".github/workflows/publish.yaml" }],
    },
  });

  const github = (options: Partial<Parameters<OidcIssuer["githubActionsClaims"]>[0]> = {}) =>
    issuer.sign(
      issuer.githubActionsClaims({ repository: "acme/web", environment: "npm", audience: AUDIENCE, ...options }),
    );

  beforeAll(async () => {
    issuer = await startOidcIssuer();
  });
  afterAll(() => issuer.close());

  beforeEach(() => {
    issuer.mode = "up";
    issuer.requests.clear();
    storage = memoryDriver();
    tokens = new TokenStore(storage, { users: new UserStore(storage) });
    const config = parseTrustedPublishing(configFor(issuer.url));
    exchange = new TrustedPublishing({
      config,
      tokens,
      storage,
      verifier: new OidcVerifier({ issuers: config.issuers, timeoutMs: 1_000, jwksCooldownMs: 0 }),
    });
  });

  it("exchanges a GitHub Actions ID token for a 15-minute token that may publish that one package", async () => {
    const idToken = github();
    const before = Date.now();
    const result = await exchange.exchange({ pkg: "@acme/web", idToken });
    expect(result.token).toMatch(/^fw_[A-Za-z0-9_-]{40}$/);
    expect(result.principal).toBe("oidc:github:acme/web");
    expect(result.origin).toEqual({
      provider: "github",
      issuer: issuer.url,
      subject: "repo:acme/web:environment:npm",
      repository: "acme/web",
      workflow: ".github/workflows/release.yml",
      ref: "refs/heads/main",
      environment: "npm",
      jti: expect.any(String),
    });
    expect(result.record).toMatchObject({
      user: "oidc:github:acme/web",
      packages: ["@acme/web"],
      packagesAndScopesPermission: "read-write",
      readonly: false,
      environment: "ci",
      bypass2fa: true,
      description: `trusted publishing of @acme/web by GitHub Actions acme/web .github/workflows/release.yml@refs/heads/main (environment npm)`,
    });
    const lifetime = Date.parse(result.expires) - before;
    expect(lifetime).toBeGreaterThan(14 * MINUTE);
    expect(lifetime).toBeLessThanOrEqual(15 * MINUTE + 1_000);

    // Neither the ID token nor the minted token is stored anywhere.
    for await (const key of listKeys(storage, "")) {
      const text = new TextDecoder().decode((await storage.get(key))?.body);
      expect(text).not.toContain(idToken.split(".")[2]);
      expect(text).not.toContain(result.token);
    }

    // The server's path: verify → identityFor → authorize, against a policy that names nobody from CI.
    const verified = await tokens.verify(result.token);
    if (!verified.ok) throw new Error(verified.reason);
    expect(verified.user.name).toBe("oidc:github:acme/web");
    const policy = parsePolicy({
      teams: { "acme:devs": ["alice"] },
      packages: { "@acme/*": { access: ["acme:devs"], publish: ["acme:devs"], environments: ["ci"] } },
    });
    const identity = identityFor(policy, verified.user, verified.record);
    const ask = (action: "access" | "publish" | "unpublish", pkg: string, newVersion?: boolean) =>
      authorize(policy, {
        identity,
        action,
        pkg,
        packageMaintainers: ["alice"],
        ...(newVersion !== undefined && { newVersion }),
      });
    expect(ask("publish", "@acme/web", true)).toMatchObject({
      allowed: true,
      rule: null,
      reason: expect.stringContaining("trusted publisher GitHub Actions acme/web"),
    });
    expect(ask("access", "@acme/web")).toMatchObject({ allowed: true });
    expect(ask("publish", "@acme/web")).toMatchObject({
      allowed: false,
      code: "E_FORBIDDEN",
      reason: expect.stringContaining("may only publish new versions of @acme/web, not change owners"),
    });
    expect(ask("unpublish", "@acme/web", true)).toMatchObject({ allowed: false, code: "E_FORBIDDEN" });
    expect(ask("publish", "@acme/other", true)).toMatchObject({
      allowed: false,
      reason: expect.stringContaining("may only be used for @acme/web"),
    });
    expect(ask("access", "@acme/other")).toMatchObject({ allowed: false });

    // No account stands behind it: account operations find none, and it is not listed as due for rotation.
    await expect(tokens.create("oidc:github:acme/web")).rejects.toThrow(/not found/);
    expect(await tokens.due({ withinDays: 30 })).toEqual([]);
  });

  it("still applies package rules' environments to the minted token's label", async () => {
    const result = await exchange.exchange({
      pkg: "@acme/site",
      idToken: github({ repository: "acme/monorepo", workflow: "publish.yaml" }),
    });
    expect(result.record.environment).toBeUndefined();
    const verified = await tokens.verify(result.token);
    if (!verified.ok) throw new Error(verified.reason);
    const policy = parsePolicy({ packages: { "@acme/*": { environments: ["ci"] } } });
    const decision = authorize(policy, {
      identity: identityFor(policy, verified.user, verified.record),
      action: "publish",
      pkg: "@acme/site",
      newVersion: true,
    });
    expect(decision).toMatchObject({
      allowed: false,
      reason: expect.stringContaining("needs a token for environment ci"),
    });
  });

  it("exchanges each ID token once per package", async () => {
    const idToken = github({ repository: "acme/monorepo", workflow: "publish.yaml", environment: undefined });
    await exchange.exchange({ pkg: "@acme/a", idToken });
    // npm reuses GitLab's NPM_ID_TOKEN for each package of a workspace publish: that is fine.
    await exchange.exchange({ pkg: "@acme/b", idToken });
    await refusal(exchange.exchange({ pkg: "@acme/a", idToken }), "E_OIDC_REPLAYED", idToken);
  });

  it("refuses another audience, saying which one it expects", async () => {
    const idToken = github({ audience: "npm:registry.other.invalid" });
    const error = await refusal(exchange.exchange({ pkg: "@acme/web", idToken }), "E_OIDC_AUDIENCE", idToken);
    expect(error.code).toBe("E_UNAUTHORIZED");
    expect(error.message).toContain("not this registry's npm:registry.test");
  });

  it("refuses issuers off the allow-list without contacting them", async () => {
    await using other = await startOidcIssuer();
    const foreign = other.sign(other.githubActionsClaims({ repository: "acme/web", audience: AUDIENCE }));
    const error = await refusal(exchange.exchange({ pkg: "@acme/web", idToken: foreign }), "E_OIDC_ISSUER", foreign);
    expect(error.message).toContain(`does not accept OIDC ID tokens from the issuer "${other.url}"`);
    expect(other.requests.size).toBe(0);

    // The allowed issuer's key, but another `iss`: still refused before anything is fetched.
    const spoofed = issuer.sign({
      ...issuer.githubActionsClaims({ repository: "acme/web", audience: AUDIENCE }),
      iss: other.url,
    });
    await refusal(exchange.exchange({ pkg: "@acme/web", idToken: spoofed }), "E_OIDC_ISSUER", spoofed);
    expect(issuer.requests.size).toBe(0);
  });

  it("refuses expired tokens and tokens issued too long ago", async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = github({ issuedAt: now - 600, ttlSeconds: 300 });
    const error = await refusal(exchange.exchange({ pkg: "@acme/web", idToken: expired }), "E_OIDC_EXPIRED", expired);
    expect(error.message).toMatch(/expired at \d{4}-/);
    const old = github({ issuedAt: now - 3_000, ttlSeconds: 7_200 });
    const stale = await refusal(exchange.exchange({ pkg: "@acme/web", idToken: old }), "E_OIDC_EXPIRED", old);
    expect(stale.message).toContain("issued more than 900 s ago");
    const future = github({ issuedAt: now + 600 });
    await refusal(exchange.exchange({ pkg: "@acme/web", idToken: future }), "E_OIDC_EXPIRED", future);
  });

  it("refuses signatures by keys the issuer does not publish", async () => {
    const claims = issuer.githubActionsClaims({ repository: "acme/web", environment: "npm", audience: AUDIENCE });
    const unknownKid = issuer.sign(claims, { key: "stranger" });
    const error = await refusal(
      exchange.exchange({ pkg: "@acme/web", idToken: unknownKid }),
      "E_OIDC_SIGNATURE",
      unknownKid,
    );
    expect(error.message).toContain("a key the issuer");
    // A stranger's key under a published key id: the signature itself fails.
    const publishedKid = JSON.parse(Buffer.from(github().split(".")[0] as string, "base64url").toString()).kid;
    const borrowed = issuer.sign(claims, { key: "stranger", kid: publishedKid });
    const bad = await refusal(exchange.exchange({ pkg: "@acme/web", idToken: borrowed }), "E_OIDC_SIGNATURE", borrowed);
    expect(bad.message).toContain("signature does not verify");
  });

  it("refuses alg none and HMAC forgeries before fetching any key", async () => {
    const claims = issuer.githubActionsClaims({ repository: "acme/web", environment: "npm", audience: AUDIENCE });
    for (const forge of ["none", "HS256"] as const) {
      const idToken = issuer.sign(claims, { forge });
      const error = await refusal(exchange.exchange({ pkg: "@acme/web", idToken }), "E_OIDC_ALGORITHM", idToken);
      expect(error.message).toContain(`signed with "${forge}" are not accepted`);
    }
    expect(issuer.requests.size).toBe(0);
  });

  it("refuses malformed tokens", async () => {
    for (const idToken of ["", "not-a-jwt", "a.b", `${"x".repeat(20_000)}.a.b`, "eyJub3QganNvbg.eyJ9.c2ln"]) {
      await refusal(exchange.exchange({ pkg: "@acme/web", idToken }), "E_OIDC_MALFORMED", idToken || undefined);
    }
  });

  it("refuses a valid token whose repository, workflow or environment the package does not trust", async () => {
    const cases = [
      [{ repository: "evil/web" }, "publisher 0: repository evil/web is not acme/web"],
      [
        { workflow: "ci.yml" },
        "publisher 0: workflow_ref acme/web/.github/workflows/ci.yml@refs/heads/main is not of .github/workflows/release.yml",
      ],
      [{ environment: "staging" }, "publisher 0: environment staging is not npm"],
      [{ environment: undefined }, "publisher 0: environment (none) is not npm"],
    ] as const;
    for (const [options, detail] of cases) {
      const idToken = github(options);
      const error = await refusal(exchange.exchange({ pkg: "@acme/web", idToken }), "E_OIDC_UNTRUSTED", idToken);
      expect(error.code).toBe("E_FORBIDDEN");
      expect(error.message).toMatch(/^@acme\/web does not trust this CI identity \(repository .+\) to publish it/);
      expect(error.details).toEqual([detail]);
    }
    // Matching is case-insensitive for names GitHub treats so, exact for the workflow path.
    await exchange.exchange({ pkg: "@acme/web", idToken: github({ repository: "Acme/Web", environment: "NPM" }) });
    const idToken = github({ workflow: "Release.yml" });
    await refusal(exchange.exchange({ pkg: "@acme/web", idToken }), "E_OIDC_UNTRUSTED", idToken);
  });

  it("refuses packages that trust nobody, after verifying the token", async () => {
    const idToken = github();
    const error = await refusal(exchange.exchange({ pkg: "lodash", idToken }), "E_OIDC_UNTRUSTED", idToken);
    expect(error.details).toEqual(["lodash has no trusted publishers"]);
    // An unverifiable token learns nothing about the package.
    const forged = issuer.sign(issuer.githubActionsClaims({ repository: "x/y", audience: AUDIENCE }), {
      key: "stranger",
    });
    await refusal(exchange.exchange({ pkg: "lodash", idToken: forged }), "E_OIDC_SIGNATURE", forged);
  });

  it("fetches discovery and keys once, and again when a new key appears", async () => {
    await exchange.exchange({ pkg: "@acme/web", idToken: github() });
    await exchange.exchange({ pkg: "@acme/web", idToken: github() });
    expect(Object.fromEntries(issuer.requests)).toEqual({
      "/.well-known/openid-configuration": 1,
      "/.well-known/jwks": 1,
    });
    issuer.rotate();
    await exchange.exchange({ pkg: "@acme/web", idToken: github() });
    expect(issuer.requests.get("/.well-known/jwks")).toBe(2);
  });

  describe("when the issuer is down", () => {
    const timed = async (promise: Promise<unknown>) => {
      const start = performance.now();
      const outcome = await promise.catch((error: unknown) => error);
      return { error: outcome, elapsed: performance.now() - start };
    };

    it("gives up on a silent issuer after the time limit, with a clear error", async () => {
      const idToken = github();
      issuer.mode = "hang";
      const verifier = new OidcVerifier({ issuers: [issuer.url], timeoutMs: 300, jwksCooldownMs: 0 });
      const { error, elapsed } = await timed(verifier.verify(idToken, { audience: AUDIENCE }));
      expect(elapsed).toBeLessThan(2_000);
      if (!isOidcError(error, "E_OIDC_ISSUER_UNAVAILABLE")) throw error;
      expect(error.code).toBe("E_UNAVAILABLE");
      expect(error.message).toBe(
        `could not fetch the discovery document of the OIDC issuer ${issuer.url} (no answer within 300 ms): try again later`,
      );

      // The failure is not remembered: once the issuer answers, the same verifier works.
      issuer.mode = "up";
      await expect(verifier.verify(idToken, { audience: AUDIENCE })).resolves.toMatchObject({ issuer: issuer.url });

      // Keys fetched later (a new key id) are time-limited too.
      issuer.rotate();
      issuer.mode = "hang";
      const late = await timed(verifier.verify(github(), { audience: AUDIENCE }));
      expect(late.elapsed).toBeLessThan(2_000);
      if (!isOidcError(late.error, "E_OIDC_ISSUER_UNAVAILABLE")) throw late.error;
      expect(late.error.message).toContain("could not fetch the keys (JWKS) of the OIDC issuer");
      expect(late.error.message).toContain("no answer within 300 ms");
    });

    it("reports an erroring or unreachable issuer", async () => {
      issuer.mode = "error";
      const error = await refusal(
        exchange.exchange({ pkg: "@acme/web", idToken: github() }),
        "E_OIDC_ISSUER_UNAVAILABLE",
      );
      expect(error.message).toContain("(HTTP 503 from");

      const gone = await startOidcIssuer();
      const idToken = gone.sign(gone.githubActionsClaims({ repository: "acme/web", audience: AUDIENCE }));
      await gone.close();
      const verifier = new OidcVerifier({ issuers: [gone.url], timeoutMs: 1_000 });
      const { error: refused } = await timed(verifier.verify(idToken, { audience: AUDIENCE }));
      if (!isOidcError(refused, "E_OIDC_ISSUER_UNAVAILABLE")) throw refused;
      expect(refused.message).toMatch(/could not fetch the discovery document .*\((fetch failed|connect ECONNREFUSED)/);
    });

    it("refuses a discovery document that names another issuer", async () => {
      await using other = await startOidcIssuer();
      const verifier = new OidcVerifier({ issuers: [`${other.url}/`], timeoutMs: 1_000 });
      const idToken = other.sign({
        ...other.githubActionsClaims({ repository: "a/b", audience: AUDIENCE }),
        iss: `${other.url}/`,
      });
      const { error } = await timed(verifier.verify(idToken, { audience: AUDIENCE }));
      if (!isOidcError(error, "E_OIDC_ISSUER_UNAVAILABLE")) throw error;
      expect(error.message).toContain(`it names the issuer ${other.url}`);
    });
  });

  it("matches GitLab CI ID tokens by project, pipeline file and environment", async () => {
    await using gitlab = await startOidcIssuer({ algorithm: "ES256" });
    const config = parseTrustedPublishing({
      issuers: [gitlab.url],
      audience: AUDIENCE,
      tokenMinutes: 5,
      packages: {
        "@acme/lib": [
          {
            provider: "gitlab",
            issuer: gitlab.url,
            repository: "acme/tools/lib",
            workflow: ".gitlab-ci.yml",
            environment: "release",
          },
        ],
      },
    });
    const service = new TrustedPublishing({ config, tokens, storage });
    const idToken = gitlab.gitlabEnv({ project: "acme/tools/lib", environment: "release", audience: AUDIENCE })
      .NPM_ID_TOKEN as string;
    const result = await service.exchange({ pkg: "@acme/lib", idToken });
    expect(result.principal).toBe("oidc:gitlab:acme/tools/lib");
    expect(result.origin).toMatchObject({
      provider: "gitlab",
      repository: "acme/tools/lib",
      workflow: ".gitlab-ci.yml",
      ref: "main",
    });
    expect(Date.parse(result.expires) - Date.now()).toBeLessThanOrEqual(5 * MINUTE);
    const wrong = gitlab.sign(
      gitlab.gitlabClaims({
        project: "acme/tools/lib",
        pipeline: "other.yml",
        environment: "release",
        audience: AUDIENCE,
      }),
    );
    const error = await refusal(service.exchange({ pkg: "@acme/lib", idToken: wrong }), "E_OIDC_UNTRUSTED", wrong);
    expect(error.details[0]).toContain("ci_config_ref_uri");
  });
});

describe("matchTrustedPublisher", () => {
  const issuer = "https://token.actions.githubusercontent.com";
  const claims = {
    iss: issuer,
    aud: ["npm:npm.example.com", "other"],
    sub: "repo:acme/web:ref:refs/tags/v1.0.0",
    repository: "acme/web",
    repository_id: "2002",
    ref: "refs/tags/v1.0.0",
    ref_type: "tag",
    workflow_ref: "acme/web/.github/workflows/release.yml@refs/tags/v1.0.0",
  };
  const publisherOf = (entry: Record<string, unknown>) =>
    parseTrustedPublishing({ packages: { x: [entry] } }).packages[0]?.publishers[0] as Parameters<
      typeof matchTrustedPublisher
    >[0];

  it("checks extra claims, with lists as alternatives and numbers matching their text", () => {
    const ok = matchTrustedPublisher(
      publisherOf({ repository: "acme/web", claims: { repository_id: 2002, ref_type: ["tag", "release"] } }),
      claims,
      ["npm:npm.example.com"],
    );
    expect(ok).toMatchObject({ ok: true, principal: "oidc:github:acme/web", origin: { ref: "refs/tags/v1.0.0" } });
    const bad = matchTrustedPublisher(publisherOf({ repository: "acme/web", claims: { ref_type: "branch" } }), claims, [
      "npm:npm.example.com",
    ]);
    expect(bad).toMatchObject({ ok: false, mismatch: "claim ref_type tag is not branch" });
  });

  it("uses a publisher's own audience instead of the registry's", () => {
    const own = publisherOf({ repository: "acme/web", audience: "other" });
    expect(matchTrustedPublisher(own, claims, ["npm:elsewhere"])).toMatchObject({ ok: true });
    const registry = publisherOf({ repository: "acme/web" });
    expect(matchTrustedPublisher(registry, claims, ["npm:elsewhere"])).toMatchObject({
      ok: false,
      mismatch: "audience npm:npm.example.com, other is not npm:elsewhere",
    });
  });

  it("does not take a workflow of another repository (a reusable one) for the trusted one", () => {
    const reusable = { ...claims, workflow_ref: "evil/tools/.github/workflows/release.yml@refs/heads/main" };
    const result = matchTrustedPublisher(publisherOf({ repository: "acme/web", workflow: "release.yml" }), reusable, [
      "npm:npm.example.com",
    ]);
    expect(result).toMatchObject({ ok: false });
  });

  it("names custom publishers after the issuer host and subject", () => {
    const custom = parseTrustedPublishing({
      issuers: ["https://ci.example.com"],
      packages: { x: [{ provider: "custom", issuer: "https://ci.example.com", claims: { sub: "pipeline:7" } }] },
    }).packages[0]?.publishers[0] as Parameters<typeof matchTrustedPublisher>[0];
    const result = matchTrustedPublisher(custom, { iss: "https://ci.example.com", aud: "a", sub: "pipeline:7" }, ["a"]);
    expect(result).toMatchObject({ ok: true, principal: "oidc:ci.example.com:pipeline:7" });
  });
});

describe("parseTrustedPublishing", () => {
  it("fills in defaults and normalises workflows", () => {
    const config = parseTrustedPublishing({
      packages: {
        "@acme/*": [{ repository: "acme/mono" }],
        "@acme/web": [
          { repository: "acme/web", workflow: "release.yml" },
          { provider: "gitlab", repository: "acme/web", workflow: "/ci/release.yml" },
        ],
      },
    });
    expect(config).toMatchObject({
      issuers: [{ issuer: "https://token.actions.githubusercontent.com" }, { issuer: "https://gitlab.com" }],
      audience: [],
      tokenMinutes: 15,
      maxTokenAgeSeconds: 900,
      clockToleranceSeconds: 60,
    });
    expect(trustedPublishersFor(config, "@acme/web")).toMatchObject([
      {
        provider: "github",
        issuer: "https://token.actions.githubusercontent.com",
        workflow: ".github/workflows/release.yml",
      },
      { provider: "gitlab", issuer: "https://gitlab.com", workflow: "ci/release.yml" },
    ]);
    expect(trustedPublishersFor(config, "@acme/api")).toMatchObject([{ repository: "acme/mono" }]);
    expect(trustedPublishersFor(config, "lodash")).toEqual([]);
  });

  it("names the dotted path of every problem", () => {
    const problems = (input: unknown) => {
      try {
        parseTrustedPublishing(input, "trustedPublishing");
      } catch (error) {
        if (isAuthError(error, "E_BAD_REQUEST")) return error.message;
        throw error;
      }
      throw new Error("expected a refusal");
    };
    expect(problems({ packages: { x: [{ workflow: "release.yml" }] } })).toContain(
      "trustedPublishing.packages.x.0.repository: expected owner/repo, which a github publisher needs",
    );
    expect(problems({ issuers: ["https://a.example"], packages: { x: [{ repository: "a/b" }] } })).toContain(
      'trustedPublishing.packages.x.0.issuer: "https://token.actions.githubusercontent.com" is not under issuers',
    );
    expect(problems({ packages: { x: [{ repository: "a/b", workflow: "scripts/release.sh" }] } })).toContain(
      "trustedPublishing.packages.x.0.workflow: expected a workflow file",
    );
    expect(
      problems({
        issuers: ["https://ci.example"],
        packages: { x: [{ provider: "custom", issuer: "https://ci.example" }] },
      }),
    ).toContain("a custom publisher needs claims");
    expect(problems({ issuers: ["http://issuer.example"] })).toContain(
      "trustedPublishing.issuers.0: expected an issuer URL: it must be https",
    );
    expect(problems({ tokenMinutes: 600 })).toContain("trustedPublishing.tokenMinutes");
    expect(problems({ packages: { "Not A Name": [] } })).toContain("trustedPublishing.packages");
  });

  it("has a JSON Schema for editors", () => {
    expect(JSON.stringify(trustedPublishingJsonSchema())).toContain("tokenEnvironment");
  });

  it("derives npm's audience from the registry URL: the host name, without port", () => {
    expect(npmAudience("http://127.0.0.1:4873/")).toBe("npm:127.0.0.1");
    expect(npmAudience("https://npm.example.com/registry/")).toBe("npm:npm.example.com");
  });
});
