import { gunzipSync, gzipSync } from "node:zlib";

const BLOCK = 512;

export interface TarFile {
  path: string;
  data: Buffer;
}

function field(header: Buffer, offset: number, length: number): string {
  const end = header.indexOf(0, offset);
  return header.toString("utf8", offset, end === -1 || end > offset + length ? offset + length : end);
}

function numeric(header: Buffer, offset: number, length: number): number {
  // GNU base-256 for sizes over 8 GB; npm tarballs never need it, but a corrupt one should not hang us.
  if ((header[offset] ?? 0) & 0x80) {
    let value = 0;
    for (let i = offset + 1; i < offset + length; i++) value = value * 256 + (header[i] ?? 0);
    return value;
  }
  const text = field(header, offset, length).trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

/** Pax records are `"<len> key=value\n"`; only `path` matters for finding package.json. */
function paxPath(data: Buffer): string | undefined {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number.parseInt(data.toString("utf8", at, space), 10);
    if (!(length > 0)) break;
    const record = data.toString("utf8", space + 1, at + length - 1);
    if (record.startsWith("path=")) return record.slice(5);
    at += length;
  }
  return undefined;
}

/** Regular files of a gzipped tar (ustar, GNU long names and pax paths, which is what npm and yarn pack). */
export function readTgz(tgz: Uint8Array): TarFile[] {
  const tar = gunzipSync(tgz);
  const files: TarFile[] = [];
  let nextPath: string | undefined;
  for (let at = 0; at + BLOCK <= tar.length; ) {
    const header = tar.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = numeric(header, 124, 12);
    const type = String.fromCharCode(header[156] || 0x30);
    let path = field(header, 0, 100);
    if (field(header, 257, 6).startsWith("ustar")) {
      const prefix = field(header, 345, 155);
      if (prefix) path = `${prefix}/${path}`;
    }
    const data = tar.subarray(at + BLOCK, at + BLOCK + size);
    at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L") nextPath = field(data, 0, data.length);
    else if (type === "x") nextPath = paxPath(data) ?? nextPath;
    else if (type === "g") continue;
    else {
      if (type === "0" || type === "\0" || type === "7") files.push({ path: nextPath ?? path, data });
      nextPath = undefined;
    }
  }
  return files;
}

function header(path: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(path, 0, 100, "utf8");
  h.write("0000644\0", 100);
  h.write("0000000\0", 108);
  h.write("0000000\0", 116);
  h.write(`${size.toString(8).padStart(11, "0")}\0`, 124);
  // npm pack pins mtimes to 1985-10-26 so identical contents give identical tarballs.
  h.write(`${Math.floor(Date.UTC(1985, 9, 26, 8, 15) / 1000).toString(8)}\0`, 136);
  h.write("        ", 148);
  h.write("0", 156);
  h.write("ustar\0", 257);
  h.write("00", 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  return h;
}

/** A gzipped tar with every file under `package/`, as `npm pack` lays it out. */
export function writeTgz(files: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [path, content] of Object.entries(files)) {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    parts.push(header(`package/${path}`, data.length), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return gzipSync(Buffer.concat(parts));
}
