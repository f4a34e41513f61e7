export { type HtpasswdEntry, type HtpasswdProblem, parseHtpasswd } from "./htpasswd.js";
export {
  findVerdaccioPackages,
  type ImportedPackage,
  type ImportedUser,
  type ImportProblem,
  type ImportReport,
  importHtpasswdUsers,
  importVerdaccio,
  importVerdaccioPackage,
  type PackageImportOptions,
  type PackageOutcome,
  type ReportPart,
  type SourcePackage,
  type VerdaccioImportOptions,
  verifyDigests,
} from "./verdaccio.js";
export {
  type ConvertedConfig,
  type ConvertOptions,
  convertVerdaccioConfig,
  htpasswdPath,
  type NotConverted,
  parseInterval,
  readVerdaccioYaml,
  renderConvertedConfig,
} from "./verdaccio-config.js";
