import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ENTRY = fileURLToPath(new URL("./replica-entry.mjs", import.meta.url));
const BUILT = fileURLToPath(new URL("../../dist/node.js", import.meta.url));

/** A registry replica in a child process, so it can be killed like a real one. */
export interface Replica {
  url: string;
  pid: number;
  /** Output so far (its log), for failure messages. */
  log(): string;
  /** Sends `signal` (SIGTERM: graceful; SIGKILL: a crash) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** S3 settings of the Ceph RGW the global setup started, under `prefix`, as a config's `storage` section. */
export function rgwStorage(prefix: string): Record<string, unknown> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`${name} is not set; the Ceph global setup of @fw/tooling sets it`);
    return value;
  };
  return {
    driver: "s3",
    endpoint: env("FW_TEST_S3_ENDPOINT"),
    bucket: env("FW_TEST_S3_BUCKET"),
    region: "us-east-1",
    forcePathStyle: true,
    accessKeyId: env("FW_TEST_S3_ACCESS_KEY"),
    secretAccessKey: env("FW_TEST_S3_SECRET_KEY"),
    prefix,
  };
}

/** Starts a replica with `config` (a config file's content) written to `dir`. */
export async function startReplica(dir: string, name: string, config: Record<string, unknown>): Promise<Replica> {
  if (!existsSync(BUILT)) throw new Error(`${BUILT} is missing: build @fw/server first (pnpm build)`);
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({ listen: { host: "127.0.0.1", port: 0 }, log: { level: "warn", format: "json" }, ...config }),
  );
  const child: ChildProcess = spawn(process.execPath, [ENTRY, file], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica ${name} did not start in 30 s:\n${output}`)), 30_000);
    const check = () => {
      const line = output.split("\n").find((l) => l.startsWith('{"url"'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    };
    child.stdout?.on("data", check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`replica ${name} exited before listening:\n${output}`));
    });
  });
  return {
    url,
    pid: child.pid as number,
    log: () => output,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
