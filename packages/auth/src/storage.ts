import { isStorageError, type StorageDriver } from "@fw/storage-r2";

const decoder = new TextDecoder();

/** Reads a JSON document, `null` when missing. */
export async function readJson<T>(driver: StorageDriver, key: string): Promise<T | null> {
  const object = await driver.get(key);
  return object ? (JSON.parse(decoder.decode(object.body)) as T) : null;
}

/** Writes a JSON document only if nothing is there yet; `false` when something was. */
export async function createJson(driver: StorageDriver, key: string, value: unknown): Promise<boolean> {
  try {
    await driver.put(key, JSON.stringify(value), { ifNoneMatch: "*", contentType: "application/json" });
    return true;
  } catch (error) {
    if (isStorageError(error, "E_PRECONDITION")) return false;
    throw error;
  }
}

/** Every key under `prefix`, page by page. */
export async function* listKeys(driver: StorageDriver, prefix: string): AsyncGenerator<string> {
  let cursor: string | undefined;
  do {
    const page = await driver.list({ prefix, ...(cursor !== undefined && { cursor }) });
    for (const object of page.objects) yield object.key;
    cursor = page.cursor;
  } while (cursor !== undefined);
}

export const DAY_MS = 86_400_000;
