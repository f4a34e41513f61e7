import { SecretsError } from "./errors.js";

const SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$/;
const MAX_SEGMENTS = 8;

/**
 * Secret names are `/`-separated paths such as `uplinks/public/token` or `storage/r2-secret-key`: up to 8
 * segments of letters, digits, `.`, `_` and `-`, each starting with a letter, digit or `_`. No `@`, so
 * the vault's own `@meta.json` and `@v/` keys never collide with a name.
 */
export function validateSecretName(name: unknown): string {
  const segments = typeof name === "string" ? name.split("/") : [];
  if (
    typeof name !== "string" ||
    segments.length > MAX_SEGMENTS ||
    !segments.every((segment) => SEGMENT.test(segment) && !/^\.+$/.test(segment))
  ) {
    throw new SecretsError(
      "E_BAD_REQUEST",
      `${typeof name === "string" ? JSON.stringify(name.slice(0, 120)) : typeof name} is not a secret name: use up to ${MAX_SEGMENTS} /-separated parts of letters, digits, ".", "_" and "-", such as uplinks/public/token`,
    );
  }
  return name;
}

export function isSecretName(name: unknown): name is string {
  try {
    validateSecretName(name);
    return true;
  } catch {
    return false;
  }
}

const UNITS: Record<string, number> = { h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
export const DURATION = /^([1-9]\d{0,4})\s*([hdw])$/;

/** `"90d"`, `"12h"`, `"2w"` → milliseconds; throws naming `origin` for anything else. */
export function parseDuration(text: string, origin = "rotateEvery"): number {
  const match = DURATION.exec(text.trim());
  if (!match) {
    throw new SecretsError(
      "E_BAD_REQUEST",
      `${origin}: "${text}" is not a duration; use hours, days or weeks: 12h, 90d, 2w`,
    );
  }
  return Number(match[1]) * (UNITS[match[2] as string] as number);
}
