export { isSecretsError, SecretsError, type SecretsErrorCode } from "./errors.js";
export {
  ALGORITHM,
  type EncryptedValue,
  META_FORMAT,
  type MetaFile,
  VAULT_FORMAT,
  type VaultFile,
  VERSION_FORMAT,
  type VersionFile,
  type VersionOp,
  type WrappedKey,
} from "./format.js";
export { renderVersionGraph } from "./graph.js";
export { MASTER_KEY_PREFIX, MasterKey, type MasterKeyRing } from "./master-key.js";
export { isSecretName, parseDuration, validateSecretName } from "./names.js";
export {
  ADMINS_ONLY,
  authorizeSecret,
  parseSecretsPolicy,
  rotationFor,
  SECRET_ACTIONS,
  type SecretAction,
  type SecretDecision,
  type SecretRule,
  type SecretsConfig,
  type SecretsPolicy,
  secretsConfigSchema,
  secretsJsonSchema,
} from "./policy.js";
export {
  type EnvProviderOptions,
  envProvider,
  MASTER_KEY_VARIABLE,
  PREVIOUS_MASTER_KEY_VARIABLE,
} from "./providers/env.js";
export {
  defaultKeyFilePath,
  KEY_FILE_VARIABLE,
  type KeyFileProviderOptions,
  keyFileProvider,
} from "./providers/file.js";
export {
  type DefaultProvidersOptions,
  defaultProviders,
  type InitResult,
  initMasterKey,
  KEYCHAIN_SERVICE_VARIABLE,
  type LoadedMasterKeys,
  loadMasterKeys,
  type MasterKeyProvider,
  PROVIDERS_VARIABLE,
  type ProviderName,
  parseProviderOrder,
  type StoredKeys,
} from "./providers/index.js";
export { type KeychainProviderOptions, keychainProvider } from "./providers/keychain.js";
export { PROVIDER_NAMES } from "./providers/types.js";
export {
  findSecretReferences,
  resolveSecretReferences,
  SECRET_REFERENCE_PREFIX,
  type SecretReader,
  type SecretReference,
} from "./resolve.js";
export {
  type CallOptions,
  type DeleteResult,
  type DueSecret,
  generateSecretValue,
  MAX_VALUE_BYTES,
  type MasterKeyRotation,
  operatorIdentity,
  type SecretSummary,
  SecretsVault,
  type SecretsVaultOptions,
  type SecretVersion,
} from "./vault.js";
