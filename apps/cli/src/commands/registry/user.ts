import { publicProfile } from "@fw/auth";
import { print, printJson } from "../../output.js";
import { openAuth, readStdin } from "./auth-store.js";

export interface UserOptions {
  config?: string;
  json: boolean;
}

async function password(opts: { password?: string; passwordStdin: boolean }): Promise<string> {
  if (opts.passwordStdin) return readStdin();
  if (opts.password !== undefined) return opts.password;
  throw new Error("give the password with --password-stdin (or --password, which other users can see in ps)");
}

function show(json: boolean, value: ReturnType<typeof publicProfile>, verb: string): void {
  if (json) printJson(value);
  else print(`${verb} ${value.name}${value.admin ? " (admin)" : ""}${value.disabled ? " (disabled)" : ""}`);
}

/** `fw registry user add <name>`. */
export async function runAdd(
  opts: UserOptions & { name: string; email?: string; admin: boolean; password?: string; passwordStdin: boolean },
): Promise<void> {
  const { users } = await openAuth(opts.config);
  const user = await users.create(opts.name, await password(opts), {
    ...(opts.email !== undefined && { email: opts.email }),
    admin: opts.admin,
  });
  show(opts.json, publicProfile(user), "added");
}

/** `fw registry user list`. */
export async function runList(opts: UserOptions): Promise<void> {
  const { users } = await openAuth(opts.config);
  const all = [];
  for await (const user of users.list()) all.push(publicProfile(user));
  if (opts.json) printJson(all);
  else
    print(
      all.length === 0
        ? "no users"
        : all
            .map(
              (u) =>
                `${u.name}${u.email ? ` <${u.email}>` : ""}${u.admin ? " admin" : ""}${u.disabled ? " disabled" : ""}`,
            )
            .join("\n"),
    );
}

/** `fw registry user disable|enable <name>`. */
export async function runSetDisabled(opts: UserOptions & { name: string; disabled: boolean; reason?: string }) {
  const { users } = await openAuth(opts.config);
  const user = opts.disabled ? await users.disable(opts.name, opts.reason) : await users.enable(opts.name);
  show(opts.json, publicProfile(user), opts.disabled ? "disabled" : "enabled");
}

/** `fw registry user reset-password <name>`: sets a new password and, unless `--keep-tokens`, revokes every token. */
export async function runResetPassword(
  opts: UserOptions & { name: string; password?: string; passwordStdin: boolean; keepTokens: boolean },
): Promise<void> {
  const { users, tokens } = await openAuth(opts.config);
  const user = await users.setPassword(opts.name, await password(opts));
  const revoked = opts.keepTokens ? [] : await tokens.revokeAll(user.name);
  if (opts.json) printJson({ ...publicProfile(user), revokedTokens: revoked.length });
  else print(`password of ${user.name} reset; ${revoked.length} token(s) revoked`);
}
