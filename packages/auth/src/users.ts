import { randomBytes } from "node:crypto";
import { casUpdate, type StorageDriver } from "@fw/storage-r2";
import { AuthError } from "./errors.js";
import { hashPassword, identifyHash, needsRehash, passwordProblem, verifyPassword } from "./passwords.js";
import { openSealed, SecretSealer } from "./seal.js";
import { constantTimeEqual } from "./secrets.js";
import { createJson, DAY_MS, listKeys, readJson } from "./storage.js";
import {
  generateRecoveryCodes,
  generateTotpSecret,
  hashRecoveryCode,
  isRecoveryCodeShape,
  matchTotp,
  normaliseRecoveryCode,
  type TfaMode,
  totpUri,
} from "./totp.js";

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;

/** Names that rules give a meaning of their own, so no account may take them. */
const RESERVED_NAMES = new Set(["admin", "publisher", "reader", "anonymous", "all", "authenticated"]);

/** Second-factor state of an account that has finished enrolment. */
export interface TfaState {
  mode: TfaMode;
  /** Base32 TOTP secret; sealed (`fwenc1:…`, AES-256-GCM) when the store has a `tfaKey`. */
  secret: string;
  enabled: string;
  /** Last TOTP time step accepted: codes of this step or earlier are refused (replay protection). */
  lastStep: number;
  /** Salt of the recovery-code hashes. */
  recoverySalt: string;
  /** Hashes of the recovery codes not used yet. */
  recoveryHashes: string[];
}

/**
 * A user as stored in `users/<lowercased name>/profile.json`. `name`, `email`, `passwordHash`, `created`
 * and `updated` are the fields `apps/server` already writes; the rest are optional, so existing profiles
 * load unchanged.
 */
export interface UserProfile {
  name: string;
  email?: string;
  /** `scrypt$N$r$p$salt$hash`, or an imported htpasswd hash until its first login (see `importUser`). */
  passwordHash: string;
  created: string;
  updated: string;
  admin?: boolean;
  /** Roles given to this account (besides those the policy config gives it). */
  roles?: string[];
  /** Set while the account is disabled: it cannot log in and its tokens stop working. */
  disabled?: { at: string; reason?: string };
  /** When the password was last set; `created` for profiles written before this field existed. */
  passwordChanged?: string;
  /** The password must be changed this many days after `passwordChanged`; it stops working after that. */
  passwordMaxAgeDays?: number;
  tfa?: TfaState;
  /** Enrolment started but not confirmed with a first code yet. */
  tfaPending?: { mode: TfaMode; secret: string; started: string };
}

/** What may be shown about a user: no hashes, no secrets. */
export interface PublicProfile {
  name: string;
  email?: string;
  created: string;
  updated: string;
  admin: boolean;
  roles: string[];
  disabled: boolean;
  tfa: TfaMode | null;
  passwordExpires?: string;
}

export type AuthenticateResult =
  | { ok: true; user: UserProfile }
  | {
      ok: false;
      code: "E_UNAUTHORIZED";
      reason: string;
      /** Unknown user or wrong password (as opposed to a right password on an account that may not sign in). */
      wrongCredentials?: true;
      passwordExpired?: boolean;
    };

export type SecondFactorResult = { ok: true; method: "totp" | "recovery" } | { ok: false; reason: string };

export interface UserStoreOptions {
  /** Milliseconds since the epoch; injectable for tests. Default `Date.now`. */
  clock?: () => number;
  /** Issuer shown in authenticator apps. Default `"fw"`. */
  issuer?: string;
  /**
   * 32 bytes (or their hex/base64 text) that encrypt TOTP secrets in profiles (AES-256-GCM, bound to the
   * account). Without it they are stored as they are; secrets stored before a key was set stay readable.
   */
  tfaKey?: Uint8Array | string;
}

export interface CreateUserOptions {
  email?: string;
  admin?: boolean;
  roles?: string[];
  passwordMaxAgeDays?: number;
}

/** An account brought over from another registry with the hash it already has (see `UserStore.importUser`). */
export interface ImportUserOptions {
  /**
   * The stored hash: fw's scrypt, or a legacy htpasswd hash (bcrypt, `{SHA}`, `$apr1$`, `$1$`, DES
   * crypt) that keeps the old password working and is replaced by scrypt at the first login.
   */
  passwordHash: string;
  email?: string;
  /** When the account was made (ISO 8601); default: now. Also taken as when the password was set. */
  created?: string;
}

export interface DueItem {
  kind: "password" | "token";
  user: string;
  /** The token's key, for tokens. */
  key?: string;
  /** The token's display prefix and name, for tokens. */
  prefix?: string;
  name?: string;
  /** When it stops (or stopped) working. */
  due: string;
  overdue: boolean;
}

export function isValidUsername(name: unknown): name is string {
  return typeof name === "string" && USERNAME.test(name);
}

export function assertUsername(name: unknown): string {
  if (!isValidUsername(name)) {
    throw new AuthError(
      "E_BAD_REQUEST",
      "invalid user name: use 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit",
    );
  }
  return name;
}

function assertPassword(password: unknown): string {
  const problem = passwordProblem(password);
  if (problem) throw new AuthError("E_BAD_REQUEST", problem);
  return password as string;
}

function assertMaxAge(days: unknown): number | undefined {
  if (days === undefined) return undefined;
  if (typeof days !== "number" || !Number.isInteger(days) || days < 1 || days > 3650) {
    throw new AuthError("E_BAD_REQUEST", "a maximum age must be a whole number of days from 1 to 3650");
  }
  return days;
}

/** When the password stops working, or `undefined` when it has no maximum age. */
export function passwordExpiry(user: UserProfile): number | undefined {
  if (user.passwordMaxAgeDays === undefined) return undefined;
  return Date.parse(user.passwordChanged ?? user.created) + user.passwordMaxAgeDays * DAY_MS;
}

export function publicProfile(user: UserProfile): PublicProfile {
  const expires = passwordExpiry(user);
  return {
    name: user.name,
    ...(user.email !== undefined && { email: user.email }),
    created: user.created,
    updated: user.updated,
    admin: user.admin === true,
    roles: user.roles ?? [],
    disabled: user.disabled !== undefined,
    tfa: user.tfa?.mode ?? null,
    ...(expires !== undefined && { passwordExpires: new Date(expires).toISOString() }),
  };
}

/** A hash of a random password, checked when the user does not exist so timing does not tell. */
let dummyHash: Promise<string> | undefined;

/**
 * The hash unknown users' passwords are checked against, made at the first password check of the
 * process whoever it is for (so the first unknown user is not the one who waits for it), and made again
 * if making it failed. A failure is seen only by a caller that awaits it: an unknown user's check.
 */
function dummyFor(): Promise<string> {
  if (!dummyHash) {
    dummyHash = hashPassword(randomBytes(16).toString("hex")).catch((error: unknown) => {
      dummyHash = undefined;
      throw error;
    });
    dummyHash.catch(() => {});
  }
  return dummyHash;
}

/**
 * Accounts, passwords and second factors, as documents in the registry's storage. Every change is a
 * compare-and-swap, so replicas sharing the storage never lose one another's writes.
 */
export class UserStore {
  private readonly clock: () => number;
  private readonly issuer: string;
  private readonly sealer: SecretSealer | undefined;

  constructor(
    private readonly storage: StorageDriver,
    options: UserStoreOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.issuer = options.issuer ?? "fw";
    this.sealer = options.tfaKey === undefined ? undefined : new SecretSealer(options.tfaKey);
  }

  /** The TOTP secret as stored: sealed with `tfaKey` when one is set. */
  private storedSecret(name: string, secret: string): string {
    return this.sealer ? this.sealer.seal(secret, `totp:${name.toLowerCase()}`) : secret;
  }

  private plainSecret(name: string, stored: string): string {
    return openSealed(stored, `totp:${name.toLowerCase()}`, this.sealer);
  }

  private key(name: string): string {
    return `users/${name.toLowerCase()}/profile.json`;
  }

  private nowIso(): string {
    return new Date(this.clock()).toISOString();
  }

  async get(name: string): Promise<UserProfile | null> {
    if (!isValidUsername(name)) return null;
    return readJson<UserProfile>(this.storage, this.key(name));
  }

  async create(name: string, password: string, options: CreateUserOptions = {}): Promise<UserProfile> {
    assertUsername(name);
    if (RESERVED_NAMES.has(name.toLowerCase())) {
      throw new AuthError("E_BAD_REQUEST", `"${name}" is reserved for access rules; choose another user name`);
    }
    assertPassword(password);
    const maxAge = assertMaxAge(options.passwordMaxAgeDays);
    const now = this.nowIso();
    const user: UserProfile = {
      name,
      passwordHash: await hashPassword(password),
      created: now,
      updated: now,
      passwordChanged: now,
      ...(typeof options.email === "string" && options.email.length <= 254 && { email: options.email }),
      ...(options.admin === true && { admin: true }),
      ...(options.roles && options.roles.length > 0 && { roles: [...new Set(options.roles)] }),
      ...(maxAge !== undefined && { passwordMaxAgeDays: maxAge }),
    };
    if (!(await createJson(this.storage, this.key(name), user))) {
      throw new AuthError("E_CONFLICT", `user "${name}" already exists`);
    }
    return user;
  }

  /**
   * Creates an account from an existing password hash, for migrations: the user keeps their password.
   * Create-only: an existing account is never touched (`E_CONFLICT`). A hash fw cannot verify is refused
   * (`E_BAD_REQUEST`) rather than stored as an account nobody could log in to.
   */
  async importUser(name: string, options: ImportUserOptions): Promise<UserProfile> {
    assertUsername(name);
    if (RESERVED_NAMES.has(name.toLowerCase())) {
      throw new AuthError("E_BAD_REQUEST", `"${name}" is reserved for access rules in fw; the account cannot keep it`);
    }
    const hash = identifyHash(options.passwordHash);
    if (hash.scheme === null) throw new AuthError("E_BAD_REQUEST", `the password hash of "${name}": ${hash.reason}`);
    const now = this.nowIso();
    let created = now;
    if (options.created !== undefined) {
      const time = Date.parse(options.created);
      if (Number.isNaN(time)) throw new AuthError("E_BAD_REQUEST", `created "${options.created}" is not a date`);
      created = new Date(time).toISOString();
    }
    const user: UserProfile = {
      name,
      passwordHash: options.passwordHash,
      created,
      updated: now,
      passwordChanged: created,
      ...(typeof options.email === "string" && options.email.length <= 254 && { email: options.email }),
    };
    if (!(await createJson(this.storage, this.key(name), user))) {
      throw new AuthError("E_CONFLICT", `user "${name}" already exists`);
    }
    return user;
  }

  /** Every account, in name order. */
  async *list(): AsyncGenerator<UserProfile> {
    for await (const key of listKeys(this.storage, "users/")) {
      if (!key.endsWith("/profile.json")) continue;
      const user = await readJson<UserProfile>(this.storage, key);
      if (user) yield user;
    }
  }

  /**
   * Checks a password. Unknown users and wrong passwords get the same answer in the same time. A
   * disabled account or an expired password is reported only once the password was right, so the
   * answer tells nothing to someone guessing. Hashes made with weaker parameters are upgraded.
   */
  async authenticate(name: string, password: string): Promise<AuthenticateResult> {
    const user = await this.get(name);
    const fallback = dummyFor();
    const ok = await verifyPassword(password, user?.passwordHash ?? (await fallback));
    if (!user || !ok) {
      return { ok: false, code: "E_UNAUTHORIZED", wrongCredentials: true, reason: "incorrect user name or password" };
    }
    if (user.disabled) {
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        reason: `the account "${user.name}" is disabled since ${user.disabled.at}: ask a registry administrator`,
      };
    }
    const expires = passwordExpiry(user);
    if (expires !== undefined && expires <= this.clock()) {
      return {
        ok: false,
        code: "E_UNAUTHORIZED",
        passwordExpired: true,
        reason: `the password of "${user.name}" expired on ${new Date(expires).toISOString()}: set a new one (npm profile set password)`,
      };
    }
    if (needsRehash(user.passwordHash)) {
      const passwordHash = await hashPassword(password);
      const stored = user.passwordHash;
      await casUpdate<UserProfile>(this.storage, this.key(name), (doc) =>
        doc && doc.passwordHash === stored ? { ...doc, passwordHash } : undefined,
      );
    }
    return { ok: true, user };
  }

  private async update(name: string, change: (user: UserProfile) => UserProfile | undefined): Promise<UserProfile> {
    const result = await casUpdate<UserProfile>(this.storage, this.key(name), (user) => {
      if (!user) throw new AuthError("E_NOT_FOUND", `user "${name}" not found`);
      return change(user);
    });
    return result.value as UserProfile;
  }

  /**
   * Changes the password after checking the current one. An expired password may still be used here,
   * which is how its owner gets back in.
   */
  async changePassword(name: string, oldPassword: string, newPassword: string): Promise<UserProfile> {
    assertPassword(newPassword);
    const user = await this.get(name);
    const fallback = dummyFor();
    const ok = await verifyPassword(oldPassword, user?.passwordHash ?? (await fallback));
    if (!user || !ok) throw new AuthError("E_UNAUTHORIZED", "the current password is not correct");
    if (user.disabled) throw new AuthError("E_UNAUTHORIZED", `the account "${user.name}" is disabled`);
    return this.setPassword(name, newPassword);
  }

  /** Sets a password without the old one: for administrators and `fw` commands run next to the storage. */
  async setPassword(name: string, newPassword: string): Promise<UserProfile> {
    assertPassword(newPassword);
    const passwordHash = await hashPassword(newPassword);
    const now = this.nowIso();
    return this.update(name, (user) => ({ ...user, passwordHash, passwordChanged: now, updated: now }));
  }

  /** `undefined` removes the maximum age. */
  async setPasswordMaxAge(name: string, days: number | undefined): Promise<UserProfile> {
    const maxAge = assertMaxAge(days);
    const now = this.nowIso();
    return this.update(name, ({ passwordMaxAgeDays: _old, ...user }) => ({
      ...user,
      ...(maxAge !== undefined && { passwordMaxAgeDays: maxAge }),
      updated: now,
    }));
  }

  async disable(name: string, reason?: string): Promise<UserProfile> {
    const now = this.nowIso();
    return this.update(name, (user) =>
      user.disabled
        ? undefined
        : {
            ...user,
            disabled: { at: now, ...(reason !== undefined && { reason: reason.slice(0, 200) }) },
            updated: now,
          },
    );
  }

  async enable(name: string): Promise<UserProfile> {
    const now = this.nowIso();
    return this.update(name, ({ disabled, ...user }) => (disabled ? { ...user, updated: now } : undefined));
  }

  async setAdmin(name: string, admin: boolean): Promise<UserProfile> {
    const now = this.nowIso();
    return this.update(name, ({ admin: was, ...user }) =>
      (was === true) === admin ? undefined : { ...user, ...(admin && { admin: true }), updated: now },
    );
  }

  async setRoles(name: string, roles: string[]): Promise<UserProfile> {
    const now = this.nowIso();
    const unique = [...new Set(roles)].sort();
    return this.update(name, ({ roles: _old, ...user }) => ({
      ...user,
      ...(unique.length > 0 && { roles: unique }),
      updated: now,
    }));
  }

  /**
   * First step of `npm profile enable-2fa`: a new secret to show as a QR code. 2FA is on only once
   * `confirmTfa` got a valid code, so a mistyped scan cannot lock the user out.
   */
  async startTfa(name: string, mode: TfaMode): Promise<{ secret: string; uri: string }> {
    const secret = generateTotpSecret();
    const now = this.nowIso();
    const user = await this.update(name, (current) => {
      if (current.tfa) throw new AuthError("E_CONFLICT", "two-factor authentication is already on");
      return { ...current, tfaPending: { mode, secret: this.storedSecret(name, secret), started: now }, updated: now };
    });
    return { secret, uri: totpUri(secret, user.name, this.issuer) };
  }

  /** Second step: a code from the app turns 2FA on. Returns the recovery codes, shown this once. */
  async confirmTfa(name: string, code: string): Promise<{ recoveryCodes: string[] }> {
    const recoveryCodes = generateRecoveryCodes();
    const recoverySalt = randomBytes(16).toString("base64url");
    const recoveryHashes = recoveryCodes.map((c) => hashRecoveryCode(recoverySalt, c));
    const now = this.nowIso();
    const clock = this.clock();
    await this.update(name, ({ tfaPending, ...user }) => {
      if (user.tfa) throw new AuthError("E_CONFLICT", "two-factor authentication is already on");
      if (!tfaPending) throw new AuthError("E_BAD_REQUEST", "start enabling two-factor authentication first");
      const step = matchTotp(this.plainSecret(name, tfaPending.secret), code, { now: clock });
      if (step === null) throw new AuthError("E_OTP_REQUIRED", "that code is not valid: check the time on your device");
      const tfa: TfaState = {
        mode: tfaPending.mode,
        secret: tfaPending.secret,
        enabled: now,
        lastStep: step,
        recoverySalt,
        recoveryHashes,
      };
      return { ...user, tfa, updated: now };
    });
    return { recoveryCodes };
  }

  async setTfaMode(name: string, mode: TfaMode): Promise<UserProfile> {
    const now = this.nowIso();
    return this.update(name, (user) => {
      if (!user.tfa) throw new AuthError("E_BAD_REQUEST", "two-factor authentication is off");
      return user.tfa.mode === mode ? undefined : { ...user, tfa: { ...user.tfa, mode }, updated: now };
    });
  }

  /**
   * Turns 2FA off, or drops an enrolment that was started but not confirmed. The caller has checked the
   * password and, when 2FA was on, a current code (npm asks for both).
   */
  async disableTfa(name: string): Promise<UserProfile> {
    const now = this.nowIso();
    return this.update(name, ({ tfa, tfaPending, ...user }) =>
      tfa || tfaPending ? { ...user, updated: now } : undefined,
    );
  }

  /**
   * Checks a one-time password: a TOTP code (within ±1 step, never one already used) or a recovery code
   * (consumed). The check and the "used" mark are one compare-and-swap, so two replicas racing with the
   * same code cannot both accept it.
   */
  async verifySecondFactor(name: string, code: string): Promise<SecondFactorResult> {
    const now = this.clock();
    let result: SecondFactorResult = { ok: false, reason: "two-factor authentication is off for this account" };
    const user = await this.get(name);
    if (!user?.tfa) return result;
    await casUpdate<UserProfile>(this.storage, this.key(name), (current) => {
      const tfa = current?.tfa;
      if (!current || !tfa) {
        result = { ok: false, reason: "two-factor authentication is off for this account" };
        return undefined;
      }
      const step = matchTotp(this.plainSecret(name, tfa.secret), code, { now, afterStep: tfa.lastStep });
      if (step !== null) {
        result = { ok: true, method: "totp" };
        return { ...current, tfa: { ...tfa, lastStep: step } };
      }
      const hash = hashRecoveryCode(tfa.recoverySalt, code);
      const normalised = normaliseRecoveryCode(code);
      const index = isRecoveryCodeShape(normalised)
        ? tfa.recoveryHashes.findIndex((h) => constantTimeEqual(h, hash))
        : -1;
      if (index >= 0) {
        result = { ok: true, method: "recovery" };
        const recoveryHashes = tfa.recoveryHashes.filter((_, i) => i !== index);
        return { ...current, tfa: { ...tfa, recoveryHashes } };
      }
      result = {
        ok: false,
        reason: /^\s*\d{6}\s*$/.test(code)
          ? "that one-time password is wrong or was already used: wait for the next code in your app"
          : "that one-time password is not valid",
      };
      return undefined;
    });
    return result;
  }

  /** Passwords that stop working before `now + withinDays` (or already have), soonest first. */
  async passwordsDue(options: { withinDays?: number } = {}): Promise<DueItem[]> {
    const now = this.clock();
    const horizon = now + (options.withinDays ?? 14) * DAY_MS;
    const due: DueItem[] = [];
    for await (const user of this.list()) {
      const expires = passwordExpiry(user);
      if (expires === undefined || expires > horizon || user.disabled) continue;
      due.push({ kind: "password", user: user.name, due: new Date(expires).toISOString(), overdue: expires <= now });
    }
    return due.sort((a, b) => a.due.localeCompare(b.due));
  }
}
