/**
 * The registry on Bun: `startRegistry` serves with `Bun.serve` there (the same function as
 * `@fw/server/node`, which picks the runtime's server), and `createBunFetch` is the handler for
 * embedding the registry in a `Bun.serve` of your own.
 */
export { type BunServer, createBunFetch } from "./adapters/bun.js";
export {
  createLogger,
  type RunningRegistry,
  resolveConfigSecrets,
  type StartOptions,
  startRegistry,
  storageFromConfig,
} from "./adapters/node.js";
