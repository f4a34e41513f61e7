/**
 * What an authenticated cached read costs against an anonymous one, measured so that the machine's
 * noise cannot decide it: two `fw registry start` processes on one storage folder (replicas), both bound
 * to the same core, one under anonymous wrk and the other under authenticated wrk at the same time,
 * the loads swapped every round. The scheduler gives the two servers equal shares of the core, so the
 * requests each completes in the same seconds compare what a request costs it; a machine that slows
 * down slows both. `--control` gives both servers anonymous loads (the authenticated side sends a
 * dummy header as long as `Authorization`), which shows how close to 1 an even duel comes out. The
 * machine must be otherwise idle: a busy client core starves one wrk, and then its server idles.
 *
 *   node bench/duel.ts [--case abbreviated|full|tarball] [--rounds 10] [--seconds 4] [--connections 25]
 *                      [--control] [--json]
 *
 * Needs wrk and a built apps/cli. This runs the duel on a tiny package of its own, in a minute; bench.ts
 * runs the same measurement (src/measure/duel.ts) in its "duel" phase on the corpus's packument and
 * tarball, and judges the goal by it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RegistryClient } from "./src/http.ts";
import { duel } from "./src/measure/duel.ts";
import type { GetCase } from "./src/measure/http-load.ts";
import { Processes, splitCpus } from "./src/procs.ts";
import { addUser, publishOk } from "./src/registry-api.ts";
import { startFw } from "./src/servers/fw.ts";
import type { RunningServer } from "./src/servers/types.ts";
import { smallPublishDoc } from "./src/synthetic.ts";

const { values } = parseArgs({
  options: {
    case: { type: "string", default: "abbreviated" },
    rounds: { type: "string", default: "10" },
    seconds: { type: "string", default: "4" },
    connections: { type: "string", default: "25" },
    control: { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const getCase = values.case as GetCase;
if (!["abbreviated", "full", "tarball"].includes(getCase)) fail(`--case must be abbreviated, full or tarball`);
const rounds = bounded(values.rounds, 2, 40, "--rounds");
const seconds = bounded(values.seconds, 1, 30, "--seconds");
const connections = bounded(values.connections, 1, 200, "--connections");

function bounded(text: string | undefined, min: number, max: number, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) fail(`${flag} must be a whole number from ${min} to ${max}`);
  return n;
}

function fail(message: string): never {
  console.error(`duel: ${message}`);
  process.exit(2);
}

const plan = splitCpus(cpus().length);
const processes = new Processes(plan?.servers);
const workDir = mkdtempSync(join(tmpdir(), "fw-duel-"));
const servers: RunningServer[] = [];

try {
  // Two replicas of one storage folder: the same build, config and documents.
  for (const name of ["fw-a", "fw-b"]) {
    servers.push(await startFw(processes, { workDir, maxBodyMB: 10, launch: "cli", name }));
  }
  const [a, b] = servers as [RunningServer, RunningServer];
  const token = await addUser(a.url, "duel", "duel-password-1");
  const writer = new RegistryClient(a.url);
  await publishOk(writer, token, smallPublishDoc("duel-probe", "1.0.0", a.url));
  writer.close();
  const path = getCase === "tarball" ? "/duel-probe/-/duel-probe-1.0.0.tgz" : "/duel-probe";
  const subjectName = values.control ? "anonymous (dummy header)" : "authenticated";
  const result = await duel(processes, {
    a,
    b,
    path,
    case: getCase,
    token,
    control: values.control,
    rounds,
    seconds,
    connections,
    onRound: (r) => {
      if (values.json) return;
      console.log(
        `round ${r.round}: ${subjectName} ${r.subjectReqPerSec.toFixed(0)} req/s, anonymous ${r.anonymousReqPerSec.toFixed(0)} req/s: ${r.ratio.toFixed(3)}`,
      );
    },
  });
  if (values.json) console.log(JSON.stringify({ ...result, cpus: plan ?? null }, null, 2));
  else {
    console.log(
      `${values.control ? "control (both anonymous)" : "authenticated / anonymous"}, ${getCase}: median ${result.median.toFixed(3)} of ${result.pairs.length} pairs of rounds (pairs ${result.min.toFixed(3)}–${result.max.toFixed(3)})${plan ? `; servers on CPU ${plan.servers}, wrk on ${plan.clients}` : "; not bound to CPUs (one CPU or no taskset)"}`,
    );
  }
} catch (error) {
  // One line, and the servers are still stopped below (process.exit would leave them running).
  console.error(`duel: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  for (const server of servers) await processes.stop(server.pid);
  rmSync(workDir, { recursive: true, force: true });
}
