import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh temp folder, removed by `await using` (or by calling `remove`). */
export async function tempDir(
  prefix = "fw-test-",
): Promise<AsyncDisposable & { path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const remove = () => rm(path, { recursive: true, force: true });
  return { path, remove, [Symbol.asyncDispose]: remove };
}

export {
  type GithubActionsOptions,
  type GitlabOptions,
  type OidcIssuer,
  type SignOptions,
  startOidcIssuer,
} from "./oidc-issuer.js";
