import { MasterKey } from "../master-key.js";
import type { MasterKeyProvider, StoredKeys } from "./types.js";

export const MASTER_KEY_VARIABLE = "FW_SECRETS_MASTER_KEY";
export const PREVIOUS_MASTER_KEY_VARIABLE = "FW_SECRETS_PREVIOUS_MASTER_KEY";

export interface EnvProviderOptions {
  /** Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Default `FW_SECRETS_MASTER_KEY`. */
  variable?: string;
  /** Keys still accepted for unwrapping during a rotation, comma-separated. Default `FW_SECRETS_PREVIOUS_MASTER_KEY`. */
  previousVariable?: string;
}

/**
 * The master key from an environment variable: for servers and CI, where a deployment's secret store
 * injects it. Read-only: fw cannot change a variable for the next process, so `init` and master-key
 * rotation print what to set instead.
 */
export function envProvider(options: EnvProviderOptions = {}): MasterKeyProvider {
  const env = options.env ?? process.env;
  const variable = options.variable ?? MASTER_KEY_VARIABLE;
  const previousVariable = options.previousVariable ?? PREVIOUS_MASTER_KEY_VARIABLE;
  return {
    name: "env",
    describe: () => variable,

    async load(): Promise<StoredKeys | null> {
      const text = env[variable];
      if (text === undefined || text.trim() === "") return null;
      const current = await MasterKey.parse(text, variable);
      const previous = await Promise.all(
        (env[previousVariable] ?? "")
          .split(/[\s,]+/)
          .filter(Boolean)
          .map((part, index) => MasterKey.parse(part, `${previousVariable} (key ${index + 1})`)),
      );
      return { current, previous: previous.filter((key) => key.id !== current.id) };
    },

    async unavailableReason(): Promise<string | undefined> {
      return `fw cannot set ${variable} for later processes: keep the key in your deployment's secret store and set it there`;
    },
  };
}
