export {
  createLogger,
  createNodeListener,
  type RunningRegistry,
  resolveConfigSecrets,
  type StartOptions,
  startRegistry,
  storageFromConfig,
} from "./adapters/node.js";
