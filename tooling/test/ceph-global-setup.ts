/**
 * Vitest globalSetup that gives the run a real S3 server: a single-node Ceph RADOS Gateway started
 * with tooling/scripts/ceph-rgw.sh in a temporary folder, stopped when the run ends. Tests find it in
 * these environment variables, which workers inherit:
 *
 *   FW_TEST_S3_ENDPOINT    e.g. http://127.0.0.1:40123 (path-style addressing)
 *   FW_TEST_S3_ACCESS_KEY  access key of a user that may create buckets
 *   FW_TEST_S3_SECRET_KEY  its secret
 *   FW_TEST_S3_BUCKET      a bucket that exists
 *
 * Set all four beforehand to use another server instead (nothing is started then). Several Vitest
 * projects can list this module in one run: the first call starts the server, later ones find the
 * variables it set.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { access, constants, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

const VARIABLES = ["FW_TEST_S3_ENDPOINT", "FW_TEST_S3_ACCESS_KEY", "FW_TEST_S3_SECRET_KEY", "FW_TEST_S3_BUCKET"];
const SCRIPT = fileURLToPath(new URL("../scripts/ceph-rgw.sh", import.meta.url));
/** Ports the OSD and radosgw bind their messengers in; the monitor takes the two below them. */
const MESSENGER_PORTS = 30;
const DAEMONS = ["rgw", "osd", "mon"];
const CEPH_COMMANDS = new Set(["radosgw", "ceph-osd", "ceph-mon"]);

type Teardown = () => Promise<void>;

// Projects' global setups may run concurrently in one process; they share the one start.
const starting = Symbol.for("fw.tooling.ceph-global-setup");
const shared = globalThis as { [starting]?: Promise<Teardown | undefined> };

export default function setup(): Promise<Teardown | undefined> {
  const pending = shared[starting];
  if (pending) return pending.then(() => undefined);
  const started = process.env.FW_TEST_S3_ENDPOINT ? useGiven() : startCeph();
  shared[starting] = started;
  return started;
}

async function useGiven(): Promise<undefined> {
  const missing = VARIABLES.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(`FW_TEST_S3_ENDPOINT is set, so ${missing.join(", ")} must be set too`);
  }
  return undefined;
}

async function startCeph(): Promise<Teardown> {
  if (!(await onPath("radosgw"))) {
    throw new Error(
      "Ceph is not installed (no radosgw on PATH): run `bash tooling/scripts/test-deps.sh`, or point FW_TEST_S3_ENDPOINT, FW_TEST_S3_ACCESS_KEY, FW_TEST_S3_SECRET_KEY and FW_TEST_S3_BUCKET at an S3 server",
    );
  }
  // Ports are free when probed but may be taken before Ceph binds them (another run starting its own
  // server, say): a failed start is retried on new ports.
  let failure: unknown;
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      return await startOnce();
    } catch (error) {
      failure = error;
    }
  }
  throw failure;
}

async function startOnce(): Promise<Teardown> {
  const dir = await mkdtemp(join(tmpdir(), "fw-ceph-"));
  const accessKey = `fw-${randomBytes(6).toString("hex")}`;
  const secretKey = randomBytes(24).toString("hex");
  const bucket = "fw-test";
  const base = await freeRange(MESSENGER_PORTS + 2);
  const env = {
    ...process.env,
    RGW_PORT: String(await osPort()),
    MON_PORT: String(base),
    MSGR_PORTS: `${base + 2}-${base + 2 + MESSENGER_PORTS - 1}`,
    RGW_ACCESS_KEY: accessKey,
    RGW_SECRET_KEY: secretKey,
    RGW_BUCKET: bucket,
  };
  // If the run dies without tearing down, the daemons must not outlive it.
  const killOnExit = () => killRecorded(dir);
  process.once("exit", killOnExit);
  let endpoint: string;
  try {
    endpoint = (await run(["start", dir], env)).trim().split("\n").pop() ?? "";
  } catch (error) {
    await run(["stop", dir], env).catch(() => "");
    process.off("exit", killOnExit);
    throw new Error(`Ceph RGW did not start (logs in ${dir}/log): ${String(error)}`);
  }
  Object.assign(process.env, {
    FW_TEST_S3_ENDPOINT: endpoint,
    FW_TEST_S3_ACCESS_KEY: accessKey,
    FW_TEST_S3_SECRET_KEY: secretKey,
    FW_TEST_S3_BUCKET: bucket,
  });
  return async () => {
    await run(["stop", dir], env);
    process.off("exit", killOnExit);
    await rm(dir, { recursive: true, force: true });
  };
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", [SCRIPT, ...args], { env, timeout: 180_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message.trim()}\n${stderr}`.trim()));
      else resolve(stdout);
    });
  });
}

/**
 * Synchronous, for the exit handler: kills the daemons whose PIDs the script recorded (if those PIDs
 * still belong to Ceph daemons) and removes their folder.
 */
function killRecorded(dir: string): void {
  for (const daemon of DAEMONS) {
    try {
      const pid = Number(readFileSync(join(dir, `${daemon}.pid`), "utf8").trim());
      if (CEPH_COMMANDS.has(readFileSync(`/proc/${pid}/comm`, "utf8").trim())) process.kill(pid, "SIGKILL");
    } catch {
      // not started, or already gone
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

async function onPath(command: string): Promise<boolean> {
  for (const folder of (process.env.PATH ?? "").split(delimiter)) {
    if (folder === "") continue;
    try {
      await access(join(folder, command), constants.X_OK);
      return true;
    } catch {
      // not in this folder
    }
  }
  return false;
}

function listen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      const address = server.address();
      const bound = typeof address === "object" && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

async function osPort(): Promise<number> {
  const port = await listen(0);
  if (port === undefined) throw new Error("could not get a free port from the OS");
  return port;
}

/**
 * The first of `count` consecutive free ports. Ceph takes its ports as fixed numbers and ranges, so
 * they are probed rather than assigned, below the OS's ephemeral range where the RGW port comes from.
 */
async function freeRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    let free = true;
    for (let port = base; port < base + count && free; port++) free = (await listen(port)) !== undefined;
    if (free) return base;
  }
  throw new Error(`found no ${count} consecutive free ports for Ceph`);
}
