import { resolve } from "node:path";
import { compareSpecificity, isValidUsername, parsePolicy } from "@fw/auth";
import { checkConfig } from "../config/parse.js";
import { type FwConfigInput, SIZE_PATTERN } from "../config/schema.js";
import type { ConfigIssue } from "../config/types.js";
import type { UplinksInput } from "../config/uplinks.js";
import { urlProblem } from "../config/url.js";

/** A Verdaccio setting fw has no equivalent for, and why. */
export interface NotConverted {
  /** Dotted path in the Verdaccio config, e.g. `uplinks.npmjs.headers`. */
  key: string;
  why: string;
}

/** A Verdaccio config turned into an fw one, with everything a person should know about the result. */
export interface ConvertedConfig {
  /** The fw config (valid: `issues` is empty unless the converter has a bug). */
  config: FwConfigInput;
  /** Verdaccio key → the fw key it became. */
  converted: Array<{ from: string; to: string }>;
  notConverted: NotConverted[];
  /** Converted, but behaving differently from Verdaccio or needing a look. */
  warnings: string[];
  /** Problems fw's own config check found in `config`. */
  issues: ConfigIssue[];
  /** Absolute paths of what the import reads, from the Verdaccio config (`storage`, `auth.htpasswd.file`). */
  storage?: string;
  htpasswd?: string;
  /** Extra package folders below `storage` named by `packages` rules (Verdaccio's per-rule `storage`). */
  extraStorage: string[];
}

export interface ConvertOptions {
  /** Folder relative paths in the Verdaccio config are relative to: the config file's folder. */
  configDir: string;
  /** Names in the htpasswd file: they become `user:` principals in rules. */
  users?: readonly string[];
}

type Rule = { access: string[]; publish: string[]; unpublish: string[]; proxy?: string[] };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A key from the input, quoted when it could be mistaken for a path or hide text: it ends up in comments. */
function keyText(key: string): string {
  return /^[\w@$*./-]+$/.test(key) ? key : JSON.stringify(key);
}

const INTERVAL_UNITS: Record<string, number> = {
  "": 1000,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  M: 2_592_000_000,
  y: 31_536_000_000,
};

/**
 * Verdaccio's durations in ms: a number of seconds, or words like `30s`, `2m`, `1h 30m` (units from
 * largest to smallest). `undefined` for anything else.
 */
export function parseInterval(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
  if (typeof value !== "string" || value.trim() === "") return undefined;
  let total = 0;
  let previous = Number.POSITIVE_INFINITY;
  for (const part of value.trim().split(/\s+/)) {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y|)$/.exec(part);
    const unit = match ? INTERVAL_UNITS[match[2] as string] : undefined;
    if (!match || unit === undefined || unit >= previous || (match[2] === "" && previous !== Number.POSITIVE_INFINITY))
      return undefined;
    previous = unit;
    total += Number(match[1]) * unit;
  }
  return Math.round(total);
}

/** Verdaccio's user lists: a space-separated string or an array; nothing means nobody. */
function userList(value: unknown): string[] | undefined {
  if (value === undefined || value === null || value === "") return [];
  if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value) && value.every((entry) => typeof entry === "string")) return value;
  return undefined;
}

/** `host:port`, `port`, `[::1]:port` or a URL, as Verdaccio's `listen` takes them. */
function parseListen(value: string): { host?: string; port?: number; tls?: boolean } | undefined {
  const text = value.trim();
  if (/^\d+$/.test(text)) return { port: Number(text) };
  if (/^https?:\/\//.test(text)) {
    try {
      const url = new URL(text);
      return {
        host: url.hostname.replace(/^\[|\]$/g, ""),
        port: url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port),
        tls: url.protocol === "https:",
      };
    } catch {
      return undefined;
    }
  }
  const match = /^(?:\[([^\]]+)\]|([^:/\s[\]]+)):(\d+)$/.exec(text);
  if (!match) return undefined;
  return { host: (match[1] ?? match[2]) as string, port: Number(match[3]) };
}

const LOG_LEVELS: Record<string, "debug" | "info" | "warn" | "error"> = {
  trace: "debug",
  debug: "debug",
  info: "info",
  http: "info",
  warn: "warn",
  error: "error",
  fatal: "error",
};

/** Keys of a Verdaccio config with no fw equivalent, and why. */
const NO_EQUIVALENT: Record<string, string> = {
  web: "fw has no web interface for browsing packages",
  i18n: "fw has no web interface",
  theme: "fw has no web interface",
  https: "fw speaks plain HTTP: terminate TLS in a proxy or load balancer in front of it",
  security: "fw issues its own tokens: users log in again (their passwords keep working)",
  publish: "fw has no offline publishing",
  notify: "fw sends no webhooks",
  store: "a storage plugin: the import reads Verdaccio's default folder layout only",
  plugins: "fw loads no plugins",
  experiments: "no fw equivalent",
  flags: "no fw equivalent",
  filters: "fw has no package filter plugins",
  user_agent: "fw sends its own user agent to uplinks",
  http_proxy: "fw has no outgoing proxy setting",
  https_proxy: "fw has no outgoing proxy setting",
  no_proxy: "fw has no outgoing proxy setting",
  secret: "fw issues its own tokens: users log in again (their passwords keep working)",
};

/** Keys that only say where Verdaccio runs from: used by the import or meaningless to fw. */
const SILENT = new Set(["self_path", "config_path", "_debug"]);

const UPLINK_KEYS_WITHOUT_EQUIVALENT: Record<string, string> = {
  headers: "fw sends no extra headers to uplinks",
  ca: "fw uses Node's certificate store (NODE_EXTRA_CA_CERTS adds one)",
  strict_ssl: "fw always verifies TLS certificates",
  cache: "fw always caches what its uplinks serve",
  agent_options: "no fw equivalent",
  proxy: "fw has no outgoing proxy setting",
  http_proxy: "fw has no outgoing proxy setting",
  https_proxy: "fw has no outgoing proxy setting",
  no_proxy: "fw has no outgoing proxy setting",
};

/**
 * Verdaccio's uplink name as an fw one (lowercase letters, digits, `-`, `_`; at most 64), unique among
 * `taken`.
 */
function uplinkName(name: string, taken: Set<string>): string {
  let base = name
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+/, "")
    .slice(0, 60);
  if (base === "") base = "uplink";
  let candidate = base;
  for (let n = 2; taken.has(candidate); n++) candidate = `${base}-${n}`;
  taken.add(candidate);
  return candidate;
}

/**
 * Reads a Verdaccio config file's YAML. Throws with the line and column of a syntax error. The YAML
 * parser is loaded here, not by everything that imports `@fw/server/node`.
 */
export async function readVerdaccioYaml(text: string): Promise<Record<string, unknown>> {
  const { parse } = await import("yaml");
  let value: unknown;
  try {
    value = parse(text);
  } catch (cause) {
    throw new Error(`the Verdaccio config is not valid YAML: ${(cause as Error).message.split("\n")[0]}`, { cause });
  }
  if (value === null || value === undefined) return {};
  if (!isObject(value)) throw new Error("the Verdaccio config must be a YAML mapping");
  return value;
}

/** Where the htpasswd file is, from `auth.htpasswd.file` (relative to the config's folder). */
export function htpasswdPath(yaml: Record<string, unknown>, configDir: string): string | undefined {
  const auth = yaml.auth;
  if (!isObject(auth) || !isObject(auth.htpasswd) || typeof auth.htpasswd.file !== "string") return undefined;
  return resolve(configDir, auth.htpasswd.file);
}

class Converter {
  readonly out: FwConfigInput = {};
  readonly converted: Array<{ from: string; to: string }> = [];
  readonly notConverted: NotConverted[] = [];
  readonly warnings: string[] = [];
  readonly extraStorage: string[] = [];
  private readonly users: Set<string>;
  private readonly uplinkNames = new Map<string, string>();
  private readonly roles = new Set<string>();
  /** Whether an auth plugin besides htpasswd is configured: then unknown names in rules are its groups. */
  private otherAuth = false;
  /** Verdaccio forwards `npm audit` only with its audit middleware on; fw's uplinks forward it by default. */
  private auditEnabled = false;

  constructor(
    private readonly yaml: Record<string, unknown>,
    options: ConvertOptions,
  ) {
    this.users = new Set(options.users ?? []);
  }

  skip(key: string, why: string): void {
    this.notConverted.push({ key, why });
  }

  run(): void {
    const yaml = this.yaml;
    // Auth first: it tells whether unknown names in the package rules are users or groups.
    this.auth(yaml.auth);
    this.audit(yaml.middlewares);
    this.uplinks(yaml.uplinks);
    this.packages(yaml.packages);
    this.listen(yaml.listen);
    this.publicUrl(yaml);
    this.bodySize(yaml.max_body_size);
    this.log(yaml.log ?? yaml.logs, yaml.log === undefined ? "logs" : "log");
    this.server(yaml.server);
    this.rateLimit(yaml.userRateLimit);
    const handled = new Set([
      "auth",
      "middlewares",
      "uplinks",
      "packages",
      "listen",
      "url_prefix",
      "public_url",
      "max_body_size",
      "log",
      "logs",
      "server",
      "userRateLimit",
      "storage",
    ]);
    for (const [key, value] of Object.entries(yaml)) {
      if (handled.has(key) || SILENT.has(key)) continue;
      if (key === "web" && isObject(value) && value.enable === false) continue;
      this.skip(keyText(key), NO_EQUIVALENT[key] ?? "not a setting this converter knows");
    }
  }

  private auth(auth: unknown): void {
    if (auth === undefined) return;
    if (!isObject(auth)) {
      this.skip("auth", "expected a mapping");
      return;
    }
    for (const [plugin, settings] of Object.entries(auth)) {
      if (plugin !== "htpasswd") {
        this.otherAuth = true;
        this.skip(
          `auth.${keyText(plugin)}`,
          "an auth plugin: fw authenticates its own users (the htpasswd users are imported)",
        );
        continue;
      }
      if (!isObject(settings)) {
        this.skip("auth.htpasswd", "expected a mapping");
        continue;
      }
      for (const [key, value] of Object.entries(settings)) {
        if (key === "file") continue;
        if (key === "max_users") {
          const max = typeof value === "string" ? Number(value) : value;
          if (max === -1 || (typeof max === "number" && max <= 0)) {
            this.out.auth = { ...this.out.auth, signup: false };
            this.converted.push({ from: "auth.htpasswd.max_users", to: "auth.signup" });
          } else {
            this.out.auth = { ...this.out.auth, signup: true };
            this.converted.push({ from: "auth.htpasswd.max_users", to: "auth.signup" });
            if (typeof max === "number" && Number.isFinite(max))
              this.warnings.push(
                `auth.htpasswd.max_users is ${max}: fw has no user limit; set auth.signup to false once everyone has an account`,
              );
          }
          continue;
        }
        this.skip(
          `auth.htpasswd.${keyText(key)}`,
          key === "algorithm" || key === "rounds" ? "fw hashes new passwords with scrypt" : "no fw equivalent",
        );
      }
    }
  }

  private audit(middlewares: unknown): void {
    if (middlewares === undefined) return;
    if (!isObject(middlewares)) {
      this.skip("middlewares", "expected a mapping");
      return;
    }
    for (const [name, settings] of Object.entries(middlewares)) {
      if (name === "audit") {
        this.auditEnabled = isObject(settings) && settings.enabled === true;
        continue;
      }
      this.skip(`middlewares.${keyText(name)}`, "fw loads no middleware plugins");
    }
  }

  private uplinks(uplinks: unknown): void {
    if (uplinks === undefined || uplinks === null) return;
    if (!isObject(uplinks)) {
      this.skip("uplinks", "expected a mapping");
      return;
    }
    const out: UplinksInput = {};
    const taken = new Set<string>();
    for (const [name, settings] of Object.entries(uplinks)) {
      const at = `uplinks.${keyText(name)}`;
      if (!isObject(settings) || typeof settings.url !== "string") {
        this.skip(at, "has no url");
        continue;
      }
      const problem = urlProblem(settings.url);
      if (problem) {
        this.skip(at, `its url cannot be used (${problem})`);
        continue;
      }
      const fwName = uplinkName(name, taken);
      this.uplinkNames.set(name, fwName);
      if (fwName !== name)
        this.warnings.push(`uplink "${name}" is called "${fwName}" in fw (uplink names are lowercase)`);
      const uplink: UplinksInput[string] = { url: settings.url };
      for (const [key, value] of Object.entries(settings)) {
        const keyAt = `${at}.${keyText(key)}`;
        switch (key) {
          case "url":
            break;
          case "timeout": {
            const ms = parseInterval(value);
            if (ms === undefined || ms < 1) this.skip(keyAt, "not a duration");
            else uplink.timeouts = { responseMs: ms, idleMs: ms };
            break;
          }
          case "maxage": {
            const ms = parseInterval(value);
            if (ms === undefined) this.skip(keyAt, "not a duration");
            else uplink.maxAgeMs = ms;
            break;
          }
          case "max_fails": {
            const n = Number(value);
            if (Number.isInteger(n) && n >= 1) uplink.circuit = { ...uplink.circuit, failures: n };
            else this.skip(keyAt, "fw always rests an uplink after repeated failures (circuit.failures ≥ 1)");
            break;
          }
          case "fail_timeout": {
            const ms = parseInterval(value);
            if (ms === undefined) this.skip(keyAt, "not a duration");
            else uplink.circuit = { ...uplink.circuit, cooldownMs: ms };
            break;
          }
          case "auth":
            this.uplinkAuth(value, keyAt, uplink);
            break;
          default:
            this.skip(keyAt, UPLINK_KEYS_WITHOUT_EQUIVALENT[key] ?? "not a setting this converter knows");
        }
      }
      uplink.audit = this.auditEnabled;
      out[fwName] = uplink;
      this.converted.push({ from: at, to: `uplinks.${fwName}` });
    }
    if (Object.keys(out).length > 0) {
      this.out.uplinks = out;
      if (!this.auditEnabled)
        this.warnings.push(
          "Verdaccio's audit middleware is off, so fw's uplinks do not forward npm audit (audit: false)",
        );
    }
  }

  private uplinkAuth(value: unknown, at: string, uplink: UplinksInput[string]): void {
    if (!isObject(value)) {
      this.skip(at, "expected a mapping");
      return;
    }
    const type = typeof value.type === "string" ? value.type.toLowerCase() : "bearer";
    if (type !== "bearer" && type !== "basic") {
      this.skip(at, `auth type "${type}" is not bearer or basic`);
      return;
    }
    if (value.token_env === true) {
      uplink.auth = { type, tokenEnv: "NPM_TOKEN" };
    } else if (typeof value.token_env === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(value.token_env)) {
      uplink.auth = { type, tokenEnv: value.token_env };
    } else if (typeof value.token === "string" && value.token !== "") {
      uplink.auth = { type, token: value.token };
      this.warnings.push(
        `${at}.token is copied as written: move it to an environment variable (tokenEnv) or fw secrets ("secret:<name>")`,
      );
    } else {
      this.skip(at, "has neither token nor token_env");
    }
  }

  /** One entry of an access list as an fw principal, or undefined when it can mean nobody in fw. */
  private principal(entry: string, at: string): string | undefined {
    switch (entry) {
      case "$all":
      case "@all":
        return "$all";
      case "all":
        // Verdaccio puts "all" in the groups of logged-in users only (anonymous ones get "$all" and "@all").
        this.warnings.push(`${at}: Verdaccio's "all" means logged-in users only; written as $authenticated`);
        return "$authenticated";
      case "$authenticated":
      case "@authenticated":
        return "$authenticated";
      case "$anonymous":
      case "@anonymous":
        return "$anonymous";
    }
    if (entry.startsWith("$") || entry.startsWith("@")) {
      this.warnings.push(`${at}: "${entry}" is no Verdaccio group fw knows; left out`);
      return undefined;
    }
    const lower = entry.toLowerCase();
    const reserved = ["admin", "publisher", "reader", "anonymous", "all", "authenticated"].includes(lower);
    if (this.users.has(entry) || !this.otherAuth) {
      if (!isValidUsername(entry) || reserved) {
        this.warnings.push(`${at}: "${entry}" cannot be an fw user name; left out`);
        return undefined;
      }
      if (!this.users.has(entry))
        this.warnings.push(`${at}: "${entry}" is not an htpasswd user; kept as the user name "${lower}"`);
      return `user:${lower}`;
    }
    // With another auth plugin, a name that is no htpasswd user is one of that plugin's groups.
    if (!isValidUsername(entry) || reserved) {
      this.warnings.push(`${at}: group "${entry}" cannot be an fw role name; left out`);
      return undefined;
    }
    if (!this.roles.has(lower)) {
      this.roles.add(lower);
      this.warnings.push(
        `group "${entry}" (from an auth plugin) is the role "${lower}" in fw, with no members: list them under roles.${lower}`,
      );
    }
    return `role:${lower}`;
  }

  private principals(value: unknown, at: string): string[] | undefined {
    const list = userList(value);
    if (list === undefined) {
      this.skip(at, "expected a list of users and groups");
      return undefined;
    }
    const out: string[] = [];
    for (const entry of list) {
      const mapped = this.principal(entry, at);
      if (mapped !== undefined && !out.includes(mapped)) out.push(mapped);
    }
    return out;
  }

  private packages(packages: unknown): void {
    if (packages !== undefined && packages !== null && !isObject(packages)) {
      this.skip("packages", "expected a mapping");
      return;
    }
    const rules: Record<string, Rule> = {};
    for (const [pattern, settings] of Object.entries(packages ?? {})) {
      const at = `packages.${keyText(pattern)}`;
      if (!isObject(settings)) {
        this.skip(at, "expected a mapping");
        continue;
      }
      // Verdaccio matches case-insensitively; fw's names and patterns are lowercase.
      const fwPattern = pattern.toLowerCase();
      try {
        parsePolicy({ packages: { [fwPattern]: {} } });
      } catch {
        this.skip(at, "fw patterns are package names with * (within a scope or name) and ** (anything)");
        continue;
      }
      if (rules[fwPattern]) {
        this.skip(at, `the same pattern as an earlier rule once lowercased ("${fwPattern}"), which Verdaccio applied`);
        continue;
      }
      const access = this.principals(settings.access, `${at}.access`) ?? [];
      const publish = this.principals(settings.publish, `${at}.publish`) ?? [];
      const unpublishList = userList(settings.unpublish);
      // Verdaccio checks publish rights when unpublish lists nobody (or is missing).
      const unpublish =
        unpublishList === undefined || unpublishList.length === 0
          ? publish
          : (this.principals(settings.unpublish, `${at}.unpublish`) ?? []);
      const rule: Rule = { access, publish, unpublish };
      const proxy = userList(settings.proxy);
      if (proxy === undefined) this.skip(`${at}.proxy`, "expected a list of uplink names");
      else {
        rule.proxy = [];
        for (const name of proxy) {
          const fwName = this.uplinkNames.get(name);
          if (fwName === undefined) this.warnings.push(`${at}.proxy: unknown uplink "${name}"; left out`);
          else if (!rule.proxy.includes(fwName)) rule.proxy.push(fwName);
        }
      }
      for (const key of Object.keys(settings)) {
        if (["access", "publish", "unpublish", "proxy"].includes(key)) continue;
        if (key === "storage" && typeof settings.storage === "string") {
          this.extraStorage.push(settings.storage);
          this.skip(`${at}.storage`, "fw keeps every package in its one storage; the import reads this folder too");
          continue;
        }
        this.skip(`${at}.${keyText(key)}`, "no fw equivalent");
      }
      rules[fwPattern] = rule;
      this.converted.push({ from: at, to: `packages.${fwPattern}` });
    }
    if (!rules["**"]) {
      rules["**"] = { access: [], publish: [], unpublish: [], proxy: [] };
      this.warnings.push(
        'no rule for "**": Verdaccio refuses names no rule matches, so a "**" rule allowing nobody was added (fw would otherwise let everyone read)',
      );
    }
    this.orderWarnings(Object.keys(rules));
    if (this.roles.size > 0) this.out.roles = Object.fromEntries([...this.roles].sort().map((role) => [role, []]));
    this.out.packages = rules;
  }

  /**
   * Verdaccio uses the first rule that matches, in file order; fw the most specific one. Where a later,
   * more specific rule overlaps an earlier one, names matching both change rules.
   */
  private orderWarnings(patterns: string[]): void {
    const compiled = patterns.map((pattern, index) => ({
      pattern,
      index,
      matches: (parsePolicy({ packages: { [pattern]: {} } }).rules[0] as { matches(name: string): boolean }).matches,
    }));
    const sample = (pattern: string) => pattern.replace(/\*\*/g, "x").replace(/\*/g, "x");
    for (const earlier of compiled) {
      for (const later of compiled) {
        if (later.index <= earlier.index || compareSpecificity(later, earlier) >= 0) continue;
        if (!earlier.matches(sample(later.pattern)) && !later.matches(sample(earlier.pattern))) continue;
        this.warnings.push(
          `rule order: for names matching both "${earlier.pattern}" and "${later.pattern}", Verdaccio applied "${earlier.pattern}" (listed first) but fw applies the more specific "${later.pattern}"`,
        );
      }
    }
  }

  private listen(value: unknown): void {
    if (value === undefined || value === null) return;
    let first = value;
    if (Array.isArray(value)) {
      first = value[0];
      if (value.length > 1) this.skip("listen", `fw listens on one address; used the first, ${String(value[0])}`);
    }
    const parsed = typeof first === "string" || typeof first === "number" ? parseListen(String(first)) : undefined;
    if (!parsed) {
      this.skip("listen", "not a host:port, port or URL fw can listen on (unix sockets are not)");
      return;
    }
    this.out.listen = {
      ...(parsed.host !== undefined && { host: parsed.host }),
      ...(parsed.port !== undefined && { port: parsed.port }),
    };
    this.converted.push({ from: "listen", to: "listen" });
    if (parsed.tls) this.warnings.push("listen used https: fw speaks plain HTTP; put TLS in a proxy in front of it");
  }

  private publicUrl(yaml: Record<string, unknown>): void {
    for (const key of ["public_url", "url_prefix"] as const) {
      const value = yaml[key];
      if (value === undefined || value === null || value === "" || value === "/") continue;
      if (typeof value === "string" && urlProblem(value) === undefined) {
        if (this.out.publicUrl === undefined) {
          this.out.publicUrl = value;
          this.converted.push({ from: key, to: "publicUrl" });
        } else this.skip(key, "publicUrl was already set from public_url");
        continue;
      }
      this.skip(
        key,
        typeof value === "string" && value.startsWith("/")
          ? `a path: set publicUrl to the full URL (https://<host>${value.replace(/\/?$/, "/")}) and have your proxy strip the path`
          : "not an absolute http(s) URL",
      );
    }
  }

  private bodySize(value: unknown): void {
    if (value === undefined || value === null) return;
    if (
      (typeof value === "number" && Number.isInteger(value) && value > 0) ||
      (typeof value === "string" && SIZE_PATTERN.test(value))
    ) {
      this.out.limits = { maxBodySize: value as number | string };
      this.converted.push({ from: "max_body_size", to: "limits.maxBodySize" });
    } else this.skip("max_body_size", 'not a size such as "10mb"');
  }

  private log(value: unknown, key: string): void {
    if (value === undefined || value === null) return;
    // Verdaccio 3/4 wrote `logs:` as a list of outputs; the first one stands for all.
    const settings = Array.isArray(value) ? value[0] : value;
    if (!isObject(settings)) {
      this.skip(key, "expected a mapping");
      return;
    }
    const log: NonNullable<FwConfigInput["log"]> = {};
    if (typeof settings.level === "string" && LOG_LEVELS[settings.level]) log.level = LOG_LEVELS[settings.level];
    if (settings.format === "json") log.format = "json";
    else if (typeof settings.format === "string") log.format = "pretty";
    if (settings.type === "file" || settings.path !== undefined)
      this.skip(`${key}.path`, "fw logs to stderr; redirect it or use your service manager's log");
    if (Object.keys(log).length > 0) {
      this.out.log = log;
      this.converted.push({ from: key, to: "log" });
    }
  }

  private server(value: unknown): void {
    if (value === undefined || value === null) return;
    if (!isObject(value)) {
      this.skip("server", "expected a mapping");
      return;
    }
    for (const [key, setting] of Object.entries(value)) {
      if (key !== "trustProxy") {
        this.skip(`server.${keyText(key)}`, "no fw equivalent");
        continue;
      }
      const addresses =
        setting === "loopback"
          ? ["127.0.0.0/8", "::1/128"]
          : typeof setting === "string"
            ? setting.split(/\s*,\s*/).filter(Boolean)
            : undefined;
      if (addresses?.every((entry) => /^[0-9a-f.:]+(\/\d{1,3})?$/i.test(entry))) {
        this.out.trustProxy = addresses;
        this.converted.push({ from: "server.trustProxy", to: "trustProxy" });
      } else this.skip("server.trustProxy", "fw trusts proxies by address or CIDR range (trustProxy: [...])");
    }
  }

  private rateLimit(value: unknown): void {
    if (value === undefined || value === null) return;
    const windowMs = isObject(value) ? Number(value.windowMs ?? 1000) : Number.NaN;
    const max = isObject(value) ? Number(value.max) : Number.NaN;
    if (!(windowMs > 0) || !Number.isInteger(max) || max < 1) {
      this.skip("userRateLimit", "expected windowMs and max");
      return;
    }
    this.out.auth = { ...this.out.auth, rateLimit: { burst: max, perSecond: (max * 1000) / windowMs } };
    this.converted.push({ from: "userRateLimit", to: "auth.rateLimit" });
  }
}

/**
 * Turns a Verdaccio config (parsed YAML) into an fw config: uplinks, package rules with their proxy
 * lists, listen address, public URL, body size, log, trusted proxies and rate limit. Everything
 * without an fw equivalent is listed in `notConverted`, never dropped silently. Package rules keep
 * Verdaccio's meaning: every rule states access, publish and unpublish (Verdaccio does not inherit
 * them), unpublish falls back to publish as in Verdaccio, and names no rule matches stay refused.
 */
export function convertVerdaccioConfig(yaml: Record<string, unknown>, options: ConvertOptions): ConvertedConfig {
  const converter = new Converter(yaml, options);
  converter.run();
  const result = checkConfig(converter.out, { baseDir: options.configDir });
  const storage = typeof yaml.storage === "string" ? resolve(options.configDir, yaml.storage) : undefined;
  const htpasswd = htpasswdPath(yaml, options.configDir);
  return {
    config: converter.out,
    converted: converter.converted,
    notConverted: converter.notConverted,
    warnings: converter.warnings,
    issues: "issues" in result ? result.issues : [],
    ...(storage !== undefined && { storage }),
    ...(htpasswd !== undefined && { htpasswd }),
    extraStorage: storage === undefined ? [] : converter.extraStorage.map((dir) => resolve(storage, dir)),
  };
}

/**
 * JSON5 as a person would write it: bare keys where they are identifiers, lists of plain values on
 * one line, trailing commas. (`JSON5.stringify` puts every list item on its own line.)
 */
function json5(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.every((item) => item === null || typeof item !== "object")) {
      return `[${value.map((item) => JSON.stringify(item)).join(", ")}]`;
    }
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${json5(item, inner)},\n`).join("")}${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, item]) => item !== undefined);
    if (entries.length === 0) return "{}";
    const inner = `${indent}  `;
    const lines = entries.map(([key, item]) => {
      const name = /^[A-Za-z_$][\w$]*$/.test(key) ? key : JSON.stringify(key);
      return `${inner}${name}: ${json5(item, inner)},\n`;
    });
    return `{\n${lines.join("")}${indent}}`;
  }
  return JSON.stringify(value);
}

function commentLines(lines: string[]): string {
  // Text from the Verdaccio config could hold a line break; in a comment it would end the comment.
  return lines.map((line) => `//   - ${line.replace(/[\r\n\u2028\u2029]+/g, " ")}`).join("\n");
}

/**
 * The converted config as a JSON5 file: a comment naming its source, what was not converted and what
 * to check, then the config. `storage` is added by the caller when the file should name one.
 */
export function renderConvertedConfig(
  converted: Pick<ConvertedConfig, "config" | "notConverted" | "warnings">,
  options: { source: string; storage?: FwConfigInput["storage"]; date?: Date },
): string {
  const config: FwConfigInput = {
    ...(converted.config.listen && { listen: converted.config.listen }),
    ...(converted.config.publicUrl !== undefined && { publicUrl: converted.config.publicUrl }),
    ...(options.storage && { storage: options.storage }),
    ...converted.config,
  };
  const header = [
    `// fw registry config, converted from the Verdaccio config ${JSON.stringify(options.source)}`,
    `// by \`fw registry import verdaccio\` on ${(options.date ?? new Date()).toISOString()}. JSON5: comments and`,
    "// trailing commas are fine. Check it with `fw registry config load <this file>`.",
  ];
  if (converted.notConverted.length > 0) {
    header.push("//", "// Not converted (no fw equivalent):");
    header.push(commentLines(converted.notConverted.map((item) => `${item.key}: ${item.why}`)));
  }
  if (converted.warnings.length > 0) {
    header.push("//", "// Check:");
    header.push(commentLines(converted.warnings));
  }
  return `${header.join("\n")}\n${json5(config)}\n`;
}
