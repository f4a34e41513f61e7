import { ACTIONS, type Action, ANONYMOUS, explain, type Identity, identityFor } from "@fw/auth";
import { print, printJson } from "../../output.js";
import { openAuth } from "./auth-store.js";

/**
 * `fw registry access check <user|token|anonymous> <action> <pkg>`: the policy's decision with every
 * step. A token (`fw_…`) is checked as it would be on a request, its limits included.
 */
export async function run(opts: { config?: string; json: boolean; who: string; action: string; pkg: string }) {
  if (!(ACTIONS as readonly string[]).includes(opts.action)) {
    throw new Error(`unknown action "${opts.action}"; expected one of: ${ACTIONS.join(", ")}`);
  }
  const { users, tokens, policy, storage } = await openAuth(opts.config);
  let identity: Identity = ANONYMOUS;
  if (opts.who.startsWith("fw_")) {
    const verified = await tokens.verify(opts.who);
    if (!verified.ok) throw new Error(verified.reason);
    identity = identityFor(policy, verified.user, verified.record);
  } else if (opts.who !== "anonymous") {
    const user = await users.get(opts.who);
    if (!user) throw new Error(`user "${opts.who}" not found`);
    identity = identityFor(policy, user);
  }
  const stored = await storage.get(`packages/${opts.pkg}/packument.json`);
  const maintainers = stored
    ? (
        (JSON.parse(new TextDecoder().decode(stored.body)) as { maintainers?: Array<{ name: string }> }).maintainers ??
        []
      ).map((m) => m.name)
    : [];
  const result = explain(policy, {
    identity,
    action: opts.action as Action,
    pkg: opts.pkg,
    packageMaintainers: maintainers,
  });
  if (opts.json) printJson(result);
  else
    print(
      [
        `${result.allowed ? "ALLOWED" : "DENIED"}: ${result.reason}`,
        ...result.steps.map((step) => `  ${step.outcome.padEnd(4)} ${step.check}: ${step.detail}`),
      ].join("\n"),
    );
}
