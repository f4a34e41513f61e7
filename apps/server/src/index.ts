export { createRegistry, type Registry, type RegistryDeps } from "./app.js";
export * from "./config/index.js";
export type { Logger, RequestInfo } from "./context.js";
export { RegistryError, type RegistryErrorCode } from "./http/errors.js";
export { DEFAULT_METRICS_ALLOW_FROM, type MetricsAccess, type OpsOptions } from "./routes/ops.js";
export type { FastReadParts, FastReadRequest, ResponseParts } from "./routes/packages.js";
export { type CacheLookup, Metrics, type MetricsOptions } from "./services/metrics.js";
