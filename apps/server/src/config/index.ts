export { ConfigError, isConfigError } from "./errors.js";
export {
  type ConfigOverrides,
  DEFAULT_CONFIG_FILE,
  DOTENV_FILE,
  type LoadConfigOptions,
  type LoadedConfig,
  loadConfig,
  readConfigFile,
} from "./load.js";
export { REDACTED, redactConfig, type SerializeConfigOptions, serializeConfig } from "./output.js";
export { type ParseConfigOptions, parseConfig } from "./parse.js";
export { configJsonSchema, DEFAULTS, type FwConfigInput } from "./schema.js";
export { type ConfigTemplateOptions, renderConfigTemplate } from "./template.js";
export type {
  ConfigIssue,
  FsStorageConfig,
  FwConfig,
  LogFormat,
  LogLevel,
  S3StorageConfig,
  StorageConfig,
} from "./types.js";
export { type TakedownMode, UPLINK_DEFAULTS, type UplinkAuthConfig, type UplinkConfig } from "./uplinks.js";
