/**
 * Why an auth operation was refused. The codes are the registry's own (`apps/server/src/http/errors.ts`
 * maps them to statuses), so the server can rethrow an `AuthError` as it is or copy its code.
 */
export type AuthErrorCode =
  /** Input the caller can fix: bad user name, short password, bad CIDR, unknown policy entry. */
  | "E_BAD_REQUEST"
  /** No valid credentials: unknown, revoked or expired token, wrong password, disabled account. */
  | "E_UNAUTHORIZED"
  /** A second factor is needed (or the one given was wrong or already used). */
  | "E_OTP_REQUIRED"
  /** Valid credentials that may not do this. */
  | "E_FORBIDDEN"
  /** Missing, or hidden from this caller so its existence does not leak. */
  | "E_NOT_FOUND"
  /** Already exists, or changed meanwhile. */
  | "E_CONFLICT"
  /** Too many attempts; `retryAfterMs` says when to come back. */
  | "E_RATE_LIMITED"
  /** A service this depends on (an OIDC issuer's keys) could not be reached in time: retry later. */
  | "E_UNAVAILABLE";

export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly code: AuthErrorCode;
  /** For `E_RATE_LIMITED`: how long to wait, in ms (the server turns it into `Retry-After`). */
  readonly retryAfterMs: number | undefined;

  constructor(code: AuthErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export function isAuthError(error: unknown, code?: AuthErrorCode): error is AuthError {
  return error instanceof AuthError && (code === undefined || error.code === code);
}
