import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, mkdir, open, rename, rm, unlink } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { SecretsError } from "../errors.js";
import { MasterKey } from "../master-key.js";
import type { MasterKeyProvider, StoredKeys } from "./types.js";

export const KEY_FILE_VARIABLE = "FW_SECRETS_KEY_FILE";

const HEADER =
  "# fw secrets master key. Whoever can read this file can read every secret in the vault: keep it mode 0600.\n";

/**
 * `FW_SECRETS_KEY_FILE`, else `secrets-master.key` in fw's config folder: `$XDG_CONFIG_HOME/fw` (or
 * `~/.config/fw`), `%APPDATA%\fw` on Windows.
 */
export function defaultKeyFilePath(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const given = env[KEY_FILE_VARIABLE];
  if (given) return given;
  const base =
    platform === "win32"
      ? (env.APPDATA ?? join(homedir(), "AppData", "Roaming"))
      : (env.XDG_CONFIG_HOME ?? join(homedir(), ".config"));
  return join(base, "fw", "secrets-master.key");
}

function errno(error: unknown): string | undefined {
  return typeof error === "object" && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

export interface KeyFileProviderOptions {
  /** Default: `defaultKeyFilePath()`. */
  path?: string;
  /**
   * Whether to check POSIX permissions on load: the file must be owned by this user and give nothing to
   * group or others. Default `true` (and ignored on Windows, which has no such bits).
   */
  checkPermissions?: boolean;
}

/**
 * The master key in a file that only its owner may read (created 0600 in a 0700 folder). A file that
 * group or others can read, or that another user owns, is refused rather than used: it may already have
 * leaked. Writes go to a temporary file that is renamed over the old one, so a crash leaves either the
 * old keys or the new ones.
 */
export function keyFileProvider(options: KeyFileProviderOptions = {}): MasterKeyProvider {
  const path = options.path ?? defaultKeyFilePath();
  const checkPermissions = (options.checkPermissions ?? true) && process.platform !== "win32";
  const where = `key file ${path}`;

  async function read(): Promise<{ current: string; previous: string[] } | null> {
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, constants.O_RDONLY);
    } catch (error) {
      if (errno(error) === "ENOENT") return null;
      throw new SecretsError("E_KEY_FILE", `cannot read ${where}: ${errno(error) ?? String(error)}`, { cause: error });
    }
    try {
      // fstat on the open handle: the checked file is the one read, even if the path is swapped meanwhile.
      const stats = await handle.stat();
      if (!stats.isFile()) throw new SecretsError("E_KEY_FILE", `${where} is not a regular file`);
      if (checkPermissions) {
        const mode = stats.mode & 0o777;
        if (mode & 0o077) {
          throw new SecretsError(
            "E_KEY_FILE",
            `${where} is readable or writable by others (mode ${mode.toString(8).padStart(4, "0")}): run \`chmod 600 ${path}\`, and rotate the master key (fw secrets rotate-master) if others may have read it`,
          );
        }
        const uid = process.getuid?.();
        if (uid !== undefined && stats.uid !== uid) {
          throw new SecretsError("E_KEY_FILE", `${where} belongs to user id ${stats.uid}, not to this user (${uid})`);
        }
      }
      const text = await handle.readFile("utf8");
      let current: string | undefined;
      const previous: string[] = [];
      for (const [index, raw] of text.split(/\r?\n/).entries()) {
        const line = raw.trim();
        if (line === "" || line.startsWith("#")) continue;
        const words = line.split(/\s+/);
        if (words.length === 1 && current === undefined) current = line;
        else if (words.length === 2 && words[0] === "previous") previous.push(words[1] as string);
        else throw new SecretsError("E_KEY_FILE", `${where}, line ${index + 1}: expected a key or "previous <key>"`);
      }
      if (current === undefined) throw new SecretsError("E_KEY_FILE", `${where} holds no key`);
      return { current, previous };
    } finally {
      await handle.close();
    }
  }

  async function write(current: MasterKey, previous: MasterKey[]): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    const text = `${HEADER}${current.toText()}\n${previous.map((key) => `previous ${key.toText()}\n`).join("")}`;
    try {
      const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await handle.writeFile(text, "utf8");
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await rm(temp, { force: true });
      throw new SecretsError("E_KEY_FILE", `cannot write ${where}: ${errno(error) ?? String(error)}`, {
        cause: error,
      });
    }
  }

  return {
    name: "file",
    describe: () => where,

    async load(): Promise<StoredKeys | null> {
      const stored = await read();
      if (!stored) return null;
      const current = await MasterKey.parse(stored.current, where);
      const previous = await Promise.all(stored.previous.map((text) => MasterKey.parse(text, `${where} (previous)`)));
      return { current, previous: previous.filter((key) => key.id !== current.id) };
    },

    async unavailableReason(): Promise<string | undefined> {
      try {
        await mkdir(dirname(path), { recursive: true, mode: 0o700 });
        await access(dirname(path), constants.W_OK);
        return undefined;
      } catch (error) {
        return `cannot create ${where}: ${errno(error) ?? String(error)}`;
      }
    },

    async store(current: MasterKey, previous?: MasterKey): Promise<void> {
      await write(current, previous ? [previous] : []);
    },

    async dropPrevious(): Promise<void> {
      const stored = await this.load();
      if (stored && stored.previous.length > 0) await write(stored.current, []);
    },

    async remove(): Promise<void> {
      try {
        await unlink(path);
      } catch (error) {
        if (errno(error) !== "ENOENT") throw error;
      }
    },
  };
}
