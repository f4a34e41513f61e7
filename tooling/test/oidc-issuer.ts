import {
  createHmac,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign as signBytes,
} from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A real OpenID Connect issuer on 127.0.0.1 for tests of trusted publishing: discovery document, JWKS,
 * GitHub Actions' ID-token endpoint (what npm 11 calls with `ACTIONS_ID_TOKEN_REQUEST_URL`), and tokens
 * shaped like GitHub Actions' and GitLab CI's. Signs with `node:crypto` only, so it shares no code with
 * the verifier it tests.
 */
export interface OidcIssuer extends AsyncDisposable {
  /** `http://127.0.0.1:<port>`: the `iss` of its tokens and the base of its discovery document. */
  url: string;
  jwksUri: string;
  /**
   * `up` answers; `error` answers every request with 503; `hang` accepts connections and never answers
   * (for timeouts). Change it at any time.
   */
  mode: "up" | "error" | "hang";
  /** Requests served per path (without query), e.g. `/.well-known/jwks`. */
  readonly requests: Map<string, number>;
  /** Signs `claims` (an `iss` is added when missing) with the published key, or as told. */
  sign(claims: Record<string, unknown>, options?: SignOptions): string;
  /** Claims of a GitHub Actions ID token for this issuer. */
  githubActionsClaims(options: GithubActionsOptions): Record<string, unknown>;
  /** Claims of a GitLab CI ID token for this issuer. */
  gitlabClaims(options: GitlabOptions): Record<string, unknown>;
  /**
   * Environment variables under which npm 11 believes it runs in GitHub Actions with `id-token: write`:
   * it then fetches its ID token from this issuer (adding `audience=npm:<registry host>`) and exchanges it.
   * `audience` in `options` is ignored: npm's request says it.
   */
  githubActionsEnv(options: Omit<GithubActionsOptions, "audience">): Record<string, string>;
  /** Environment variables of a GitLab CI job whose `NPM_ID_TOKEN` is this issuer's token. */
  gitlabEnv(options: GitlabOptions): Record<string, string>;
  /** Publishes a new signing key (the old one stays published, as in a real rotation). */
  rotate(): void;
  close(): Promise<void>;
}

export interface SignOptions {
  /** `published` (default) or `stranger`: a key this issuer never publishes. */
  key?: "published" | "stranger";
  /** Overrides the header's `kid`. */
  kid?: string;
  /**
   * Forgeries: `none` (no signature) or `HS256` keyed with the published public key's JWK text, the
   * classic algorithm-confusion attack.
   */
  forge?: "none" | "HS256";
}

export interface GithubActionsOptions {
  /** `owner/repo`. */
  repository: string;
  /** Workflow file name. Default `release.yml`. */
  workflow?: string;
  /** Default `refs/heads/main`. */
  ref?: string;
  environment?: string;
  audience: string | string[];
  /** Default `private`: with `public`, npm 11 turns provenance on, which needs the public Sigstore. */
  visibility?: "public" | "private" | "internal";
  /** Seconds from `iat` to `exp`. Default 300. */
  ttlSeconds?: number;
  /** `iat` in seconds. Default now. */
  issuedAt?: number;
  /** Added last: overrides any claim. */
  extra?: Record<string, unknown>;
}

export interface GitlabOptions {
  /** `group/project`. */
  project: string;
  /** Pipeline file. Default `.gitlab-ci.yml`. */
  pipeline?: string;
  /** Branch or tag name. Default `main`. */
  ref?: string;
  environment?: string;
  audience: string | string[];
  ttlSeconds?: number;
  issuedAt?: number;
  extra?: Record<string, unknown>;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  jwk: JsonWebKey;
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

function newKey(algorithm: "RS256" | "ES256"): SigningKey {
  const { privateKey, publicKey } =
    algorithm === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const kid = randomBytes(8).toString("hex");
  return { kid, privateKey, jwk: { ...publicKey.export({ format: "jwk" }), kid, alg: algorithm, use: "sig" } };
}

/** Starts an issuer on 127.0.0.1 port 0. `algorithm`: RS256 (GitHub's, default) or ES256. */
export async function startOidcIssuer(options: { algorithm?: "RS256" | "ES256" } = {}): Promise<OidcIssuer> {
  const algorithm = options.algorithm ?? "RS256";
  const published: SigningKey[] = [newKey(algorithm)];
  const stranger = newKey(algorithm);
  const requests = new Map<string, number>();
  /** ACTIONS_ID_TOKEN_REQUEST_TOKEN → the identity whose tokens that "job" gets. */
  const jobs = new Map<string, Omit<GithubActionsOptions, "audience">>();
  let url = "";

  const sign = (claims: Record<string, unknown>, signOptions: SignOptions = {}): string => {
    const key = signOptions.key === "stranger" ? stranger : (published.at(-1) as SigningKey);
    const alg = signOptions.forge ?? algorithm;
    const header = { alg, typ: "JWT", kid: signOptions.kid ?? key.kid };
    const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify({ iss: url, ...claims }))}`;
    if (signOptions.forge === "none") return `${input}.`;
    if (signOptions.forge === "HS256") {
      return `${input}.${createHmac("sha256", JSON.stringify(key.jwk)).update(input).digest("base64url")}`;
    }
    const signature = signBytes("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
    return `${input}.${signature.toString("base64url")}`;
  };

  const times = (issuedAt: number | undefined, ttlSeconds: number | undefined) => {
    const iat = issuedAt ?? Math.floor(Date.now() / 1000);
    return { iat, nbf: iat - 5, exp: iat + (ttlSeconds ?? 300) };
  };

  const githubActionsClaims = (claimOptions: GithubActionsOptions): Record<string, unknown> => {
    const { repository, environment } = claimOptions;
    const ref = claimOptions.ref ?? "refs/heads/main";
    const workflowRef = `${repository}/.github/workflows/${claimOptions.workflow ?? "release.yml"}@${ref}`;
    const sha = randomBytes(20).toString("hex");
    return {
      jti: randomUUID(),
      sub: environment ? `repo:${repository}:environment:${environment}` : `repo:${repository}:ref:${ref}`,
      aud: claimOptions.audience,
      ref,
      sha,
      repository,
      repository_owner: repository.split("/")[0],
      repository_owner_id: "1001",
      repository_id: "2002",
      repository_visibility: claimOptions.visibility ?? "private",
      run_id: "3003",
      run_number: "1",
      run_attempt: "1",
      actor: "octocat",
      actor_id: "4004",
      workflow: "release",
      head_ref: "",
      base_ref: "",
      event_name: "push",
      ref_type: ref.startsWith("refs/tags/") ? "tag" : "branch",
      ref_protected: "true",
      workflow_ref: workflowRef,
      workflow_sha: sha,
      job_workflow_ref: workflowRef,
      job_workflow_sha: sha,
      runner_environment: "github-hosted",
      ...(environment !== undefined && { environment }),
      iss: url,
      ...times(claimOptions.issuedAt, claimOptions.ttlSeconds),
      ...claimOptions.extra,
    };
  };

  const gitlabClaims = (claimOptions: GitlabOptions): Record<string, unknown> => {
    const { project, environment } = claimOptions;
    const ref = claimOptions.ref ?? "main";
    const host = new URL(url).host;
    return {
      jti: randomUUID(),
      sub: `project_path:${project}:ref_type:branch:ref:${ref}`,
      aud: claimOptions.audience,
      namespace_id: "11",
      namespace_path: project.slice(0, project.lastIndexOf("/")),
      project_id: "22",
      project_path: project,
      project_visibility: "private",
      user_id: "33",
      user_login: "gitlab-user",
      pipeline_id: "44",
      pipeline_source: "push",
      job_id: "55",
      ref,
      ref_type: "branch",
      ref_path: `refs/heads/${ref}`,
      ref_protected: "true",
      ci_config_ref_uri: `${host}/${project}//${claimOptions.pipeline ?? ".gitlab-ci.yml"}@refs/heads/${ref}`,
      ci_config_sha: randomBytes(20).toString("hex"),
      runner_environment: "gitlab-hosted",
      ...(environment !== undefined && { environment }),
      iss: url,
      ...times(claimOptions.issuedAt, claimOptions.ttlSeconds),
      ...claimOptions.extra,
    };
  };

  const hanging = new Set<ServerResponse>();
  const handle = (request: IncomingMessage, response: ServerResponse) => {
    const target = new URL(request.url ?? "/", url);
    requests.set(target.pathname, (requests.get(target.pathname) ?? 0) + 1);
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (issuer.mode === "hang") {
      hanging.add(response);
      return;
    }
    if (issuer.mode === "error") return reply(503, { message: "issuer down (test mode)" });
    switch (target.pathname) {
      case "/.well-known/openid-configuration":
        return reply(200, {
          issuer: url,
          jwks_uri: `${url}/.well-known/jwks`,
          subject_types_supported: ["public", "pairwise"],
          response_types_supported: ["id_token"],
          claims_supported: ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository", "environment"],
          id_token_signing_alg_values_supported: [algorithm],
          scopes_supported: ["openid"],
        });
      case "/.well-known/jwks":
        return reply(200, { keys: published.map((key) => key.jwk) });
      case "/github-actions/idtoken": {
        // GitHub's ID-token endpoint: the job's request token as a bearer, the audience in the query.
        const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
        const job = bearer === undefined ? undefined : jobs.get(bearer);
        if (!job) return reply(401, { message: "bad ACTIONS_ID_TOKEN_REQUEST_TOKEN" });
        const audience = target.searchParams.get("audience") ?? `https://github.com/${job.repository.split("/")[0]}`;
        return reply(200, { count: 1, value: sign(githubActionsClaims({ ...job, audience })) });
      }
      default:
        return reply(404, { message: "not found" });
    }
  };

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const close = async () => {
    for (const response of hanging) response.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  const issuer: OidcIssuer = {
    url,
    jwksUri: `${url}/.well-known/jwks`,
    mode: "up",
    requests,
    sign,
    githubActionsClaims,
    gitlabClaims,
    githubActionsEnv(job) {
      const requestToken = randomBytes(16).toString("hex");
      jobs.set(requestToken, job);
      return {
        CI: "true",
        GITHUB_ACTIONS: "true",
        ACTIONS_ID_TOKEN_REQUEST_URL: `${url}/github-actions/idtoken?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
      };
    },
    gitlabEnv(job) {
      return { CI: "true", GITLAB_CI: "true", NPM_ID_TOKEN: sign(gitlabClaims(job)) };
    },
    rotate() {
      published.push(newKey(algorithm));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
  return issuer;
}
