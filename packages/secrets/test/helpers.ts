import { inspect } from "node:util";
import type { UserIdentity } from "@fw/auth";
import type { StorageDriver } from "@fw/storage-r2";
import { expect } from "vitest";
import { isSecretsError, type SecretsError, type SecretsErrorCode } from "../src/errors.js";
import { MasterKey, type MasterKeyRing } from "../src/master-key.js";
import type { MasterKeyProvider, StoredKeys } from "../src/providers/types.js";

/** A provider that keeps its keys in this object, for tests of rotation and provider chains. */
export function memoryProvider(
  initial: StoredKeys | null = null,
): MasterKeyProvider & { keys: StoredKeys | null; writes: number } {
  const provider = {
    name: "file" as const,
    keys: initial,
    writes: 0,
    describe: () => "the test's memory provider",
    load: async () => provider.keys && { current: provider.keys.current, previous: [...provider.keys.previous] },
    unavailableReason: async () => undefined,
    store: async (current: MasterKey, previous?: MasterKey) => {
      provider.writes++;
      provider.keys = { current, previous: previous ? [previous] : [] };
    },
    dropPrevious: async () => {
      if (provider.keys) provider.keys = { ...provider.keys, previous: [] };
    },
    remove: async () => {
      provider.keys = null;
    },
  };
  return provider;
}

export async function ringOf(key?: MasterKey, previous: MasterKey[] = []): Promise<MasterKeyRing> {
  return { current: key ?? (await MasterKey.generate()), previous, source: "the test's key ring" };
}

export function user(
  name: string,
  options: { roles?: string[]; teams?: string[]; environment?: string; admin?: boolean } = {},
): UserIdentity {
  return {
    kind: "user",
    name,
    admin: options.admin ?? false,
    roles: options.roles ?? [],
    teams: options.teams ?? [],
    tfaMode: null,
    via: options.environment ? "token" : "session",
    ...(options.environment && {
      token: {
        key: `key-of-${name}`,
        prefix: "fw_abc",
        readonly: false,
        permission: "read-write" as const,
        packages: [],
        scopes: [],
        environment: options.environment,
        bypass2fa: false,
      },
    }),
  };
}

/** Awaits a promise expected to reject with a SecretsError of `code`, and returns the error. */
export async function expectSecretsError(promise: Promise<unknown>, code: SecretsErrorCode): Promise<SecretsError> {
  try {
    await promise;
  } catch (error) {
    if (!isSecretsError(error)) throw error;
    expect(error.code, error.message).toBe(code);
    return error;
  }
  throw new Error(`expected a SecretsError ${code}, but the call succeeded`);
}

/** Everything an error would show in a log: message, stack, causes and `util.inspect`. */
export function everythingShown(error: unknown): string {
  const parts: string[] = [inspect(error, { depth: 10 })];
  for (let at: unknown = error; at instanceof Error; at = at.cause) parts.push(at.message, at.stack ?? "");
  try {
    parts.push(JSON.stringify(error));
  } catch {}
  return parts.join("\n");
}

const decoder = new TextDecoder();

/** Every object under `prefix` as text. */
export async function dump(storage: StorageDriver, prefix = ""): Promise<Map<string, string>> {
  const objects = new Map<string, string>();
  let cursor: string | undefined;
  do {
    const page = await storage.list({ prefix, ...(cursor !== undefined && { cursor }) });
    for (const info of page.objects) {
      const object = await storage.get(info.key);
      if (object) objects.set(info.key, decoder.decode(object.body));
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return objects;
}

/** The forms a leaked value could take in stored bytes: as is, base64, base64url, hex. */
export function encodings(value: string): string[] {
  const bytes = Buffer.from(value, "utf8");
  return [value, bytes.toString("base64"), bytes.toString("base64url"), bytes.toString("hex")].map((form) =>
    // Base64 of the same bytes at another alignment differs at the edges; the middle still gives it away.
    form.length > 24 ? form.slice(4, -4) : form,
  );
}

/** Fails naming the first place one of `values` shows up in `haystack` in any of its encodings. */
export function expectNoPlaintext(haystack: Iterable<[string, string]> | string, values: readonly string[]): void {
  const entries: Iterable<[string, string]> = typeof haystack === "string" ? [["(text)", haystack]] : haystack;
  for (const [where, text] of entries) {
    for (const value of values) {
      for (const form of encodings(value)) {
        if (text.includes(form)) throw new Error(`a secret value appears in ${where}`);
      }
    }
  }
}
