export {
  createLogger,
  createNodeListener,
  type RunningRegistry,
  type StartOptions,
  startRegistry,
  storageFromConfig,
} from "./adapters/node.js";
