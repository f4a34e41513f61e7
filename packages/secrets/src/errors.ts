/**
 * Why a vault operation failed. Messages name the secret, the version and what to do; they never hold a
 * value, a data key or a master key, so errors may be logged as they are.
 */
export type SecretsErrorCode =
  /** Input the caller can fix: a bad name, an empty value, an unknown provider, a bad policy. */
  | "E_BAD_REQUEST"
  /** No such secret or version, or the secret was deleted. */
  | "E_NOT_FOUND"
  /** Already exists (set on a live secret), or changed meanwhile beyond retrying. */
  | "E_CONFLICT"
  /** The policy does not let this caller read or write this secret. */
  | "E_FORBIDDEN"
  /** No provider holds a master key: run `fw secrets init`. */
  | "E_NO_MASTER_KEY"
  /** The loaded master key is not the one the vault or this version was encrypted with. */
  | "E_WRONG_MASTER_KEY"
  /** Stored data fails its authentication: altered, damaged, or moved from another secret or version. */
  | "E_INTEGRITY"
  /** The OS keychain cannot be reached or refused the operation. */
  | "E_KEYCHAIN"
  /** The key file is missing its protections (readable by others, not owned by this user) or unreadable. */
  | "E_KEY_FILE"
  /** Config values refer to secrets that do not exist. */
  | "E_MISSING_REFERENCE";

export class SecretsError extends Error {
  override readonly name = "SecretsError";
  readonly code: SecretsErrorCode;
  /** The secret the error is about, when there is one. */
  readonly secret: string | undefined;
  readonly version: number | undefined;

  constructor(
    code: SecretsErrorCode,
    message: string,
    options: { cause?: unknown; secret?: string; version?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.secret = options.secret;
    this.version = options.version;
  }
}

export function isSecretsError(error: unknown, code?: SecretsErrorCode): error is SecretsError {
  return error instanceof SecretsError && (code === undefined || error.code === code);
}
