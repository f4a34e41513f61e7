import { type Server, STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import { heldBytes } from "../http/held.js";
import type { FastReadParts, FastReadRequest } from "../routes/packages.js";

/** What the front answers with: the registry's synchronous fast path, its `fetch`, and where it counts. */
export interface FrontOptions {
  fastRead(request: FastReadRequest): FastReadParts | undefined;
  /** The registry for every other request the front reads (bodiless GETs and HEADs). */
  fetch(request: Request, clientIp: string | undefined): Promise<Response>;
  clientIp(socketAddress: string | undefined, forwardedFor: string | undefined): string | undefined;
  /** Called after each answer of the fast path. */
  observe?(method: string, route: FastReadParts["route"], status: number, seconds: number): void;
  /** A connection silent this long between requests is closed, as `server.keepAliveTimeout` does. */
  keepAliveTimeoutMs: number;
  /** How long a request's head may take to arrive, as `server.headersTimeout`. */
  headersTimeoutMs: number;
  /** Called when the registry failed to give an answer at all (its own errors are answers). */
  onError?(error: unknown): void;
}

export interface Front {
  /** Ends the front's connections, each once its answer in progress (if any) is written. */
  closeAll(): void;
}

/** The request line of a request the front reads; anything else is `node:http`'s. */
const REQUEST_LINE = /^(GET|HEAD) (\/[!-~]*) HTTP\/1\.1$/;
/**
 * The characters of a field name (RFC 9110's `tchar`), by code. A field is a name, a colon, optional
 * spaces or tabs, and a value of visible ASCII, spaces and tabs.
 */
const TOKEN_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TOKEN_CHAR[c.charCodeAt(0)] = 1;
}
/** Lines of visible ASCII, spaces and tabs, separated by CRLF: no other control, no bare CR or LF. */
const HEAD_TEXT = /^[\t -~]*(?:\r\n[\t -~]*)*$/;
/** A host name, an IPv4 or bracketed IPv6 address, with an optional port. */
const HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;
/**
 * Fields that give a request a body or change the connection: requests with them go to `node:http`.
 * Told apart by length first: hashing each fresh field name for a set cost more than the rest of a line.
 */
function notOurs(name: string): boolean {
  switch (name.length) {
    case 2:
      return name === "te";
    case 6:
      return name === "expect";
    case 7:
      return name === "upgrade" || name === "trailer";
    case 14:
      return name === "content-length" || name === "http2-settings";
    case 17:
      return name === "transfer-encoding";
    default:
      return false;
  }
}
/** More fields than any client sends with a GET: such a request goes to `node:http` and its limits. */
const MAX_FIELDS = 64;
/** `node:http`'s default limit of a request head; a longer one is handed over (it answers 431). */
const MAX_HEAD = 16 * 1024;
const END_OF_HEAD = "\r\n\r\n";
/** A fast answer's body up to this size is copied behind its head and written with it in one write. */
const JOIN_BODY = 16 * 1024;
/** A streamed answer's body is sent with a length when it ends within this many bytes, else chunked. */
const BUFFER_BODY = 64 * 1024;

/**
 * The front of fw's `node:http` server. Node's HTTP machinery costs more than the rest of a cached read
 * (~40 µs a request in all, of which fw's own work ~3 µs and the kernel's ~16 µs): a trivial `node:http`
 * handler answered ~34k requests a second here, the same bytes written straight to the socket ~1.7×
 * that. So the listening server's connections are read here first, and requests that are plain
 * HTTP/1.1 `GET`s and `HEAD`s without a body are answered here: from `fastRead`'s prepared bytes when it
 * has them, else through the registry's `fetch`. At the first request that is anything else — another
 * method, a body, an unusual or duplicate field, a malformed head — the connection is handed to
 * `node:http` for good, from that request's first byte on. Publishes, logins and every request with a
 * body keep Node's parser (llhttp), its limits and timeouts.
 *
 * No HTTP server on npm fits between `node:http` and a native one: the recognizer below accepts a
 * strict subset of HTTP/1.1 and hands over anything it has doubts about, which is what keeps two parsers
 * on one connection safe — each request is parsed by exactly one of them, and the front only before
 * any request was handed over.
 */
export function frontServer(server: Server, options: FrontOptions): Front {
  // node:http's own listener, which the front calls with the connections it hands over.
  const [httpListener] = server.rawListeners("connection") as ((socket: Socket) => void)[];
  if (!httpListener) throw new Error("frontServer needs a node:http server");
  server.removeListener("connection", httpListener);
  const open = new Set<FrontConnection>();
  let closing = false;
  server.on("connection", (socket: Socket) => {
    if (closing) return void httpListener.call(server, socket);
    const connection = new FrontConnection(socket, options, {
      handOver: (rest) => {
        open.delete(connection);
        if (rest.length > 0) socket.unshift(rest);
        httpListener.call(server, socket);
      },
      done: () => open.delete(connection),
    });
    open.add(connection);
  });
  return {
    closeAll() {
      closing = true;
      for (const connection of open) connection.close();
    },
  };
}

export interface Head {
  method: "GET" | "HEAD";
  target: string;
  /**
   * The fields' names (lower-case) and values, in order. A request has a handful: finding one by a
   * scan costs less than making an object keyed by fresh strings (V8 looks each key up to intern it).
   */
  names: string[];
  values: string[];
  host: string;
  /** The client asked to close the connection after this answer. */
  close: boolean;
}

/** A field's value, or `undefined` when the head has none. */
export function fieldOf(head: Head, name: string): string | undefined {
  const at = head.names.indexOf(name);
  return at === -1 ? undefined : head.values[at];
}

/** One connection while the front serves it: requests are answered one at a time, in order. */
class FrontConnection {
  /** Bytes received and not yet answered. */
  private pending: Buffer | undefined;
  /** When the first byte of the head being received came. */
  private headSince = 0;
  /** An answer is being written (its body streamed): reading waits for it. */
  private busy = false;
  /** The client does not read its answers: reading waits for `drain`. */
  private blocked = false;
  private closing = false;
  private finished = false;

  constructor(
    private readonly socket: Socket,
    private readonly options: FrontOptions,
    private readonly owner: { handOver(rest: Buffer): void; done(): void },
  ) {
    socket.on("data", this.onData);
    socket.on("drain", this.onDrain);
    socket.on("timeout", this.onTimeout);
    socket.on("end", this.onEnd);
    socket.on("close", this.onClose);
    socket.on("error", this.onError);
    socket.setTimeout(options.keepAliveTimeoutMs);
  }

  /** Ends the connection once the answer in progress is written. */
  close(): void {
    this.closing = true;
    if (!this.busy) this.end();
  }

  private readonly onData = (chunk: Buffer) => {
    if (!this.pending || this.pending.length === 0) this.headSince = Date.now();
    this.pending = this.pending && this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pump();
  };

  private readonly onDrain = () => {
    if (!this.blocked) return;
    this.blocked = false;
    if (this.busy || this.finished) return;
    this.socket.resume();
    this.pump();
  };

  private readonly onTimeout = () => {
    if (!this.busy) this.socket.destroy();
  };

  // The server allows half-open connections (node:http's choice): once every answer is out, end too.
  private readonly onEnd = () => this.close();

  private readonly onClose = () => this.detach();

  private readonly onError = () => {
    // The socket closes itself; an answer being streamed stops at its next write.
  };

  /** Answers the complete requests received, in order, until one needs waiting for or is node:http's. */
  private pump(): void {
    // A client that does not read its answers gets no more until they are sent: pipelined requests
    // cannot pile up answers in memory (node:http pauses the same way).
    while (!this.busy && !this.blocked && !this.finished && this.pending && this.pending.length > 0) {
      const bytes = this.pending;
      const end = bytes.indexOf(END_OF_HEAD, 0, "latin1");
      if (end < 0) {
        if (bytes.length > MAX_HEAD) {
          this.handOver(bytes);
          return;
        }
        if (Date.now() - this.headSince > this.options.headersTimeoutMs) {
          this.timedOut();
          return;
        }
        return;
      }
      const head = end + END_OF_HEAD.length > MAX_HEAD ? undefined : parseHead(bytes.toString("latin1", 0, end));
      if (!head) {
        this.handOver(bytes);
        return;
      }
      this.pending = bytes.subarray(end + END_OF_HEAD.length);
      this.headSince = Date.now();
      if (!this.answerFast(head)) {
        this.busy = true;
        this.socket.pause();
        this.socket.setTimeout(0);
        this.answer(head)
          .then((close) => this.answered(close))
          .catch((error: unknown) => {
            this.options.onError?.(error);
            this.socket.destroy();
          });
        return;
      }
      if (head.close) {
        this.end();
        return;
      }
    }
    if (this.blocked && !this.busy) this.socket.pause();
  }

  /** Writes `fastRead`'s answer when it has one. */
  private answerFast(head: Head): boolean {
    const started = performance.now();
    const fast = this.options.fastRead({
      method: head.method,
      url: head.target,
      origin: `http://${head.host}`,
      header: (name) => fieldOf(head, name),
      clientIp: () => this.clientIp(head),
      connection: this.socket,
    });
    if (!fast) return false;
    const start = headBytes(fast, head.method === "HEAD");
    const tail = tailBytes(head.close, this.options.keepAliveTimeoutMs);
    const body = head.method === "HEAD" ? null : fast.body;
    if (body === null || body.byteLength <= JOIN_BODY) {
      // One buffer, one write: corked writes of the three parts cost more than copying a small body.
      const bytes = Buffer.allocUnsafe(start.byteLength + tail.byteLength + (body?.byteLength ?? 0));
      bytes.set(start, 0);
      bytes.set(tail, start.byteLength);
      if (body) bytes.set(body, start.byteLength + tail.byteLength);
      this.write(bytes);
    } else {
      this.socket.cork();
      this.write(start);
      this.write(tail);
      this.write(body);
      this.socket.uncork();
    }
    this.options.observe?.(head.method, fast.route, fast.status, (performance.now() - started) / 1000);
    return true;
  }

  /** Any other bodiless GET or HEAD: the registry's `fetch`, its answer streamed; true when it closes the connection. */
  private async answer(head: Head): Promise<boolean> {
    let response: Response;
    try {
      const headers = new Headers();
      for (let i = 0; i < head.names.length; i++) headers.set(head.names[i] as string, head.values[i] as string);
      const url = `http://${head.host}${head.target}`;
      response = await this.options.fetch(new Request(url, { method: head.method, headers }), this.clientIp(head));
    } catch (error) {
      // A Host the URL parser refuses, or the registry failing outside its own error handling.
      this.options.onError?.(error);
      response = Response.json(
        { error: error instanceof TypeError ? "bad request" : "internal server error" },
        {
          status: error instanceof TypeError ? 400 : 500,
        },
      );
    }
    try {
      return await this.writeResponse(response, head);
    } catch {
      // The body failed midway (an uplink cut off; whoever produced it has said why) or the client went
      // away: the answer cannot be completed, so the connection ends without it, as node:http does.
      this.socket.destroy();
      return true;
    }
  }

  /** Writes the answer; true when it closes the connection (the client or the answer asked to). */
  private async writeResponse(response: Response, head: Head): Promise<boolean> {
    const status = response.status;
    const close = head.close || response.headers.get("connection")?.toLowerCase() === "close";
    let text = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n`;
    for (const [name, value] of response.headers) {
      if (name === "connection" || name === "transfer-encoding" || name === "keep-alive") continue;
      text += `${name}: ${value}\r\n`;
    }
    const tail = tailBytes(close, this.options.keepAliveTimeoutMs);
    const noBody = head.method === "HEAD" || status === 204 || status === 304 || status < 200;
    // Bytes held in memory (a cached form or tarball) are written as they are: reading them through the
    // body stream would copy them first (see heldBytes).
    const held = heldBytes(response);
    if (held) {
      // A HEAD is told the length its GET would have.
      const bodyless = status === 204 || status === 304 || status < 200;
      if (!bodyless && !response.headers.has("content-length")) text += `content-length: ${held.byteLength}\r\n`;
      this.socket.cork();
      this.write(Buffer.from(text, "latin1"));
      this.write(tail);
      if (!noBody) this.write(held);
      this.socket.uncork();
      return close;
    }
    if (noBody || !response.body) {
      await response.body?.cancel().catch(() => {});
      if (!noBody && !response.headers.has("content-length")) text += "content-length: 0\r\n";
      this.write(Buffer.from(text, "latin1"));
      this.write(tail);
      return close;
    }
    const reader = response.body.getReader();
    try {
      if (response.headers.has("content-length")) {
        this.write(Buffer.from(text, "latin1"));
        this.write(tail);
        for (let next = await reader.read(); !next.done; next = await reader.read()) {
          await this.send(next.value);
        }
        return close;
      }
      // No length given: a short body is read whole and sent with one; a longer one goes out in chunks.
      const start: Uint8Array[] = [];
      let size = 0;
      let next = await reader.read();
      for (; !next.done && size <= BUFFER_BODY; next = await reader.read()) {
        start.push(next.value);
        size += next.value.byteLength;
      }
      if (next.done) {
        this.socket.cork();
        this.write(Buffer.from(`${text}content-length: ${size}\r\n`, "latin1"));
        this.write(tail);
        for (const piece of start) this.write(piece);
        this.socket.uncork();
        return close;
      }
      this.write(Buffer.from(`${text}transfer-encoding: chunked\r\n`, "latin1"));
      this.write(tail);
      for (const piece of start) await this.sendChunk(piece);
      for (; !next.done; next = await reader.read()) await this.sendChunk(next.value);
      this.write(Buffer.from("0\r\n\r\n", "latin1"));
      return close;
    } finally {
      reader.releaseLock();
      if (this.socket.destroyed) await response.body.cancel().catch(() => {});
    }
  }

  private async sendChunk(bytes: Uint8Array): Promise<void> {
    if (this.socket.destroyed) throw new Error("the connection closed");
    if (bytes.byteLength === 0) return;
    this.socket.cork();
    this.write(Buffer.from(`${bytes.byteLength.toString(16)}\r\n`, "latin1"));
    this.write(bytes);
    const more = this.write(Buffer.from("\r\n", "latin1"));
    this.socket.uncork();
    if (!more) await this.drained();
  }

  private async send(bytes: Uint8Array): Promise<void> {
    if (this.socket.destroyed) throw new Error("the connection closed");
    if (!this.write(bytes)) await this.drained();
  }

  /** Writes unless the connection is gone (`send` and `sendChunk`, which wait, stop there). */
  private write(bytes: Uint8Array): boolean {
    if (this.socket.destroyed) return false;
    const more = this.socket.write(bytes);
    if (!more) this.blocked = true;
    return more;
  }

  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        if (this.socket.destroyed) reject(new Error("the connection closed"));
        else resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
  }

  private answered(close: boolean): void {
    this.busy = false;
    if (this.finished) return;
    if (close || this.closing) {
      this.end();
      return;
    }
    this.socket.setTimeout(this.options.keepAliveTimeoutMs);
    if (!this.blocked) this.socket.resume();
    this.pump();
  }

  private clientIp(head: Head): string | undefined {
    return this.options.clientIp(this.socket.remoteAddress, fieldOf(head, "x-forwarded-for"));
  }

  /** As node:http answers a head that does not arrive in time. */
  private timedOut(): void {
    this.detach();
    this.socket.end("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n", "latin1");
  }

  private end(): void {
    this.detach();
    this.socket.end();
  }

  /** Gives the connection to node:http, which reads on from `rest` (the first request not answered here). */
  private handOver(rest: Buffer): void {
    const blocked = this.blocked;
    this.detach();
    this.socket.off("error", this.onError);
    this.owner.handOver(rest);
    // Reading paused for an unread answer: node:http waits for nothing of the front's.
    if (blocked) this.socket.resume();
  }

  private detach(): void {
    if (this.finished) return;
    this.finished = true;
    this.pending = undefined;
    const socket = this.socket;
    socket.off("data", this.onData);
    socket.off("drain", this.onDrain);
    socket.off("timeout", this.onTimeout);
    socket.off("end", this.onEnd);
    socket.off("close", this.onClose);
    socket.setTimeout(0);
    this.owner.done();
  }
}

/**
 * A request head (without its blank line) the front reads, or `undefined` when it is node:http's.
 * Its characters are checked by one pattern and its fields cut at their colons: a pattern per line
 * cost ~2.6 µs for the four lines wrk sends here (~3.7 µs with an `Authorization` line).
 */
export function parseHead(text: string): Head | undefined {
  if (!HEAD_TEXT.test(text)) return undefined;
  let end = text.indexOf("\r\n");
  const requestLine = REQUEST_LINE.exec(end === -1 ? text : text.slice(0, end));
  if (!requestLine) return undefined;
  const names: string[] = [];
  const values: string[] = [];
  while (end !== -1) {
    if (names.length === MAX_FIELDS) return undefined;
    const start = end + 2;
    end = text.indexOf("\r\n", start);
    const stop = end === -1 ? text.length : end;
    const colon = text.indexOf(":", start);
    if (colon <= start || colon >= stop) return undefined;
    let upper = false;
    for (let at = start; at < colon; at++) {
      // Every code is below 127 here (HEAD_TEXT).
      const code = text.charCodeAt(at);
      if (TOKEN_CHAR[code] === 0) return undefined;
      if (code >= 65 && code <= 90) upper = true;
    }
    const name = upper ? text.slice(start, colon).toLowerCase() : text.slice(start, colon);
    if (notOurs(name) || names.includes(name)) return undefined;
    let from = colon + 1;
    while (from < stop && isBlank(text.charCodeAt(from))) from++;
    let to = stop;
    while (to > from && isBlank(text.charCodeAt(to - 1))) to--;
    names.push(name);
    values.push(text.slice(from, to));
  }
  const host = values[names.indexOf("host")];
  // A Host that is not a plain host[:port] would change the URL the request is routed by.
  if (!host || !HOST.test(host)) return undefined;
  const head: Head = {
    method: requestLine[1] as Head["method"],
    target: requestLine[2] as string,
    names,
    values,
    host,
    close: false,
  };
  const connection = fieldOf(head, "connection")?.toLowerCase();
  if (connection !== undefined) {
    if (connection === "close") head.close = true;
    else if (connection !== "keep-alive") return undefined;
  }
  return head;
}

function isBlank(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * Status line and headers of each shared header set, per status and whether a body follows (tarballs
 * answer 200 and 304 with one set).
 */
const headsOf = new WeakMap<Readonly<Record<string, string>>, Map<number, Buffer>>();

/** The head `node:http` writes for these parts, up to the fields it adds itself (see `tailBytes`). */
function headBytes(parts: FastReadParts, head: boolean): Buffer {
  let forSet = headsOf.get(parts.headers);
  if (!forSet) {
    forSet = new Map();
    headsOf.set(parts.headers, forSet);
  }
  const bodyless = head || parts.body === null;
  const key = parts.status * 2 + (bodyless ? 1 : 0);
  let bytes = forSet.get(key);
  if (!bytes) {
    let text = `HTTP/1.1 ${parts.status} ${STATUS_CODES[parts.status] ?? ""}\r\n`;
    for (const [name, value] of Object.entries(parts.headers)) text += `${name}: ${value}\r\n`;
    // As node:http does for `res.end(body)` without a length: a body has one.
    if (!bodyless && parts.headers["content-length"] === undefined) {
      text += `content-length: ${(parts.body as Uint8Array).byteLength}\r\n`;
    }
    bytes = keptLatin1(text);
    forSet.set(key, bytes);
  }
  return bytes;
}

/**
 * Bytes of a latin1 string in memory of their own, for keeping. `Buffer.from` cuts small buffers out
 * of a shared 64 KB slab (Node 24's `Buffer.poolSize`), and one kept head pins its whole slab: a
 * heap snapshot after loading 327 packages had 351 cached heads holding 130 slabs, 8.5 MB.
 */
export function keptLatin1(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(text.length);
  bytes.write(text, "latin1");
  return bytes;
}

/** The ends of heads made in the current second, by `Connection` value: Date, Connection, Keep-Alive. */
let tails: { second: number; timeoutMs: number; keepAlive?: Buffer; close?: Buffer } = { second: -1, timeoutMs: -1 };

/** The end of a head as node:http writes it: on a kept-alive connection, or on the last answer of one. */
function tailBytes(close: boolean, timeoutMs: number): Buffer {
  const second = Math.floor(Date.now() / 1000);
  if (tails.second !== second || tails.timeoutMs !== timeoutMs) tails = { second, timeoutMs };
  const kind = close ? "close" : "keepAlive";
  let bytes = tails[kind];
  if (!bytes) {
    const date = `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
    const connection = close
      ? "Connection: close\r\n"
      : `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(timeoutMs / 1000)}\r\n`;
    bytes = Buffer.from(`${date}${connection}\r\n`, "latin1");
    tails[kind] = bytes;
  }
  return bytes;
}
