/**
 * Vitest globalSetup that gives the run a real Secret Service: a private D-Bus session bus and an
 * unlocked GNOME Keyring daemon, both living in a temporary folder and stopped when the run ends. The
 * developer's own keyring is never touched. Tests find the bus in DBUS_SESSION_BUS_ADDRESS (workers
 * inherit it) and FW_TEST_KEYCHAIN=secret-service.
 *
 * Without dbus-daemon or gnome-keyring-daemon the run fails in CI (CI set); elsewhere
 * FW_TEST_KEYCHAIN_UNAVAILABLE says why and the keychain tests are skipped. On macOS and Windows the
 * system keychain is used as it is (FW_TEST_KEYCHAIN=system); the tests use a service of their own.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { access, chmod, constants, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

const SECRETS_NAME = "org.freedesktop.secrets";
/** How long the daemons get to come up: generous, since CI machines may be busy. */
const START_TIMEOUT_MS = 30_000;

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

function collectStderr(child: ChildProcess): () => string {
  let text = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    text = (text + chunk).slice(-4000);
  });
  return () => text.trim();
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** The first line `child` prints on stdout; fails if it exits or stays silent too long. */
function firstLine(child: ChildProcess, what: string, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(
      () => reject(new Error(`${what} printed no address; stderr: ${stderr()}`)),
      START_TIMEOUT_MS,
    );
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
      const line = text.split("\n")[0];
      if (text.includes("\n") && line) {
        clearTimeout(timer);
        resolve(line.trim());
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code ?? signal}) before it was ready; stderr: ${stderr()}`));
    });
    child.once("error", reject);
  });
}

function nameHasOwner(env: NodeJS.ProcessEnv): Promise<boolean> {
  return new Promise((resolve) => {
    execFile(
      "dbus-send",
      [
        "--session",
        "--print-reply",
        "--dest=org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus.NameHasOwner",
        `string:${SECRETS_NAME}`,
      ],
      { env },
      (error, stdout) => resolve(!error && /boolean true/.test(stdout)),
    );
  });
}

/**
 * Waits until the keyring daemon owns the Secret Service name. Clients must not call before: the bus
 * would start another, locked, daemon through D-Bus activation.
 */
async function waitForOwner(env: NodeJS.ProcessEnv, daemon: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await nameHasOwner(env))) {
    if (daemon.exitCode !== null || daemon.signalCode !== null) {
      throw new Error(`gnome-keyring-daemon exited (${daemon.exitCode ?? daemon.signalCode}); stderr: ${stderr()}`);
    }
    if (Date.now() > deadline)
      throw new Error(`gnome-keyring-daemon did not claim ${SECRETS_NAME}; stderr: ${stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  await exited(child);
}

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (process.platform !== "linux" && process.platform !== "freebsd") {
    process.env.FW_TEST_KEYCHAIN = "system";
    return undefined;
  }
  const commands = ["dbus-daemon", "dbus-send", "gnome-keyring-daemon"];
  const missing: string[] = [];
  for (const command of commands) if (!(await onPath(command))) missing.push(command);
  if (missing.length > 0) {
    const message = `no ${missing.join(", ")} on PATH: the keychain tests need a Secret Service (Debian packages dbus, gnome-keyring); run \`bash tooling/scripts/test-deps.sh\``;
    if (process.env.CI) throw new Error(message);
    process.env.FW_TEST_KEYCHAIN_UNAVAILABLE = message;
    return undefined;
  }

  const dir = await mkdtemp(join(tmpdir(), "fw-keyring-"));
  const runtime = join(dir, "run");
  await mkdir(runtime);
  await chmod(runtime, 0o700);
  // Everything the daemons read or write stays in `dir`, even a daemon the bus starts by activation.
  const isolated = { HOME: dir, XDG_DATA_HOME: join(dir, "data"), XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: dir };
  const bus = spawn("dbus-daemon", ["--session", "--nofork", "--print-address=1"], {
    env: { ...process.env, ...isolated },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const busStderr = collectStderr(bus);
  let keyring: ChildProcess | undefined;
  const saved = {
    DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS,
    FW_TEST_KEYCHAIN: process.env.FW_TEST_KEYCHAIN,
  };
  const teardown = async () => {
    if (keyring) await stop(keyring);
    await stop(bus);
    await rm(dir, { recursive: true, force: true });
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  try {
    const address = await firstLine(bus, "dbus-daemon", busStderr);
    const env = { ...process.env, ...isolated, DBUS_SESSION_BUS_ADDRESS: address };
    keyring = spawn("gnome-keyring-daemon", ["--foreground", "--unlock", "--components=secrets"], {
      env,
      stdio: ["pipe", "ignore", "pipe"],
    });
    const keyringStderr = collectStderr(keyring);
    // --unlock reads the login keyring's password from stdin, creating that keyring unlocked.
    keyring.stdin?.end("fw-test-keyring-password");
    await waitForOwner(env, keyring, keyringStderr);
    process.env.DBUS_SESSION_BUS_ADDRESS = address;
    process.env.FW_TEST_KEYCHAIN = "secret-service";
    return teardown;
  } catch (error) {
    await teardown();
    throw error;
  }
}
