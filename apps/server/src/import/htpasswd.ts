/** One account of an htpasswd file, as Verdaccio's htpasswd plugin writes it: `name:hash:autocreated <date>`. */
export interface HtpasswdEntry {
  name: string;
  /** The stored hash as written: bcrypt, `{SHA}`, `$apr1$`, DES crypt, `{PLAIN}…`. */
  hash: string;
  /** ISO time from Verdaccio's `autocreated <date>` comment, when it has one. */
  created?: string;
  /** 1-based line number, for messages. */
  line: number;
}

export interface HtpasswdProblem {
  line: number;
  reason: string;
}

/**
 * Reads an htpasswd file. Blank lines and `#` comments are skipped; a name listed twice keeps its
 * last line, as Verdaccio does (the earlier one is reported). Hashes never contain ":", so the third
 * field, Verdaccio's comment, may (its date does).
 */
export function parseHtpasswd(text: string): { entries: HtpasswdEntry[]; problems: HtpasswdProblem[] } {
  const byName = new Map<string, HtpasswdEntry>();
  const problems: HtpasswdProblem[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const first = trimmed.indexOf(":");
    if (first <= 0) {
      problems.push({ line, reason: "not a name:hash line" });
      return;
    }
    const name = trimmed.slice(0, first).trim();
    const rest = trimmed.slice(first + 1);
    const second = rest.indexOf(":");
    const hash = (second === -1 ? rest : rest.slice(0, second)).trim();
    const comment = second === -1 ? "" : rest.slice(second + 1);
    if (hash === "") {
      problems.push({ line, reason: `"${name}" has no password hash` });
      return;
    }
    const stamp = /autocreated\s+(\S+)/.exec(comment)?.[1];
    const time = stamp === undefined ? Number.NaN : Date.parse(stamp);
    const previous = byName.get(name);
    if (previous) problems.push({ line: previous.line, reason: `"${name}" is listed again on line ${line}` });
    byName.set(name, { name, hash, line, ...(!Number.isNaN(time) && { created: new Date(time).toISOString() }) });
  });
  return {
    entries: [...byName.values()].sort((a, b) => a.line - b.line),
    problems: problems.sort((a, b) => a.line - b.line),
  };
}
