import { readFile } from "node:fs/promises";
import type { PackumentLike } from "@fw/semver-graph";
import { escapePackageName, RegistryClient } from "../../client.js";
import { displayPath } from "../../output.js";

export interface SourceOptions {
  registry?: string;
  token?: string;
  config?: string;
}

/** A path rather than a package name: `./x.json`, `/tmp/x.json`, `x.json`. */
export function isPackumentFile(pkg: string): boolean {
  return pkg.endsWith(".json") || pkg.startsWith(".") || pkg.startsWith("/") || pkg.includes("\\");
}

function checkPackument(value: unknown, where: string): PackumentLike {
  if (typeof value !== "object" || value === null || typeof (value as { name?: unknown }).name !== "string") {
    throw new Error(`${where} is not a packument (a JSON object with "name", "versions" and "time")`);
  }
  const versions = (value as { versions?: unknown }).versions;
  if (versions !== undefined && (typeof versions !== "object" || versions === null)) {
    throw new Error(`${where}: "versions" must be an object`);
  }
  return value as PackumentLike;
}

/** Reads a packument from a file. */
export async function readPackumentFile(path: string): Promise<PackumentLike> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new Error(`cannot read ${displayPath(path)}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${displayPath(path)} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  return checkPackument(value, displayPath(path));
}

/** The full packument of `name` from the registry (with `time`, which the abbreviated one lacks). */
export async function fetchPackument(client: RegistryClient, name: string): Promise<PackumentLike> {
  const doc = await client.getJson<unknown>(`/${escapePackageName(name)}`);
  if (doc === null) throw new Error(`package "${name}" not found at ${client.registry.href}`);
  return checkPackument(doc, `the registry's answer for "${name}"`);
}

export { RegistryClient };
