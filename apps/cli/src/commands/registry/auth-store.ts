import { type Policy, parsePolicy, TokenStore, UserStore } from "@fw/auth";
import { loadConfig } from "@fw/server";
import { storageFromConfig } from "@fw/server/node";
import type { StorageDriver } from "@fw/storage-r2";

export interface AuthStores {
  storage: StorageDriver;
  users: UserStore;
  tokens: TokenStore;
  policy: Policy;
}

/**
 * The registry's users, tokens and access policy, read straight from the storage its config names
 * (`--config`, else FW_CONFIG, else ./fw.config.json5): these commands work with the server stopped.
 */
export async function openAuth(configFile: string | undefined): Promise<AuthStores> {
  const { config } = await loadConfig({ file: configFile, overrides: {} });
  const storage = await storageFromConfig(config);
  const users = new UserStore(storage);
  // No cache: every command answers from storage as it is now.
  const tokens = new TokenStore(storage, { users, cacheMs: 0 });
  return { storage, users, tokens, policy: parsePolicy(config.access ?? {}) };
}

/** Reads a secret from stdin (`--password-stdin`), without the trailing newline. */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}
