import type { ConfigIssue } from "./types.js";

/**
 * A config the registry refuses to start with. `issues` lists every problem found; the message puts
 * them on one line (`storage.bucket: expected a non-empty string; listen.port: …`) so a CLI can print
 * it as is.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly code = "E_CONFIG";
  readonly issues: ConfigIssue[];
  /** The config file the issues are about, when there is one. */
  readonly file: string | undefined;

  constructor(issues: ConfigIssue[], options: { file?: string; cause?: unknown } = {}) {
    super(formatMessage(issues, options.file), { cause: options.cause });
    this.issues = issues;
    this.file = options.file;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return issue.path ? `${issue.path}: ${issue.message}` : issue.message;
}

function formatMessage(issues: ConfigIssue[], file: string | undefined): string {
  const where = file ? ` (${file})` : "";
  return `invalid config${where}: ${issues.map(formatIssue).join("; ")}`;
}

export function isConfigError(error: unknown): error is ConfigError {
  return error instanceof ConfigError;
}
