export {
  createLogger,
  createNodeListener,
  type RunningRegistry,
  resolveConfigSecrets,
  type StartOptions,
  startRegistry,
  storageFromConfig,
} from "./adapters/node.js";
export * from "./import/index.js";
export {
  collectGarbage,
  DEFAULT_GC_GRACE_MS,
  type GcOptions,
  type GcReport,
  type Orphan,
  type OrphanKind,
  type SkippedOrphan,
} from "./services/gc.js";
