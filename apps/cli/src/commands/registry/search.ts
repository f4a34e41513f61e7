import { RegistryClient } from "../../client.js";
import { print, printJson } from "../../output.js";

export interface SearchOptions {
  registry?: string;
  token?: string;
  config?: string;
  query: string;
  /** Results to ask for, 1–250 (the registry's page size limit). Default 20. */
  limit?: number;
  json: boolean;
}

interface SearchPackage {
  name: string;
  version: string;
  description?: string;
  keywords?: string[];
  date?: string;
  links?: Record<string, string>;
  publisher?: { username?: string; email?: string };
  maintainers?: { username?: string; email?: string }[];
}

interface SearchAnswer {
  objects?: { package?: SearchPackage }[];
  total?: number;
}

/**
 * Rows under upper-case headers, columns padded to their widest cell. When stdout is a terminal the
 * last column is cut to fit its width (`npm search` does the same); piped output keeps every character.
 */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const room = process.stdout.isTTY ? process.stdout.columns : undefined;
  const line = (cells: string[]) => {
    const text = cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
    return room !== undefined && text.length > room ? `${text.slice(0, Math.max(0, room - 1))}…` : text;
  };
  return [line(headers.map((header) => header.toUpperCase())), ...rows.map(line)].join("\n");
}

/**
 * `fw registry search <query> [--limit n] [--json]`: npm's search endpoint
 * (`/-/v1/search?text=…&size=…`, the one `npm search` calls), as a table of name, version,
 * date and description.
 */
export async function run(opts: SearchOptions): Promise<void> {
  const limit = opts.limit ?? 20;
  if (!Number.isInteger(limit) || limit < 1 || limit > 250)
    throw new Error(`--limit must be a whole number from 1 to 250, not "${opts.limit}"`);
  const client = await RegistryClient.create(opts);
  const query = new URLSearchParams({ text: opts.query, size: String(limit) });
  const answer = await client.getJson<SearchAnswer>(`/-/v1/search?${query}`);
  if (answer === null) throw new Error(`${client.registry.href} has no search endpoint (/-/v1/search answered 404)`);
  const packages = (answer.objects ?? []).flatMap((object) => (object.package ? [object.package] : []));
  if (opts.json) {
    printJson(packages);
    return;
  }
  if (packages.length === 0) {
    print(`No matches found for "${opts.query}"`);
    return;
  }
  print(
    table(
      // The description last: it is the long one, and the one cut to fit a terminal.
      ["name", "version", "date", "description"],
      packages.map((pkg) => [
        pkg.name,
        pkg.version,
        pkg.date?.slice(0, 10) ?? "",
        (pkg.description ?? "").replace(/\s+/g, " "),
      ]),
    ),
  );
}
