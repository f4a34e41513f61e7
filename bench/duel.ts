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
 *   node bench/duel.ts [--case abbreviated|full|tarball] [--rounds 8] [--seconds 4] [--connections 25]
 *                      [--control] [--json]
 *
 * Needs wrk and a built apps/cli. Bench's own full run (bench.ts) measures the same goal as paired
 * rounds against one server, which this machine's noise can swing by a third from one round to the next.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { RegistryClient } from "./src/http.ts";
import { type GetCase, headersFor, runWrk } from "./src/measure/http-load.ts";
import { Processes, splitCpus } from "./src/procs.ts";
import { addUser, publishOk } from "./src/registry-api.ts";
import { startFw } from "./src/servers/fw.ts";
import type { RunningServer } from "./src/servers/types.ts";
import { median } from "./src/stats.ts";
import { smallPublishDoc } from "./src/synthetic.ts";

const { values } = parseArgs({
  options: {
    case: { type: "string", default: "abbreviated" },
    rounds: { type: "string", default: "8" },
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

/** A header as long as `Authorization: Bearer <token>`, so both sides' requests are the same size. */
function dummyHeader(token: string): [string, string] {
  return ["x-not-a-token", "x".repeat(`Bearer ${token}`.length)];
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
  const authenticated = headersFor(getCase, token);
  const anonymous = { ...headersFor(getCase, undefined), ...Object.fromEntries([dummyHeader(token)]) };
  const subject = values.control ? anonymous : authenticated;

  // Both replicas answer both loads before the rounds: caches filled, the token verified on each.
  for (const server of servers) {
    for (const headers of [authenticated, anonymous]) {
      const client = new RegistryClient(server.url);
      const response = await client.request("GET", path, { headers });
      client.close();
      if (response.status !== 200) throw new Error(`GET ${path} on ${server.url} answered ${response.status}`);
    }
  }
  await Promise.all([
    runWrk(processes, a.url + path, subject, connections, 1),
    runWrk(processes, b.url + path, anonymous, connections, 1),
  ]);

  const ratios: number[] = [];
  const samples: { round: number; subjectOn: string; subject: number; anonymous: number; ratio: number }[] = [];
  for (let round = 1; round <= rounds; round++) {
    // The subject load goes to each replica in turn, so a difference between the two cancels out.
    const [onSubject, onAnonymous] = round % 2 === 1 ? [a, b] : [b, a];
    const [s, n] = await Promise.all([
      runWrk(processes, onSubject.url + path, subject, connections, seconds),
      runWrk(processes, onAnonymous.url + path, anonymous, connections, seconds),
    ]);
    if (s.non2xx > 0 || n.non2xx > 0 || s.errors > 0 || n.errors > 0) {
      throw new Error(
        `round ${round}: ${s.non2xx + n.non2xx} answers that were not 2xx, ${s.errors + n.errors} socket errors`,
      );
    }
    const ratio = s.reqPerSec / n.reqPerSec;
    ratios.push(ratio);
    samples.push({
      round,
      subjectOn: onSubject === a ? "a" : "b",
      subject: s.reqPerSec,
      anonymous: n.reqPerSec,
      ratio,
    });
    if (!values.json) {
      console.log(
        `round ${round}: ${values.control ? "anonymous (dummy header)" : "authenticated"} ${s.reqPerSec.toFixed(0)} req/s, anonymous ${n.reqPerSec.toFixed(0)} req/s: ${ratio.toFixed(3)}`,
      );
    }
  }
  const summary = {
    case: getCase,
    control: values.control,
    rounds,
    seconds,
    connections,
    cpus: plan ?? null,
    median: median(ratios),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
  };
  if (values.json) console.log(JSON.stringify({ ...summary, samples }, null, 2));
  else {
    console.log(
      `${values.control ? "control (both anonymous)" : "authenticated / anonymous"}, ${getCase}: median ${summary.median.toFixed(3)} of ${rounds} rounds (${summary.min.toFixed(3)}–${summary.max.toFixed(3)})${plan ? `; servers on CPU ${plan.servers}, wrk on ${plan.clients}` : "; not bound to CPUs (one CPU or no taskset)"}`,
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
