import { type ConfigOverrides, loadConfig, redactConfig } from "@fw/server";
import { startRegistry } from "@fw/server/node";
import { describeStorage, print, printJson } from "../../output.js";

export interface StartOptions {
  /** `--config FILE`. */
  config?: string;
  overrides: ConfigOverrides;
  json: boolean;
}

/**
 * `fw registry start`: loads the config, listens, prints where. Resolves once listening; the server
 * keeps the process alive and `startRegistry` stops it on SIGINT/SIGTERM.
 */
export async function run(opts: StartOptions): Promise<void> {
  const { config } = await loadConfig({ file: opts.config, overrides: opts.overrides });
  await startRegistry(config, {
    onListening(url) {
      if (opts.json) printJson({ url, storage: redactConfig(config).storage });
      else print(`fw registry listening on ${url} (storage: ${describeStorage(config.storage)})`);
    },
  });
}
