import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { freePort, type Processes } from "../procs.ts";
import type { RunningServer } from "./types.ts";
import { tail, waitForHttp } from "./wait.ts";

const require = createRequire(import.meta.url);

/**
 * Verdaccio 6 as a private registry would run it: no uplinks, JWT API tokens. Its default "legacy"
 * token is an encrypted user:password that costs a bcrypt per authenticated request (~250 ms of CPU),
 * which would make every authenticated number meaningless.
 */
function config(storage: string, port: number, maxBodyMB: number, uplink?: string): string {
  const uplinks = uplink ? `\n  up:\n    url: ${JSON.stringify(uplink)}` : " {}";
  const proxy = uplink ? "\n    proxy: up" : "";
  return `storage: ${JSON.stringify(storage)}
auth:
  htpasswd:
    file: ${JSON.stringify(join(storage, "htpasswd"))}
    max_users: 1000
uplinks:${uplinks}
packages:
  "@*/*":
    access: $all
    publish: $authenticated
    unpublish: $authenticated${proxy}
  "**":
    access: $all
    publish: $authenticated
    unpublish: $authenticated${proxy}
listen: 127.0.0.1:${port}
max_body_size: ${maxBodyMB}mb
server:
  keepAliveTimeout: 60
web:
  enable: false
log: { type: stdout, format: json, level: warn }
security:
  api:
    legacy: false
    jwt:
      sign:
        expiresIn: 7d
  web:
    sign:
      expiresIn: 7d
`;
}

export async function startVerdaccio(
  processes: Processes,
  options: {
    workDir: string;
    maxBodyMB: number;
    /** An upstream registry URL: every package is proxied from it (the bench's default has no uplinks). */
    uplink?: string;
    /** Folder under workDir and process name (default "verdaccio"). */
    name?: string;
  },
): Promise<RunningServer> {
  const packageJson = require.resolve("verdaccio/package.json");
  const version = (JSON.parse(readFileSync(packageJson, "utf8")) as { version: string }).version;
  const name = options.name ?? "verdaccio";
  const dir = join(options.workDir, name);
  const storage = join(dir, "storage");
  mkdirSync(storage, { recursive: true });
  const port = await freePort();
  const configFile = join(dir, "config.yaml");
  writeFileSync(configFile, config(storage, port, options.maxBodyMB, options.uplink));
  const bin = join(dirname(packageJson), "bin", "verdaccio");
  const child = processes.startServer(name, process.execPath, [bin, "--config", configFile], {
    env: { ...process.env, NODE_ENV: "production" },
  });
  const logTail = tail(child.stderr);
  tail(child.stdout);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(child, url, "/-/ping", 60_000, name);
  const pid = child.pid as number;
  return {
    kind: "verdaccio",
    label: `Verdaccio ${version}`,
    url,
    pid,
    pids: () => [pid],
    storageDir: storage,
    logTail,
  };
}
