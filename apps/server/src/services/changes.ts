import { isStorageError, type StorageDriver } from "@fw/storage-r2";

/** One entry of the change feed: package `name` changed (published, unpublished, tagged…) at `time`. */
export interface Change {
  seq: number;
  name: string;
  /** The packument's `_rev` after the change, when known. */
  rev?: string;
  /** The package's document is gone (a whole-package unpublish). */
  deleted?: boolean;
  time: string;
}

/** Entries per block: a block is one storage folder, listed in a single page. */
const BLOCK = 1000;
const PREFIX = "changes/";

function blockPrefix(block: number): string {
  return `${PREFIX}b${String(block).padStart(9, "0")}/`;
}

function changeKey(seq: number): string {
  return `${blockPrefix(Math.floor(seq / BLOCK))}${String(seq).padStart(12, "0")}.json`;
}

function seqOf(key: string): number {
  return Number(key.slice(key.lastIndexOf("/") + 1, -".json".length));
}

/** Whether a block's last entry is the last number it can hold, so later numbers are in the next block. */
function isFull(block: number, lastKey: string): boolean {
  return seqOf(lastKey) === (block + 1) * BLOCK - 1;
}

const decoder = new TextDecoder();

/**
 * An append-only, ordered feed of package changes kept in storage as create-only objects
 * (`changes/b<block>/<seq>.json`), for mirrors (`GET /-/changes?since=`) and for replicas, which follow
 * it to refresh caches and search. No database and no lock: a writer creates the next sequence
 * number with `ifNoneMatch: "*"`, so two writers never get the same one, and it only ever tries the
 * number after one it has seen exist, so the sequence has no holes and a reader never sees `n + 1`
 * before `n`.
 *
 * An entry is written after its document change is committed: a process that dies in between leaves
 * the change out of the feed (replicas still see the document itself when they revalidate their cache).
 */
export class ChangeFeed {
  /** The highest sequence number this process has seen exist (0: none yet). */
  private known: number | undefined;
  private appending: Promise<unknown> = Promise.resolve();

  constructor(private readonly storage: StorageDriver) {}

  /** Appends a change and returns its sequence number. Appends from this process go one at a time. */
  append(change: Omit<Change, "seq" | "time">): Promise<number> {
    const run = this.appending.then(() => this.appendNow(change));
    this.appending = run.catch(() => {});
    return run;
  }

  private async appendNow(change: Omit<Change, "seq" | "time">): Promise<number> {
    let seq = (this.known ?? (await this.latest())) + 1;
    for (let attempt = 0; attempt < 50; attempt++) {
      const entry: Change = { seq, ...change, time: new Date().toISOString() };
      try {
        await this.storage.put(changeKey(seq), JSON.stringify(entry), {
          ifNoneMatch: "*",
          contentType: "application/json",
        });
        this.known = seq;
        return seq;
      } catch (error) {
        if (!isStorageError(error, "E_PRECONDITION")) throw error;
        // Another writer took it: start again after the latest that exists now.
        seq = (await this.latest(seq)) + 1;
      }
    }
    throw new Error("could not append to the change feed: too many concurrent writers");
  }

  /** The highest sequence number in storage (0 when the feed is empty), searching from `from`. */
  async latest(from = this.known ?? 0): Promise<number> {
    let block = Math.floor(from / BLOCK);
    // Blocks fill in order: walk forward from the one holding `from` to the last that has entries.
    let highest = from;
    for (;;) {
      const page = await this.storage.list({ prefix: blockPrefix(block), limit: BLOCK });
      const last = page.objects.at(-1);
      if (!last) break;
      highest = Math.max(highest, seqOf(last.key));
      if (!isFull(block, last.key)) break;
      block++;
    }
    this.known = Math.max(this.known ?? 0, highest);
    return highest;
  }

  /**
   * Changes after `since`, oldest first, at most `limit` of them. Sequence numbers have no holes, so
   * entries are read by key from `since + 1` up to the first that does not exist: a follower polling a
   * quiet feed costs one read, not a listing of a block of up to a thousand entries.
   */
  async since(since: number, limit = 1000): Promise<Change[]> {
    const changes: Change[] = [];
    let next = since + 1;
    // Entries are small objects: read a few at a time (1, 2, 4… up to 16), keeping their order.
    for (let batch = 1; changes.length < limit; batch = Math.min(batch * 2, 16)) {
      const keys = Array.from({ length: Math.min(batch, limit - changes.length) }, (_, i) => changeKey(next + i));
      const objects = await Promise.all(keys.map((key) => this.storage.get(key)));
      const missing = objects.indexOf(null);
      for (const object of missing === -1 ? objects : objects.slice(0, missing)) {
        if (object) changes.push(JSON.parse(decoder.decode(object.body)) as Change);
      }
      if (missing !== -1) break;
      next += keys.length;
    }
    const last = changes.at(-1);
    if (last) this.known = Math.max(this.known ?? 0, last.seq);
    return changes;
  }
}

export interface FollowOptions {
  /** How often to look for new entries, in ms. Default 500. */
  intervalMs?: number;
  /** Called with the new changes of each look, oldest first (at most 1000 at a time). */
  onChanges(changes: Change[]): void | Promise<void>;
  onError?(error: unknown): void;
}

/**
 * Follows the feed from its current end: calls `onChange` for every entry appended afterwards, until
 * stopped. The timer does not keep the process alive.
 */
export function followChanges(feed: ChangeFeed, options: FollowOptions): { stop(): void; ready: Promise<void> } {
  let position = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const poll = async () => {
    try {
      for (;;) {
        const changes = await feed.since(position);
        if (stopped || changes.length === 0) break;
        position = (changes.at(-1) as Change).seq;
        await options.onChanges(changes);
      }
    } catch (error) {
      options.onError?.(error);
    }
    if (stopped) return;
    timer = setTimeout(poll, options.intervalMs ?? 500);
    timer.unref?.();
  };
  const ready = feed.latest().then(
    (seq) => {
      position = seq;
      if (!stopped) void poll();
    },
    (error: unknown) => {
      options.onError?.(error);
      if (!stopped) void poll();
    },
  );
  return {
    ready,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
