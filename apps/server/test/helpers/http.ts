import { request } from "node:http";
import type { StorageDriver } from "@fw/storage-r2";

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The bytes as sent, not decompressed (fetch would undo Content-Encoding). */
  body: Buffer;
}

/** One request with node:http, so headers and bytes are exactly what the server sent. */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Uint8Array } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

/** Every stored object with its ETag: compared before and after a refused request, it shows nothing changed. */
export async function storageSnapshot(storage: StorageDriver): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await storage.list(cursor ? { cursor } : {});
    for (const object of page.objects) {
      // The audit trail and login back-off record refusals on purpose; "unchanged" is about the registry's data.
      if (object.key.startsWith("audit/") || object.key.startsWith("auth/")) continue;
      out.push(`${object.key} ${object.etag}`);
    }
    cursor = page.cursor;
  } while (cursor);
  return out;
}
