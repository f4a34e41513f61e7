// The fw benchmark: one run starts fw, Verdaccio and nginx (static mirror), loads the corpus into the
// two registries, measures them side by side and stops every process it started. See README.md.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { packumentPath, readCorpus, tarballPath } from "./src/corpus.ts";
import { duel } from "./src/measure/duel.ts";
import { type GetCase, measureGet, typicalTarball, wrkRound } from "./src/measure/http-load.ts";
import { coldInstall, type Installer, type InstallRun } from "./src/measure/installs.ts";
import { measurePopular, seedPopular } from "./src/measure/popular.ts";
import { publishGrowth } from "./src/measure/publish.ts";
import { type Phase, parseOptions } from "./src/options.ts";
import { cleanEnv, Processes, resetPeak, sample, sampleAll, splitCpus } from "./src/procs.ts";
import { addUser, loadCorpus } from "./src/registry-api.ts";
import { type BenchResult, evaluateGoals, renderMarkdown } from "./src/report.ts";
import { writeFwCorpusPackages } from "./src/seed.ts";
import { checkBuild, defaultLaunch, startFw } from "./src/servers/fw.ts";
import { startNginx } from "./src/servers/nginx.ts";
import { isFw, type RegistryKind, type RunningServer } from "./src/servers/types.ts";
import { startVerdaccio } from "./src/servers/verdaccio.ts";
import { median, rotated } from "./src/stats.ts";
import { popularPackument } from "./src/synthetic.ts";

const here = dirname(fileURLToPath(import.meta.url));
const options = parseOptions(process.argv.slice(2), {
  corpus: "/work/shared/corpus/A",
  out: join(here, ".runs"),
  tmpDir: existsSync("/dev/shm") ? "/dev/shm" : join(here, ".runs", "tmp"),
});
const started = Date.now();
const deadline = started + options.maxSeconds * 1000;
const log = (message: string) =>
  console.log(`[bench ${String(Math.round((Date.now() - started) / 1000)).padStart(4)}s] ${message}`);
const USER = "bench";
const PASSWORD = "bench-password-1";

const cpuPlan = options.pin ? splitCpus(cpus().length) : undefined;
const processes = new Processes(cpuPlan?.servers);
let interrupted = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: stopping the servers`);
    void processes.stopAll().then(() => process.exit(130));
  });
}
process.on("exit", () => processes.killAllNow());

function version(command: string, args = ["--version"]): string {
  // some tools (wrk -v) print their version and exit 1
  const run = spawnSync(command, args, { encoding: "utf8", env: cleanEnv() });
  if (run.error) return "not found";
  return `${run.stdout}${run.stderr}`.trim().split("\n")[0] ?? "";
}

const stamp = new Date(started)
  .toISOString()
  .replace(/:\d\d\.\d+Z$/, "Z")
  .replace(":", "");
mkdirSync(options.out, { recursive: true });
const outBase = join(resolve(options.out), stamp);
const result: BenchResult = {
  tool: "@fw/bench",
  startedAt: new Date(started).toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "",
    memGB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    npm: version("npm"),
    pnpm: version("pnpm"),
    wrk: version("wrk", ["-v"])
      .replace(/ \[.*$/, "")
      .replace(/ Copyright.*$/, ""),
    autocannon: (
      JSON.parse(readFileSync(join(here, "node_modules", "autocannon", "package.json"), "utf8")) as { version: string }
    ).version,
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    ...(cpuPlan && { cpuPlan }),
  },
  options: { ...options, only: [...options.only], registries: [...options.registries] },
  corpus: { dir: options.corpus, tarballs: 0, names: 0, MB: 0 },
  servers: [],
  corpusLoad: [],
  installs: [],
  gets: [],
  duels: [],
  publish: [],
  popular: [],
  proxy: [],
  memory: [],
  warnings: [],
  errors: [],
};
const save = () => writeFileSync(`${outBase}.json`, `${JSON.stringify(result, null, 2)}\n`);

const servers: (RunningServer & { root?: string })[] = [];
const tokens = new Map<RegistryKind, string>();
const byKind = (kind: RegistryKind) => servers.find((s) => s.kind === kind);

/**
 * Runs one phase and records each server's peak RSS during it: VmHWM reset before, read after,
 * plus a 200 ms VmRSS sampler as a cross-check where the reset is not allowed.
 */
async function phase(name: string, body: () => Promise<void>): Promise<void> {
  if (interrupted) return;
  if (Date.now() > deadline) {
    result.warnings.push(`phase "${name}" skipped: --max-seconds reached`);
    return;
  }
  let resetOk = true;
  for (const server of servers) for (const pid of server.pids()) resetOk = resetPeak(pid) && resetOk;
  const sampled = new Map<string, number>();
  const timer = setInterval(() => {
    for (const server of servers) {
      const s = sampleAll(server.pids());
      if (s) sampled.set(server.kind, Math.max(sampled.get(server.kind) ?? 0, s.rssMB));
    }
  }, 200);
  const t0 = performance.now();
  log(`— ${name}`);
  try {
    await body();
  } catch (error) {
    const message = `${name}: ${(error as Error).stack ?? String(error)}`;
    result.errors.push(message);
    log(`ERROR in ${message}`);
  } finally {
    clearInterval(timer);
  }
  const entry: BenchResult["memory"][number] = {
    phase: name,
    seconds: (performance.now() - t0) / 1000,
    resetOk,
    servers: {},
  };
  for (const server of servers) {
    const s = sampleAll(server.pids());
    if (s)
      entry.servers[server.kind] = {
        peakMB: s.peakMB,
        endMB: s.rssMB,
        sampledMaxMB: sampled.get(server.kind) ?? s.rssMB,
      };
  }
  result.memory.push(entry);
  for (const kind of ["fw", "fw-bun"] as const) {
    const fw = entry.servers[kind];
    if (fw) log(`  ${kind} RSS peak ${fw.peakMB.toFixed(0)} MB, now ${fw.endMB.toFixed(0)} MB`);
  }
  save();
}

async function waitIdle(): Promise<void> {
  const until = Date.now() + options.waitIdleSeconds * 1000;
  while (Date.now() < until && (loadavg()[0] ?? 0) > 0.5) {
    log(`waiting for the machine to go idle (load ${loadavg()[0]?.toFixed(2)})`);
    await new Promise((r) => setTimeout(r, 10_000));
  }
}

const want = (p: Phase) => options.only.has(p);
let workDir = "";
try {
  await waitIdle();
  if ((options.registries.has("fw") || options.registries.has("fw-bun")) && !options.fwModule) {
    const stale = checkBuild(options.allowStale);
    if (stale) result.warnings.push(stale);
  }
  const corpus = readCorpus(options.corpus);
  result.corpus = {
    dir: options.corpus,
    tarballs: corpus.packages.length,
    names: new Set(corpus.packages.map((p) => p.name)).size,
    MB: corpus.packages.reduce((t, p) => t + p.size, 0) / 1e6,
  };
  if (!corpus.packages.some((p) => p.name === options.packument)) {
    throw new Error(`--packument ${options.packument} is not in the corpus`);
  }
  mkdirSync(options.tmpDir, { recursive: true });
  workDir = mkdtempSync(join(options.tmpDir, "fw-bench-"));
  // nginx workers run as an unprivileged user and must be able to read the mirror
  chmodSync(workDir, 0o755);

  await phase("start", async () => {
    if (options.registries.has("nginx")) servers.push(await startNginx(processes, { workDir, corpus }));
    if (options.registries.has("verdaccio")) servers.push(await startVerdaccio(processes, { workDir, maxBodyMB: 300 }));
    for (const runtime of ["node", "bun"] as const) {
      if (!options.registries.has(runtime === "node" ? "fw" : "fw-bun")) continue;
      servers.push(
        await startFw(processes, {
          workDir: runtime === "node" ? workDir : join(workDir, "fw-bun"),
          cpuProfileDir: options.cpuProfile ? join(workDir, `cpu-profile-${runtime}`) : undefined,
          maxBodyMB: 300,
          serverModule: options.fwModule,
          launch: options.fwLaunch ?? defaultLaunch(options.fwModule),
          runtime,
          ...(runtime === "bun" && { runtimeArgs: options.bunArgs }),
        }),
      );
    }
    for (const server of servers) {
      log(`${server.label} at ${server.url} (pid ${server.pid})`);
      result.servers.push({ kind: server.kind, label: server.label, url: server.url, pid: server.pid });
      if (server.kind !== "nginx") tokens.set(server.kind, await addUser(server.url, USER, PASSWORD));
    }
  });
  if (servers.length === 0) throw new Error("no server started");

  await phase("load corpus", async () => {
    for (const server of servers.filter((s) => s.kind !== "nginx")) {
      const summary = await loadCorpus(server.url, tokens.get(server.kind) as string, corpus, {
        concurrency: 8,
        deadline,
      });
      const { rejected, ...rest } = summary;
      result.corpusLoad.push({ kind: server.kind, registry: server.label, ...rest });
      log(
        `${server.label}: ${summary.published} published in ${summary.seconds.toFixed(1)} s, p50 ${summary.latencyMs.p50.toFixed(1)} ms, ${summary.failed} failed`,
      );
      // fw refuses names npm reserves for new packages (core modules such as punycode), although real
      // trees depend on them. Placed straight into storage so the installs can still be compared.
      const names = rejected.filter((r) => isFw(server.kind) && /core module/.test(r.error));
      if (names.length > 0) {
        writeFwCorpusPackages(
          server.storageDir as string,
          corpus,
          names.map((r) => r.entry),
          USER,
        );
        const list = names.map((r) => `${r.entry.name}@${r.entry.version}`).join(", ");
        result.warnings.push(
          `fw refused to publish ${list} (core module names); placed into its storage directly so installs can run`,
        );
        log(`fw refused ${list}: placed into its storage directly`);
      }
      if (rejected.length > names.length) {
        throw new Error(
          `${server.label}: ${rejected.length - names.length} publishes failed: ${summary.errors.slice(0, 3).join("; ")}`,
        );
      }
    }
  });

  if (want("install")) {
    await phase("installs", async () => {
      // Interleaved (npm on each registry, then again, each round starting with the next registry) so
      // drift in machine load hits all registries alike.
      for (const installer of ["npm", "pnpm"] as Installer[]) {
        if (installer === "pnpm" && !existsSync(join(options.corpus, "pnpm-lock.yaml"))) {
          result.warnings.push("the corpus has no pnpm-lock.yaml: pnpm installs skipped");
          continue;
        }
        const runs = new Map<
          RegistryKind,
          { seconds: number; ok: boolean; installed: number | null; error?: string }[]
        >();
        const count = installer === "pnpm" ? options.pnpmRuns : options.runs;
        for (let i = 0; i < count && Date.now() < deadline; i++) {
          for (const server of rotated(servers, i)) {
            const run = await coldInstall(processes, installer, {
              registry: server.url,
              token: tokens.get(server.kind),
              corpusDir: options.corpus,
              tmpDir: workDir,
              timeoutMs: options.installTimeoutSeconds * 1000,
              pnpmBin: "pnpm",
            });
            runs.set(server.kind, [...(runs.get(server.kind) ?? []), run]);
            log(
              `${installer} ${server.kind} run ${i + 1}: ${run.seconds.toFixed(2)} s, ${run.ok ? "ok" : `FAILED ${run.error}`}, ${run.installed} packages`,
            );
          }
        }
        for (const server of servers) {
          const list = runs.get(server.kind) ?? [];
          const good = list.filter((r) => r.ok).map((r) => r.seconds);
          result.installs.push({
            installer,
            kind: server.kind,
            registry: server.label,
            runs: list,
            medianSeconds: good.length > 0 ? median(good) : Number.NaN,
            failures: list.length - good.length,
          });
        }
        save();
      }
    });
  }

  if (want("proxy")) {
    await phase("installs through a proxy", async () => {
      const upstream = byKind("fw");
      if (!upstream) throw new Error("the proxy phase needs fw (the upstream): add fw to --registries");
      // Fresh, empty proxies, each with the bench's fw (corpus loaded) as its only uplink.
      const proxies: RunningServer[] = [];
      try {
        proxies.push(
          await startFw(processes, {
            workDir: join(workDir, "fw-proxy"),
            maxBodyMB: 300,
            serverModule: options.fwModule,
            launch: options.fwLaunch ?? defaultLaunch(options.fwModule),
            name: "fw-proxy",
            extraConfig: {
              uplinks: { up: { url: upstream.url } },
              packages: { "**": { access: ["$all"], publish: ["$authenticated"], proxy: ["up"] } },
            },
          }),
        );
        proxies.push(
          await startVerdaccio(processes, { workDir, maxBodyMB: 300, uplink: upstream.url, name: "verdaccio-proxy" }),
        );
        const proxyTokens = new Map<RunningServer, string>();
        for (const proxy of proxies) {
          log(`${proxy.kind}-proxy: ${proxy.label} at ${proxy.url} (pid ${proxy.pid}) → ${upstream.url}`);
          proxyTokens.set(proxy, await addUser(proxy.url, USER, PASSWORD));
        }
        // Interleaved as in the installs phase; run 1 of each meets an empty proxy cache.
        const runs = new Map<RunningServer, InstallRun[]>();
        for (let i = 0; i < options.runs && Date.now() < deadline; i++) {
          for (const proxy of proxies) {
            const run = await coldInstall(processes, "npm", {
              registry: proxy.url,
              token: proxyTokens.get(proxy),
              corpusDir: options.corpus,
              tmpDir: workDir,
              timeoutMs: options.installTimeoutSeconds * 1000,
              pnpmBin: "pnpm",
            });
            runs.set(proxy, [...(runs.get(proxy) ?? []), run]);
            log(
              `npm via ${proxy.kind}-proxy run ${i + 1}${i === 0 ? " (cold proxy cache)" : ""}: ${run.seconds.toFixed(2)} s, ${run.ok ? "ok" : `FAILED ${run.error}`}, ${run.installed} packages`,
            );
          }
        }
        for (const proxy of proxies) {
          const list = runs.get(proxy) ?? [];
          const good = (l: InstallRun[]) => l.filter((r) => r.ok).map((r) => r.seconds);
          const first = list[0];
          const warm = good(list.slice(1));
          result.proxy?.push({
            kind: proxy.kind,
            registry: proxy.label,
            upstream: upstream.label,
            runs: list,
            firstSeconds: first?.ok ? first.seconds : Number.NaN,
            warmMedianSeconds: warm.length > 0 ? median(warm) : Number.NaN,
            medianSeconds: good(list).length > 0 ? median(good(list)) : Number.NaN,
            failures: list.length - good(list).length,
          });
        }
      } catch (error) {
        for (const proxy of proxies) {
          const t = proxy.logTail().trim();
          if (t) log(`${proxy.kind}-proxy stderr (tail):\n${t.slice(-2000)}`);
        }
        throw error;
      } finally {
        for (const proxy of proxies) await processes.stop(proxy.pid);
        save();
      }
    });
  }

  if (want("get")) {
    await phase("GETs under load", async () => {
      const tarball = typicalTarball(corpus.packages);
      const load = {
        connections: options.connections,
        warmupSeconds: options.warmupSeconds,
        seconds: options.seconds,
        wrkSeconds: options.wrkSeconds,
      };
      const targets: { server: RunningServer; target: Awaited<ReturnType<typeof measureGet>> }[] = [];
      for (const server of servers) {
        for (const getCase of ["full", "abbreviated", "tarball"] as GetCase[]) {
          for (const auth of server.kind === "nginx" ? [false] : [false, true]) {
            if (Date.now() > deadline) throw new Error("--max-seconds reached");
            const token = auth ? tokens.get(server.kind) : undefined;
            const target = await measureGet(
              server,
              { case: getCase, packument: options.packument, tarball, token },
              load,
            );
            const r = target.result;
            result.gets.push(r);
            if (r.autocannon) targets.push({ server, target });
            log(
              r.autocannon
                ? `${server.kind} ${getCase}${auth ? " +auth" : ""}: autocannon ${r.autocannon.reqPerSec.toFixed(0)} req/s, p99 ${r.autocannon.latencyMs.p99} ms, ${r.autocannon.MBps.toFixed(1)} MB/s; server CPU ${r.serverCpuPct?.toFixed(0)}%`
                : `${server.kind} ${getCase}: probe returned HTTP ${r.probe.status}`,
            );
            save();
          }
        }
      }
      for (let round = 1; round <= options.wrkRounds && options.wrkSeconds > 0; round++) {
        for (const { server, target } of pairsTurned(targets, round)) {
          if (Date.now() > deadline) throw new Error("--max-seconds reached");
          await wrkRound(processes, server, target, load);
          const w = target.result.wrkRounds?.at(-1);
          if (w) {
            const r = target.result;
            log(
              `wrk round ${round} ${server.kind} ${r.case}${r.auth ? " +auth" : ""}: ${w.reqPerSec.toFixed(0)} req/s, p99 ${w.latencyMs.p99.toFixed(1)} ms, ${w.MBps.toFixed(1)} MB/s; server CPU ${w.serverCpuPct.toFixed(0)}%`,
            );
          }
        }
        save();
      }
    });
  }

  if (want("duel")) {
    await phase("authenticated against anonymous, two replicas on one core", async () => {
      const tarball = typicalTarball(corpus.packages);
      for (const server of servers.filter((s) => isFw(s.kind))) {
        // A second fw of the same build and runtime on the same storage folder: a replica, as behind a
        // load balancer. Not in `servers`: the phases' memory figures stay the main server's.
        const twin = await startFw(processes, {
          workDir: server.kind === "fw-bun" ? join(workDir, "fw-bun") : workDir,
          maxBodyMB: 300,
          serverModule: options.fwModule,
          launch: options.fwLaunch ?? defaultLaunch(options.fwModule),
          runtime: server.kind === "fw-bun" ? "bun" : "node",
          ...(server.kind === "fw-bun" && { runtimeArgs: options.bunArgs }),
          name: `${server.kind}-twin`,
        });
        try {
          const plan: [GetCase, boolean][] = [
            ["full", false],
            ["abbreviated", false],
            ["tarball", false],
            ["abbreviated", true],
          ];
          for (const [getCase, control] of plan) {
            if (Date.now() > deadline) throw new Error("--max-seconds reached");
            const path =
              getCase === "tarball" ? tarballPath(tarball.name, tarball.version) : packumentPath(options.packument);
            const what = `${server.kind} ${getCase}${control ? " control (both anonymous)" : " authenticated / anonymous"}`;
            const outcome = await duel(processes, {
              a: server,
              b: twin,
              path,
              case: getCase,
              token: tokens.get(server.kind) as string,
              control,
              rounds: options.duelRounds,
              seconds: options.duelSeconds,
              connections: Math.max(1, Math.round(options.connections / 2)),
              onRound: (r) =>
                log(
                  `duel ${what} round ${r.round}: ${r.subjectReqPerSec.toFixed(0)} vs ${r.anonymousReqPerSec.toFixed(0)} req/s = ${r.ratio.toFixed(3)}`,
                ),
            });
            result.duels?.push(outcome);
            log(
              `duel ${what}: median ${outcome.median.toFixed(3)} (${outcome.min.toFixed(3)}–${outcome.max.toFixed(3)})`,
            );
            save();
          }
        } finally {
          await processes.stop(twin.pid);
        }
      }
    });
  }

  if (want("publish")) {
    await phase("publish growth", async () => {
      for (const server of servers.filter((s) => s.kind !== "nginx")) {
        const seconds = isFw(server.kind) ? options.publishMaxSeconds : options.verdaccioPublishMaxSeconds;
        if (seconds <= 0) continue;
        const growth = await publishGrowth(server.url, tokens.get(server.kind) as string, {
          checkpoints: options.checkpoints,
          probe: options.probe,
          deadline: Math.min(deadline, Date.now() + seconds * 1000),
          name: `bench-growth-${server.kind}`,
          warmup: options.probe,
          onProgress: (m) => log(`${server.kind} ${m}`),
        });
        result.publish.push({ kind: server.kind, registry: server.label, ...growth });
        if (growth.stoppedEarly) log(`${server.kind} publish growth stopped: ${growth.stoppedEarly}`);
        save();
      }
    });
  }

  if (want("popular")) {
    const t0 = performance.now();
    const doc = popularPackument("bench-popular", options.popularVersions, options.popularMB * 1e6, USER);
    log(
      `generated the popular package: ${options.popularVersions} versions in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    // One phase per server, so the fw phase's peak RSS is fw's own work on this package.
    for (const server of servers) {
      await phase(`popular package (${server.kind})`, async () => {
        seedPopular(server, doc, USER);
        const r = await measurePopular(server, doc, {
          token: tokens.get(server.kind),
          canPublish: server.kind !== "nginx",
          gets: 10,
          publishes: 10,
          loadSeconds: 5,
          connections: 10,
        });
        result.popular.push(r);
        if (r.error) throw new Error(`${server.label}: ${r.error}`);
        log(
          `${server.kind}: ${(r.fullBytes / 1e6).toFixed(1)} MB packument, cold GET ${r.coldGetMs.toFixed(0)} ms, full p50 ${r.fullGetMs.p50.toFixed(0)} ms, abbreviated p50 ${r.abbreviatedGetMs.p50.toFixed(0)} ms` +
            (r.publishMs
              ? `, publish p50 ${r.publishMs.p50.toFixed(0)} ms, GET after publish p50 ${r.getAfterPublishMs?.p50.toFixed(0)} ms`
              : ""),
        );
      });
    }
  }
} catch (error) {
  result.errors.push((error as Error).stack ?? String(error));
  log(`ERROR ${(error as Error).message}`);
  for (const server of servers) {
    const t = server.logTail().trim();
    if (t) log(`${server.kind} stderr (tail):\n${t.slice(-2000)}`);
  }
} finally {
  const fw = byKind("fw");
  if (fw) {
    const s = sample(fw.pid);
    if (s) result.fwCpuSeconds = s.cpuSeconds;
  }
  log("stopping the servers");
  await processes.stopAll();
  log("servers stopped");
  try {
    for (const runtime of ["node", "bun"]) {
      const dir = join(workDir, `cpu-profile-${runtime}`);
      const kept = `${outBase}.${runtime === "node" ? "fw" : "fw-bun"}.cpuprofile`;
      for (const file of options.cpuProfile && workDir && existsSync(dir) ? readdirSync(dir) : []) {
        copyFileSync(join(dir, file), kept);
        result.cpuProfiles = [...(result.cpuProfiles ?? []), kept];
      }
    }
  } catch (error) {
    result.errors.push(`could not keep the CPU profile: ${(error as Error).message}`);
  } finally {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  }
  result.finishedAt = new Date().toISOString();
  result.seconds = (Date.now() - started) / 1000;
  result.machine.loadAverageAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  result.goals = evaluateGoals(result);
  save();
  const markdown = renderMarkdown(result, { command: `node bench.ts ${process.argv.slice(2).join(" ")}`.trim() });
  writeFileSync(`${outBase}.md`, markdown);
  if (options.updateReadme) {
    const readme = join(here, "README.md");
    const text = readFileSync(readme, "utf8");
    const begin = "<!-- results:begin -->";
    const end = "<!-- results:end -->";
    const a = text.indexOf(begin);
    const b = text.indexOf(end);
    if (a === -1 || b === -1) result.warnings.push("README.md has no results markers; not updated");
    else writeFileSync(readme, `${text.slice(0, a + begin.length)}\n${markdown}\n${text.slice(b)}`);
  }
  console.log(`\n${markdown}`);
  log(`results: ${outBase}.json, ${outBase}.md`);
  process.exitCode = result.errors.length > 0 ? 1 : 0;
}

/**
 * The targets in one wrk round's order. A target measured anonymously and its authenticated twin run
 * back to back, and swap places every other round: otherwise the one that always comes first also always
 * runs right after another target's load (another registry's, whose work may still be draining).
 */
function pairsTurned<T extends { target: { result: { kind: string; case: string; auth: boolean } } }>(
  targets: T[],
  round: number,
): T[] {
  const order = [...targets];
  if (round % 2 === 1) return order;
  for (let i = 0; i + 1 < order.length; i++) {
    const a = (order[i] as T).target.result;
    const b = (order[i + 1] as T).target.result;
    if (a.kind === b.kind && a.case === b.case && a.auth !== b.auth) {
      [order[i], order[i + 1]] = [order[i + 1] as T, order[i] as T];
      i++;
    }
  }
  return order;
}
