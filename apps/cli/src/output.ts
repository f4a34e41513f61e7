import { isAbsolute, relative, sep } from "node:path";
import type { StorageConfig } from "@fw/server";

/** Writes one block of text to stdout, ending the line. */
export function print(text: string): void {
  process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
}

/** Writes a value as one line of JSON, for `--json`. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** `path` as a person would type it from `cwd`: "./storage" inside it, absolute outside. */
export function displayPath(path: string, cwd = process.cwd()): string {
  const rel = relative(cwd, path);
  if (rel === "") return ".";
  if (rel.startsWith("..") || isAbsolute(rel)) return path;
  return `./${rel.split(sep).join("/")}`;
}

/** "fs ./storage" or "s3 npm-registry/team/ at https://…", never with credentials. */
export function describeStorage(storage: StorageConfig, cwd = process.cwd()): string {
  if (storage.driver === "fs") return `fs ${displayPath(storage.path, cwd)}`;
  const where = storage.endpoint ? ` at ${storage.endpoint}` : ` in ${storage.region}`;
  return `s3 ${storage.bucket}${storage.prefix ? `/${storage.prefix}` : ""}${where}`;
}
