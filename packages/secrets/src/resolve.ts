import type { Identity } from "@fw/auth";
import { isSecretsError, SecretsError } from "./errors.js";
import { isSecretName } from "./names.js";

/** Config strings of this form are replaced by a secret's value: `secret:<name>` or `secret:<name>@<version>`. */
export const SECRET_REFERENCE_PREFIX = "secret:";

export interface SecretReference {
  /** Dotted path of the value in the config (`uplinks.public.token`, `upstreams.0.token`). */
  path: string;
  name: string;
  /** A pinned version; absent means the latest. */
  version?: number;
}

/** What `resolveSecretReferences` needs of a vault. */
export interface SecretReader {
  getSecret(name: string, options?: { version?: number; as?: Identity }): Promise<string>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function join(path: string, key: string | number): string {
  return path === "" ? String(key) : `${path}.${key}`;
}

function parseReference(text: string, path: string): SecretReference | undefined {
  if (!text.startsWith(SECRET_REFERENCE_PREFIX)) return undefined;
  const match = /^([^@]*)(?:@(\d+))?$/.exec(text.slice(SECRET_REFERENCE_PREFIX.length));
  const name = match?.[1];
  const version = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !isSecretName(name) || version === 0) {
    throw new SecretsError(
      "E_BAD_REQUEST",
      `${path || "(config)"}: "${text.slice(0, 120)}" is not a secret reference; write secret:<name> or secret:<name>@<version>, e.g. secret:uplinks/public/token`,
    );
  }
  return { path, name, ...(version !== undefined && { version }) };
}

/** Every `secret:` reference in a parsed config (plain objects and arrays), in document order. */
export function findSecretReferences(value: unknown, root = ""): SecretReference[] {
  const found: SecretReference[] = [];
  const walk = (node: unknown, path: string) => {
    if (typeof node === "string") {
      const reference = parseReference(node, path);
      if (reference) found.push(reference);
    } else if (Array.isArray(node)) {
      for (const [index, item] of node.entries()) walk(item, join(path, index));
    } else if (isPlainObject(node)) for (const [key, item] of Object.entries(node)) walk(item, join(path, key));
  };
  walk(value, root);
  return found;
}

/**
 * A copy of a parsed config with every `secret:<name>` string replaced by the secret's value (the latest,
 * or `@<version>`'s). Call it at start-up, after parsing and before use. Secrets that do not exist or
 * were deleted make one `E_MISSING_REFERENCE` error naming each dotted path and secret; other failures
 * (no master key, wrong key, tampering) keep their code and gain the path. The input is not changed.
 */
export async function resolveSecretReferences<T>(
  value: T,
  vault: SecretReader,
  options: { root?: string; as?: Identity } = {},
): Promise<T> {
  const references = findSecretReferences(value, options.root ?? "");
  if (references.length === 0) return value;
  const values = new Map<string, string>();
  const missing: string[] = [];
  for (const reference of references) {
    const id = `${reference.name}@${reference.version ?? ""}`;
    if (values.has(id)) continue;
    try {
      values.set(
        id,
        await vault.getSecret(reference.name, {
          ...(reference.version !== undefined && { version: reference.version }),
          ...(options.as && { as: options.as }),
        }),
      );
    } catch (error) {
      const label = `${reference.path} (secret:${reference.name}${reference.version ? `@${reference.version}` : ""})`;
      if (isSecretsError(error, "E_NOT_FOUND")) {
        missing.push(`${label}: ${error.message}`);
        continue;
      }
      if (isSecretsError(error)) {
        throw new SecretsError(error.code, `${label}: ${error.message}`, {
          cause: error,
          secret: reference.name,
          ...(error.version !== undefined && { version: error.version }),
        });
      }
      throw error;
    }
  }
  if (missing.length > 0) {
    throw new SecretsError(
      "E_MISSING_REFERENCE",
      `the config refers to secrets that cannot be read: ${missing.join("; ")}. Create them with \`fw secrets set <name>\``,
    );
  }
  const replace = (node: unknown, path: string): unknown => {
    if (typeof node === "string") {
      const reference = parseReference(node, path);
      return reference ? values.get(`${reference.name}@${reference.version ?? ""}`) : node;
    }
    if (Array.isArray(node)) return node.map((item, index) => replace(item, join(path, index)));
    if (isPlainObject(node)) {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, replace(item, join(path, key))]));
    }
    return node;
  };
  return replace(value, options.root ?? "") as T;
}
