/**
 * Cross-replica staleness: two `fw registry start` processes on one storage folder (the same setup as
 * replicas on one bucket), a version published through replica A, and replica B polled every 5 ms until
 * its packument lists the version. Prints the distribution; `--json` prints the samples too.
 *
 *   node bench/staleness.ts [--publishes 40] [--json]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { RegistryClient } from "./src/http.ts";
import { addUser, publishOk } from "./src/registry-api.ts";
import { stats } from "./src/stats.ts";
import { smallPublishDoc } from "./src/synthetic.ts";

const { values } = parseArgs({
  options: { publishes: { type: "string", default: "40" }, json: { type: "boolean", default: false } },
});
const count = Math.min(Math.max(Number(values.publishes), 1), 500);
const cli = fileURLToPath(new URL("../apps/cli/dist/fw.js", import.meta.url));
const base = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "fw-staleness-"));
const children: ChildProcess[] = [];

async function start(name: string): Promise<string> {
  const config = join(base, `${name}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      listen: { host: "127.0.0.1", port: 0 },
      storage: { driver: "fs", path: join(base, "storage") },
      log: { level: "warn", format: "json" },
    }),
  );
  const child = spawn(process.execPath, [cli, "registry", "start", "--config", config, "--json"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start in 30 s`)), 30_000);
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      }
    });
    child.once("exit", () => reject(new Error(`${name} exited before listening`)));
  });
}

try {
  const [a, b] = await Promise.all([start("a"), start("b")]);
  const token = await addUser(a, "stale", "stale-password-1");
  const writer = new RegistryClient(a);
  const reader = new RegistryClient(b);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const version = `1.0.${i}`;
    await publishOk(writer, token, smallPublishDoc("staleness-probe", version, a));
    const published = performance.now();
    // Bounded: a replica that never catches up ends the run with an error after 10 s.
    for (;;) {
      const response = await reader.request("GET", "/staleness-probe", {
        headers: { accept: "application/vnd.npm.install-v1+json" },
      });
      const doc = response.status === 200 ? (JSON.parse(response.body.toString()) as { versions: object }) : null;
      if (doc && Object.hasOwn(doc.versions, version)) break;
      if (performance.now() - published > 10_000) throw new Error(`replica B did not show ${version} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    samples.push(performance.now() - published);
    // Spread the publishes over the revalidation interval so the samples cover all of it.
    await new Promise((resolve) => setTimeout(resolve, 97 + Math.random() * 200));
  }
  writer.close();
  reader.close();
  const summary = stats(samples);
  if (values.json) console.log(JSON.stringify({ publishes: count, ms: summary, samples }));
  else
    console.log(
      `replica B shows a version published through replica A after: p50 ${summary.p50.toFixed(0)} ms, p90 ${summary.p90.toFixed(0)} ms, max ${summary.max.toFixed(0)} ms (${count} publishes)`,
    );
} finally {
  for (const child of children) child.kill("SIGTERM");
  await new Promise((resolve) => setTimeout(resolve, 500));
  rmSync(base, { recursive: true, force: true });
}
