/** Machine-readable reasons a storage call failed. */
export type StorageErrorCode =
  /** A conditional write or delete found another version (or none, or one that should not exist). */
  | "E_PRECONDITION"
  /** The backend could not be reached or kept failing (network, timeouts, 5xx, throttling). */
  | "E_UNAVAILABLE"
  /** The key is not acceptable (empty, too long, `..`, NUL, escapes the root…). */
  | "E_INVALID_KEY"
  /** An option or body is not acceptable (bad range, negative limit, body of the wrong size…). */
  | "E_INVALID_ARGUMENT"
  /** A range starts beyond the end of the object. */
  | "E_RANGE"
  /** The backend refused the credentials or the operation. */
  | "E_PERMISSION"
  /** The caller's AbortSignal fired. */
  | "E_ABORTED"
  /** Anything else; `cause` has the details. */
  | "E_INTERNAL";

export interface StorageErrorOptions {
  driver: string;
  key?: string;
  cause?: unknown;
  /** Whether repeating the operation (after re-reading, for preconditions) may succeed. */
  retryable?: boolean;
}

export class StorageError extends Error {
  override readonly name = "StorageError";
  readonly code: StorageErrorCode;
  readonly driver: string;
  readonly key: string | undefined;
  readonly retryable: boolean;

  constructor(code: StorageErrorCode, message: string, options: StorageErrorOptions) {
    super(`[storage:${options.driver}] ${message}`, { cause: options.cause });
    this.code = code;
    this.driver = options.driver;
    this.key = options.key;
    this.retryable = options.retryable ?? code === "E_UNAVAILABLE";
  }
}

export function isStorageError(error: unknown, code?: StorageErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** Turns an aborted signal's reason into an `E_ABORTED` error; other errors pass through. */
export function abortError(driver: string, key: string | undefined, signal: AbortSignal): StorageError {
  return new StorageError("E_ABORTED", `operation aborted${key ? ` on "${key}"` : ""}`, {
    driver,
    key,
    cause: signal.reason,
  });
}

export function checkAborted(driver: string, key: string | undefined, signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(driver, key, signal);
}
