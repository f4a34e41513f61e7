import { createInterface } from "node:readline/promises";
import { buildVersionGraph, planRollback, type RollbackPlan, STATUS_LABELS } from "@fw/semver-graph";
import { escapePackageName } from "../../client.js";
import { print, printJson } from "../../output.js";
import { fetchPackument, RegistryClient, type SourceOptions } from "./source.js";

export interface RollbackOptions extends SourceOptions {
  pkg: string;
  version: string;
  tag: string;
  force: boolean;
  yes: boolean;
  dryRun: boolean;
  json: boolean;
}

function describe(plan: RollbackPlan, who: string | undefined, registry: string): string {
  const target = plan.target;
  const lines = [
    `${plan.name}: move "${plan.tag}" ${plan.from ?? "(not set)"} → ${plan.to}${who ? ` as ${who}` : ""} on ${registry}`,
  ];
  if (target) {
    const facts = [
      `[${STATUS_LABELS[target.status]}]`,
      target.published && `published ${target.published.slice(0, 10)}`,
      target.publisher && `by ${target.publisher}`,
    ].filter(Boolean);
    lines.push(`  ${plan.to}  ${facts.join(" ")}`);
  }
  if (plan.from !== null)
    lines.push(`  ${plan.from}  stays published (still installable by exact version); only the tag moves`);
  lines.push(`  Rollback Ready for "${plan.tag}": ${plan.targets.join(", ") || "none"}`);
  for (const problem of plan.problems) lines.push(`  ! ${problem.message}${problem.forceable ? " (--force)" : ""}`);
  return lines.join("\n");
}

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await new Promise<string | undefined>((resolve) => {
      rl.once("close", () => resolve(undefined));
      rl.question(question).then(resolve, () => resolve(undefined));
    });
    return answer !== undefined && /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

async function whoami(client: RegistryClient): Promise<string | undefined> {
  if (!client.authenticated) return undefined;
  try {
    const me = await client.getJson<{ username?: unknown }>("/-/whoami");
    return typeof me?.username === "string" ? me.username : undefined;
  } catch {
    // Only for the message; the write below reports a bad token properly.
    return undefined;
  }
}

/**
 * `fw version rollback <pkg> <version> [--tag t] [--force] [--yes] [--dry-run]`: checks the target
 * against the rollback rule, shows the change, asks, then moves the tag with one
 * `PUT /-/package/<pkg>/dist-tags/<tag>`, which the registry records in its audit trail
 * (`dist-tag`, with the user and token). No version is changed or removed.
 */
export async function run(opts: RollbackOptions): Promise<void> {
  if (opts.json && !opts.yes && !opts.dryRun) throw new Error("--json needs --yes (or --dry-run): it cannot ask");
  const client = await RegistryClient.create(opts);
  const graph = buildVersionGraph(await fetchPackument(client, opts.pkg));
  const plan = planRollback(graph, opts.version, { tag: opts.tag });
  const blocking = plan.problems.filter((problem) => !(problem.forceable && opts.force));
  const who = await whoami(client);
  const summary = {
    package: plan.name,
    tag: plan.tag,
    from: plan.from,
    to: plan.to,
    registry: client.registry.href,
    rollbackReady: plan.targets,
    problems: plan.problems.map(({ code, message, forceable }) => ({ code, message, forceable })),
  };

  if (blocking.length > 0) {
    const forceable = blocking.every((problem) => problem.forceable);
    throw new Error(
      `refusing to move "${plan.tag}" of ${plan.name} to ${plan.to}: ${blocking.map((p) => p.message).join("; ")}${forceable ? "; pass --force to do it anyway" : ""}`,
    );
  }
  if (!plan.changed) {
    if (opts.json) printJson({ ...summary, changed: false, distTags: graph.distTags });
    else print(`${plan.name}: "${plan.tag}" already points to ${plan.to}; nothing to change`);
    return;
  }
  if (!opts.json) print(describe(plan, who, client.registry.href));
  if (opts.dryRun) {
    if (opts.json) printJson({ ...summary, changed: false, dryRun: true, distTags: graph.distTags });
    else print("dry run: nothing changed");
    return;
  }
  if (!opts.yes && !(await confirm(`Move "${plan.tag}" to ${plan.to}? [y/N] `))) {
    throw new Error(
      `rollback not confirmed: "${plan.tag}" still points to ${plan.from}; pass --yes to skip the question`,
    );
  }
  const distTags = await client.putJson<Record<string, string>>(
    `/-/package/${escapePackageName(plan.name)}/dist-tags/${encodeURIComponent(plan.tag)}`,
    plan.to,
  );
  if (distTags[plan.tag] !== plan.to) {
    throw new Error(
      `the registry answered, but "${plan.tag}" points to ${distTags[plan.tag] ?? "nothing"}, not ${plan.to}`,
    );
  }
  if (opts.json) printJson({ ...summary, changed: true, actor: who ?? null, distTags });
  else
    print(
      `"${plan.tag}" of ${plan.name} now points to ${plan.to} (was ${plan.from}); recorded in the audit trail as dist-tag`,
    );
}
