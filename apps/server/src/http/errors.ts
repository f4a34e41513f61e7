import { isAuthError } from "@fw/auth";
import { StorageError } from "@fw/storage-r2";

/** Domain error codes. Services throw these; only this module knows HTTP statuses. */
export type RegistryErrorCode =
  | "E_BAD_REQUEST"
  | "E_INVALID_NAME"
  | "E_INVALID_VERSION"
  | "E_INTEGRITY"
  | "E_UNAUTHORIZED"
  | "E_OTP_REQUIRED"
  | "E_FORBIDDEN"
  | "E_NOT_FOUND"
  | "E_VERSION_EXISTS"
  | "E_CONFLICT"
  | "E_TOO_LARGE"
  | "E_UNSUPPORTED_MEDIA_TYPE"
  | "E_RATE_LIMITED"
  | "E_UNAVAILABLE"
  /** An uplink (upstream registry) failed and nothing usable was cached. */
  | "E_UPSTREAM"
  /** An uplink did not answer in time and nothing usable was cached. */
  | "E_UPSTREAM_TIMEOUT";

export class RegistryError extends Error {
  override readonly name = "RegistryError";
  readonly code: RegistryErrorCode;
  /** Extra response headers (e.g. `WWW-Authenticate`). */
  readonly headers: Record<string, string> | undefined;
  constructor(
    code: RegistryErrorCode,
    message: string,
    options: { cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.code = code;
    this.headers = options.headers;
  }
}

const STATUS: Record<RegistryErrorCode, number> = {
  E_BAD_REQUEST: 400,
  E_INVALID_NAME: 400,
  E_INVALID_VERSION: 400,
  E_INTEGRITY: 400,
  E_UNAUTHORIZED: 401,
  E_OTP_REQUIRED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_VERSION_EXISTS: 409,
  E_CONFLICT: 409,
  E_TOO_LARGE: 413,
  E_UNSUPPORTED_MEDIA_TYPE: 415,
  E_RATE_LIMITED: 429,
  E_UNAVAILABLE: 503,
  E_UPSTREAM: 502,
  E_UPSTREAM_TIMEOUT: 504,
};

/** A `Retry-After` header for a wait of `ms` (whole seconds, at least 1). */
export function retryAfter(ms: number): Record<string, string> {
  return { "retry-after": String(Math.max(1, Math.ceil(ms / 1000))) };
}

export interface ErrorLogger {
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The one place errors become responses: npm-style `{"error": "..."}` bodies with the right status.
 * Unknown errors are logged and answered with a 500 that reveals nothing about them.
 */
export function errorResponse(error: unknown, logger: ErrorLogger, requestId?: string): Response {
  let status: number;
  let message: string;
  let headers: Record<string, string> = {};
  if (error instanceof RegistryError) {
    status = STATUS[error.code];
    message = error.message;
    headers = error.headers ?? {};
  } else if (isAuthError(error)) {
    // @fw/auth's codes are a subset of ours, so its errors go out as they are.
    status = STATUS[error.code];
    message = error.message;
    if (error.retryAfterMs !== undefined) headers = retryAfter(error.retryAfterMs);
  } else if (error instanceof StorageError) {
    switch (error.code) {
      case "E_PRECONDITION":
        status = 409;
        message = "the document changed while it was being updated; please retry";
        break;
      case "E_INVALID_KEY":
        status = 400;
        message = "invalid package name or file name";
        break;
      case "E_UNAVAILABLE":
        status = 503;
        message = "storage is unavailable; please retry";
        logger.error("storage unavailable", { err: error.message, requestId });
        headers["retry-after"] = "1";
        break;
      default:
        status = 500;
        message = "internal server error";
        logger.error("storage failure", { err: error.message, code: error.code, requestId });
    }
  } else if (error instanceof URIError) {
    // A malformed percent-escape in a path or query that some decoder met: the request's fault.
    status = 400;
    message = "malformed percent-encoding in the request";
  } else {
    status = 500;
    message = "internal server error";
    logger.error("unhandled error", {
      err: error instanceof Error ? (error.stack ?? error.message) : String(error),
      requestId,
    });
  }
  return new Response(JSON.stringify({ error: message }), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}
