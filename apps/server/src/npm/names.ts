import semver from "semver";
import validateName from "validate-npm-package-name";
import { RegistryError } from "../http/errors.js";

/** What a package URL path addresses, after the package name. */
export type PackageTarget =
  | { kind: "packument" }
  | { kind: "version"; spec: string }
  | { kind: "tarball"; filename: string }
  | { kind: "revision"; rev: string }
  | { kind: "tarball-revision"; filename: string; rev: string };

export interface PackagePath {
  name: string;
  target: PackageTarget;
}

/**
 * Splits `/<name>[/...]` where scoped names come as `@scope/name` or `@scope%2fname` (npm-registry-fetch
 * escapes the slash; yarn and bun do not). Returns undefined for paths that are not package URLs.
 */
export function parsePackagePath(pathname: string): PackagePath | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    throw new RegistryError("E_BAD_REQUEST", "malformed URL encoding");
  }
  const segments = decoded.replace(/^\/+/, "").split("/");
  if (segments.length === 0 || segments[0] === "" || segments[0] === "-") return undefined;
  let name: string;
  let rest: string[];
  if (segments[0]?.startsWith("@")) {
    if (segments.length < 2) return undefined;
    name = `${segments[0]}/${segments[1]}`;
    rest = segments.slice(2);
  } else {
    name = segments[0] as string;
    rest = segments.slice(1);
  }
  assertReadableName(name);
  if (rest.length === 0 || (rest.length === 1 && rest[0] === "")) return { name, target: { kind: "packument" } };
  if (rest.length === 1) return { name, target: { kind: "version", spec: rest[0] as string } };
  if (rest.length === 2 && rest[0] === "-rev") return { name, target: { kind: "revision", rev: rest[1] as string } };
  if (rest.length === 2 && rest[0] === "-")
    return { name, target: { kind: "tarball", filename: checkFilename(rest[1] as string) } };
  if (rest.length === 4 && rest[0] === "-" && rest[2] === "-rev") {
    return {
      name,
      target: { kind: "tarball-revision", filename: checkFilename(rest[1] as string), rev: rest[3] as string },
    };
  }
  throw new RegistryError("E_NOT_FOUND", "not found");
}

function checkFilename(filename: string): string {
  if (!/^[A-Za-z0-9._~+-]+\.tgz$/.test(filename) || filename.startsWith(".")) {
    throw new RegistryError("E_NOT_FOUND", "not found");
  }
  return filename;
}

/** Names that may be read (old packages had capitals); anything else is not a package at all. */
export function assertReadableName(name: string): void {
  const result = validateName(name);
  if (!result.validForOldPackages || name.length > 214 || name.includes("..")) {
    throw new RegistryError("E_INVALID_NAME", `invalid package name "${truncate(name)}"`);
  }
}

/**
 * npm's rules for new packages (lowercase, URL-safe, ≤ 214 characters), except that names of Node core
 * modules are accepted: real dependency trees use packages such as `punycode` and `string_decoder`,
 * and a private registry that hosts or imports them must take their publishes.
 */
export function assertPublishableName(name: string): void {
  const result = validateName(name);
  if (result.validForNewPackages) return;
  const problems = [
    ...(result.errors ?? []),
    ...(result.warnings ?? []).filter((warning) => !warning.endsWith("is a core module name")),
  ];
  if (problems.length > 0 || !result.validForOldPackages) {
    throw new RegistryError("E_INVALID_NAME", `invalid package name "${truncate(name)}": ${problems.join("; ")}`);
  }
}

export function assertVersion(version: unknown): string {
  if (typeof version !== "string" || semver.valid(version) !== version) {
    throw new RegistryError(
      "E_INVALID_VERSION",
      `invalid version "${truncate(String(version))}": expected a semver version like 1.2.3`,
    );
  }
  return version;
}

/** Names every plain object inherits: as tags they would read as existing on any document. */
const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype));

export function assertTagName(tag: string): void {
  // A tag that parses as a version range would shadow versions in `npm install pkg@<tag>`.
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(tag) || semver.validRange(tag) !== null) {
    throw new RegistryError("E_BAD_REQUEST", `invalid dist-tag "${truncate(tag)}": tags must not be version ranges`);
  }
  if (INHERITED.has(tag)) throw new RegistryError("E_BAD_REQUEST", `invalid dist-tag "${tag}": a reserved word`);
}

/** `@scope/name` → `name`: the file name part of tarballs. */
export function baseName(name: string): string {
  return name.startsWith("@") ? name.slice(name.indexOf("/") + 1) : name;
}

export function tarballFilename(name: string, version: string): string {
  return `${baseName(name)}-${version}.tgz`;
}

/** The version a tarball file name of this package stands for (`name-1.2.3.tgz` → `1.2.3`), `""` when it is not one of its files. */
export function tarballVersion(name: string, filename: string): string {
  const prefix = `${baseName(name)}-`;
  return filename.startsWith(prefix) && filename.endsWith(".tgz") ? filename.slice(prefix.length, -".tgz".length) : "";
}

/** URL path segment for a name: scoped names keep their `@` and escape the slash, like npm does. */
export function encodeName(name: string): string {
  return name.startsWith("@") ? `@${encodeURIComponent(name.slice(1))}` : encodeURIComponent(name);
}

export function truncate(value: string, max = 60): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
