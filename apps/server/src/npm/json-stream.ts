/**
 * JSON in pieces, for documents too large to hold as one text: a popular package's packument is
 * 20 MB, and `JSON.parse(decode(bytes))` holds its bytes, its text and the parsed object at once
 * (~55 MB for 20 MB stored), `JSON.stringify` its text and then its bytes.
 *
 * Both directions split the document at the same places: the top-level object's members, and the
 * members of those that are objects themselves (`versions`, `time`…). Each piece goes through the
 * native `JSON.parse`/`JSON.stringify`, so values are exactly what those make; only the splitting is
 * scanned here (strings are skipped with `indexOf`). Streaming parsers on npm (stream-json,
 * @streamparser/json) tokenize every character in JavaScript instead; this one parses the 20 MB
 * packument of the bench in 140–150 ms against 115 ms for `JSON.parse` of the whole text.
 */

import { readAll } from "@fw/storage-r2";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

const decoder = new TextDecoder();
/** For pieces: a default decoder drops a byte order mark at the start of every text it decodes. */
const pieceDecoder = new TextDecoder("utf-8", { ignoreBOM: true });
const encoder = new TextEncoder();

function isSpace(byte: number): boolean {
  return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}

/** Sets a member as `JSON.parse` does: `__proto__` becomes an own property, not the prototype. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__")
    Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
  else target[key] = value;
}

/** Where bytes come from: `read` puts the next ones into `store` after its first `kept` bytes. */
interface Source {
  /**
   * The store now holding the kept bytes and the new ones (another when it grew, or when a byte stream
   * took it over and handed it back), and how many came: 0 at the end.
   */
  read(store: Bytes, kept: number): Promise<{ store: Bytes; count: number }>;
  close(): Promise<void>;
}

type Bytes = Uint8Array<ArrayBuffer>;

/** Room a read is given at least; the store starts at `STORE_BYTES` and grows for a piece larger than that. */
const MIN_ROOM = 64 * 1024;
const STORE_BYTES = 256 * 1024;

/** A store with room for `needed` bytes after the `kept` ones, which it keeps at its start. */
function roomy(store: Bytes, kept: number, needed: number): Bytes {
  if (store.byteLength - kept >= needed) return store;
  const grown = new Uint8Array(Math.max(STORE_BYTES, store.byteLength * 2, kept + needed));
  grown.set(store.subarray(0, kept));
  return grown;
}

/** A byte stream read into the parser's own buffer (fs storage's are): one buffer for the whole document. */
function byobSource(reader: ReadableStreamBYOBReader): Source {
  return {
    async read(store, kept) {
      const target = roomy(store, kept, MIN_ROOM);
      // The read takes the buffer over and hands it back filled.
      const { value } = await reader.read(new Uint8Array(target.buffer, kept, target.byteLength - kept));
      // `value` is absent only when the stream was cancelled, which the parser never does mid-read.
      if (!value) throw new Error("the byte stream was cancelled");
      return { store: new Uint8Array(value.buffer), count: value.byteLength };
    },
    async close() {
      await reader.cancel().catch(() => {});
    },
  };
}

/** Any other stream: each chunk is copied into the parser's buffer. */
function chunkSource(body: AsyncIterable<Uint8Array>): Source {
  const iterator = body[Symbol.asyncIterator]();
  return {
    async read(store, kept) {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return { store, count: 0 };
        const chunk = next.value;
        if (chunk.byteLength === 0) continue;
        const target = roomy(store, kept, chunk.byteLength);
        target.set(chunk, kept);
        return { store: target, count: chunk.byteLength };
      }
    },
    async close() {
      await iterator.return?.();
    },
  };
}

function sourceOf(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): Source {
  if (body instanceof ReadableStream) {
    try {
      return byobSource(body.getReader({ mode: "byob" }));
    } catch {
      // Not a byte stream: read it chunk by chunk.
    }
  }
  return chunkSource(body);
}

/**
 * Bytes from a stream, in a buffer of the parser's own, with the unconsumed part kept across reads: the
 * source's chunks are not kept, and a byte stream is read straight into that buffer, so a document of
 * megabytes leaves no trail of chunks for the garbage collector.
 */
class Input {
  /** The bytes read and not given up yet: the start of `store`. */
  buf: Uint8Array = new Uint8Array(0);
  pos = 0;
  done = false;
  private store: Bytes = new Uint8Array(0);
  private readonly source: Source;

  constructor(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>) {
    this.source = sourceOf(body);
  }

  async close(): Promise<void> {
    if (!this.done) {
      this.done = true;
      await this.source.close();
    }
  }

  /**
   * Keeps the bytes from `keep` on, which then start at 0, and reads more after them; false at the end
   * of the stream (when the kept bytes are all there is).
   */
  async more(keep: number): Promise<boolean> {
    const kept = this.buf.byteLength - keep;
    if (keep > 0 && kept > 0) this.store.copyWithin(0, keep, this.buf.byteLength);
    const read = this.done ? { store: this.store, count: 0 } : await this.source.read(this.store, kept);
    this.store = read.store;
    this.buf = read.store.subarray(0, kept + read.count);
    this.pos -= keep;
    if (read.count === 0) this.done = true;
    return read.count > 0;
  }

  /** The next byte that is not white space, without consuming it; -1 at the end. */
  async peek(): Promise<number> {
    for (;;) {
      while (this.pos < this.buf.byteLength) {
        const byte = this.buf[this.pos] as number;
        if (!isSpace(byte)) return byte;
        this.pos++;
      }
      if (!(await this.more(this.pos))) return -1;
    }
  }

  async expect(byte: number, what: string): Promise<void> {
    const found = await this.peek();
    if (found !== byte) throw unexpected(found, what);
    this.pos++;
  }

  /**
   * Parses the JSON value starting at the next non-space byte: a string, number, literal, array or
   * object, ending where its bytes end (a scalar at a `,` `}` `]`, white space or the end of input).
   */
  async value(): Promise<unknown> {
    if ((await this.peek()) === -1) throw unexpected(-1, "a value");
    let start = this.pos;
    let state = { done: false, at: start, depth: 0, inString: false };
    for (;;) {
      state = this.scan(state.at, state.depth, state.inString);
      if (state.done) {
        this.pos = state.at;
        return JSON.parse(pieceDecoder.decode(this.buf.subarray(start, state.at)));
      }
      if (!(await this.more(start))) {
        // A scalar may end with the input; anything else is cut short, and JSON.parse says how.
        this.pos = this.buf.byteLength;
        return JSON.parse(pieceDecoder.decode(this.buf));
      }
      // `more` kept the bytes from `start` on, which now begin at 0.
      state.at -= start;
      start = 0;
    }
  }

  /**
   * Scans a value on from `from` in the state given (nesting depth, inside a string or not); `done` with the index after its last byte, or not done
   * with the state to resume from once more bytes are in (the caller keeps the value's bytes, so a
   * quote's escaping backslashes are found behind it even across chunks). Strings are skipped with
   * `indexOf`.
   */
  private scan(
    from: number,
    depthIn: number,
    inStringIn: boolean,
  ): { done: boolean; at: number; depth: number; inString: boolean } {
    const buf = this.buf;
    const length = buf.byteLength;
    let i = from;
    let depth = depthIn;
    let inString = inStringIn;
    while (i < length) {
      if (inString) {
        const quote = buf.indexOf(QUOTE, i);
        if (quote === -1) return { done: false, at: length, depth, inString };
        let slashes = 0;
        for (let k = quote - 1; buf[k] === BACKSLASH; k--) slashes++;
        i = quote + 1;
        if (slashes % 2 === 1) continue;
        inString = false;
        if (depth === 0) return { done: true, at: i, depth, inString };
        continue;
      }
      const byte = buf[i] as number;
      if (byte === QUOTE) inString = true;
      else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth++;
      else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
        if (depth === 0) return { done: true, at: i, depth, inString };
        depth--;
        if (depth === 0) return { done: true, at: i + 1, depth, inString };
      } else if (depth === 0 && (byte === COMMA || isSpace(byte))) return { done: true, at: i, depth, inString };
      i++;
    }
    return { done: false, at: length, depth, inString };
  }
}

function unexpected(byte: number, what: string): SyntaxError {
  return new SyntaxError(
    byte === -1
      ? `Unexpected end of JSON input, expected ${what}`
      : `Unexpected ${JSON.stringify(String.fromCharCode(byte))} in JSON, expected ${what}`,
  );
}

/**
 * `JSON.parse` of a stream of UTF-8 bytes holding one JSON document, without the whole text: an
 * object's members and its object-valued members' members are parsed one by one as their bytes
 * arrive. The result equals `JSON.parse(new TextDecoder().decode(allBytes))`, errors included in
 * kind (a `SyntaxError`); memory at the peak is the result plus the largest single piece.
 */
export async function parseJsonStream(body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>): Promise<unknown> {
  const input = new Input(body);
  try {
    return await parseInput(input);
  } finally {
    // Releases the source (a file handle, a connection) when parsing stopped early on an error.
    await input.close();
  }
}

async function parseInput(input: Input): Promise<unknown> {
  // TextDecoder drops a byte order mark at the very start; so does this.
  while (input.buf.byteLength < 3 && (await input.more(0)));
  if (input.buf[0] === 0xef && input.buf[1] === 0xbb && input.buf[2] === 0xbf) input.pos = 3;
  let result: unknown;
  if ((await input.peek()) === OPEN_BRACE) {
    input.pos++;
    result = await members(input, 1);
  } else {
    result = await input.value();
  }
  const trailing = await input.peek();
  if (trailing !== -1) throw unexpected(trailing, "the end of the input");
  return result;
}

/** An object's members after its `{`, through its `}`; at `depth` 1 object values are split again. */
async function members(input: Input, depth: number): Promise<Record<string, unknown>> {
  const target: Record<string, unknown> = {};
  if ((await input.peek()) === CLOSE_BRACE) {
    input.pos++;
    return target;
  }
  for (;;) {
    if ((await input.peek()) !== QUOTE) throw unexpected(await input.peek(), "a member name");
    const key = (await input.value()) as string;
    await input.expect(COLON, '":"');
    let value: unknown;
    if (depth === 1 && (await input.peek()) === OPEN_BRACE) {
      input.pos++;
      value = await members(input, depth + 1);
    } else {
      value = await input.value();
    }
    define(target, key, value);
    const next = await input.peek();
    input.pos++;
    if (next === CLOSE_BRACE) return target;
    if (next !== COMMA) throw unexpected(next, '"," or "}"');
  }
}

/** Stored documents above this size are parsed piece by piece (see `parseJsonStream`). */
const PIECEWISE_ABOVE = 1024 * 1024;

/**
 * A stored JSON document of `size` bytes from its stream: read whole and parsed at once when small,
 * piece by piece when larger than 1 MB.
 */
export async function readJsonBody(body: ReadableStream<Uint8Array>, size: number): Promise<unknown> {
  if (size > PIECEWISE_ABOVE) return parseJsonStream(body);
  return JSON.parse(decoder.decode(await readAll(body)));
}

/**
 * An object whose members are made as they are serialized: `jsonPieces` (the streamed and gzipped forms
 * of large documents) holds one member at a time, `JSON.stringify` gets them all at once through
 * `toJSON`. A served packument's versions are one: rewriting the tarball URLs of 3,000 manifests built
 * a second tree of them for the whole of a render.
 */
export class LazyMembers {
  constructor(readonly members: () => Iterable<readonly [string, unknown]>) {}

  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, value] of this.members()) define(out, key, value);
    return out;
  }
}

/**
 * Pieces of `JSON.stringify(value)`: an object and its object-valued members, member by member (a
 * `LazyMembers` as its members are made).
 */
export function* jsonPieces(value: unknown, depth = 0): Generator<string> {
  const lazy = value instanceof LazyMembers;
  if (
    depth < 2 &&
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    (lazy || !("toJSON" in value))
  ) {
    let separator = "{";
    for (const [key, member] of lazy ? value.members() : Object.entries(value)) {
      // Members JSON.stringify leaves out.
      if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
      yield `${separator}${JSON.stringify(key)}:`;
      yield* jsonPieces(member, depth + 1);
      separator = ",";
    }
    yield separator === "{" ? "{}" : "}";
    return;
  }
  const json = JSON.stringify(value);
  if (json !== undefined) yield json;
}

/**
 * The UTF-8 bytes of `JSON.stringify(value)` as a byte stream of chunks of about `chunkSize`, made as
 * they are read: the whole text never exists at once. A reader that brings its own buffer (fs storage
 * writing it) has the text encoded straight into that buffer, so a 20 MB document is written through
 * one buffer instead of leaving 20 MB of chunks for the garbage collector. The value must not change
 * until the stream ends.
 */
export function jsonByteStream(value: unknown, chunkSize = 64 * 1024): ReadableStream<Uint8Array> {
  const pieces = jsonPieces(value);
  /** Text made and not yet encoded. */
  let pending = "";
  let ended = false;
  return new ReadableStream(
    {
      type: "bytes",
      autoAllocateChunkSize: chunkSize,
      pull(controller) {
        // Always there: `autoAllocateChunkSize` makes one for readers that bring no buffer.
        const request = controller.byobRequest as ReadableStreamBYOBRequest;
        const view = request.view as Uint8Array;
        let written = 0;
        while (written < view.byteLength) {
          if (pending === "") {
            if (ended) break;
            const next = pieces.next();
            if (next.done) {
              ended = true;
              break;
            }
            pending = next.value;
            continue;
          }
          const result = encoder.encodeInto(pending, view.subarray(written));
          written += result.written;
          pending = pending.slice(result.read);
          // The next character does not fit in what is left of the buffer.
          if (result.read === 0) break;
        }
        if (written > 0) request.respond(written);
        else if (pending !== "") {
          // A buffer too small for even one character: hand the character over as a chunk of its own.
          const char = String.fromCodePoint(pending.codePointAt(0) as number);
          pending = pending.slice(char.length);
          controller.enqueue(encoder.encode(char));
        }
        if (ended && pending === "") {
          controller.close();
          if (written === 0) request.respond(0);
        }
      },
    },
    { highWaterMark: 0 },
  );
}
