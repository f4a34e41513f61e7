import { StorageError } from "./errors.js";

/** Longest accepted key, in UTF-8 bytes (S3's and R2's limit). */
export const MAX_KEY_BYTES = 1024;
/** Longest accepted path segment, in UTF-8 bytes (the usual file-name limit, so fs can store any key). */
export const MAX_SEGMENT_BYTES = 255;
/** First path segment reserved for drivers' own bookkeeping (the fs driver's temp files and locks). */
export const RESERVED_SEGMENT = ".fw";

const encoder = new TextEncoder();
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what we reject
const FORBIDDEN = /[\u0000-\u001f\u007f\\]/;

function describe(key: unknown): string {
  if (typeof key !== "string") return typeof key;
  const shown = key.length > 80 ? `${key.slice(0, 80)}…` : key;
  return JSON.stringify(shown);
}

function check(key: string, asPrefix: boolean): string | undefined {
  if (!asPrefix && key.length === 0) return "is empty";
  if (encoder.encode(key).byteLength > MAX_KEY_BYTES) return `is longer than ${MAX_KEY_BYTES} bytes`;
  if (FORBIDDEN.test(key)) return "contains a control character, NUL or backslash";
  if (key.startsWith("/")) return "starts with /";
  const segments = key.split("/");
  for (const [index, segment] of segments.entries()) {
    const last = index === segments.length - 1;
    if (segment === "" && !(asPrefix && last)) return "has an empty path segment";
    if (segment === "." || segment === "..") return `has a "${segment}" path segment`;
    if (encoder.encode(segment).byteLength > MAX_SEGMENT_BYTES) {
      return `has a path segment longer than ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  if (segments[0] === RESERVED_SEGMENT && (segments.length > 1 || !asPrefix)) {
    return `uses the reserved "${RESERVED_SEGMENT}/" prefix`;
  }
  return undefined;
}

/**
 * Throws `E_INVALID_KEY` unless `key` is a safe object key: 1–1024 UTF-8 bytes, `/`-separated
 * segments that are non-empty, not `.` or `..`, at most 255 bytes, with no control characters, NUL or
 * backslash, not starting with `/`. Every driver applies the same rules, so data moves between them.
 */
export function validateKey(driver: string, key: unknown): string {
  const problem = typeof key === "string" ? check(key, false) : "is not a string";
  if (problem) throw new StorageError("E_INVALID_KEY", `key ${describe(key)} ${problem}`, { driver });
  return key as string;
}

/** Like `validateKey`, for list prefixes: may be empty and may end with `/` or part of a segment. */
export function validatePrefix(driver: string, prefix: unknown): string {
  if (prefix === undefined) return "";
  const problem = typeof prefix === "string" ? check(prefix, true) : "is not a string";
  if (problem) throw new StorageError("E_INVALID_KEY", `prefix ${describe(prefix)} ${problem}`, { driver });
  return prefix as string;
}

/** Compares keys by their UTF-8 bytes, the order S3 and R2 list in. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  // UTF-16 order equals UTF-8 byte order except around surrogates; fall back to bytes only then.
  if (/[\ud800-\udfff\ue000-\uffff]/.test(a + b)) {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
    return x.length - y.length;
  }
  return a < b ? -1 : 1;
}
