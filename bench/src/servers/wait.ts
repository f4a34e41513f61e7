import type { ChildProcess } from "node:child_process";
import { RegistryClient } from "../http.ts";

/** Keeps the last few KB a child wrote to a stream, for error messages. */
export function tail(stream: NodeJS.ReadableStream | null, limit = 8_000): () => string {
  let text = "";
  stream?.on("data", (chunk: Buffer) => {
    text = (text + chunk.toString()).slice(-limit);
  });
  return () => text;
}

/** Polls `path` until it answers (any status below 500) or the process dies or time runs out. */
export async function waitForHttp(
  child: ChildProcess,
  url: string,
  path: string,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const client = new RegistryClient(url, { timeoutMs: 2_000 });
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before it answered`);
      }
      try {
        const response = await client.request("GET", path);
        if (response.status < 500) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`${what} did not answer ${url}${path} within ${timeoutMs / 1000} s`);
  } finally {
    client.close();
  }
}

/** Resolves with the first stdout line that parses as JSON and has a `url`. */
export function waitForUrlLine(
  child: ChildProcess,
  timeoutMs: number,
  what: string,
  logTail: () => string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => fail(new Error(`${what} printed no URL within ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString();
      for (let nl = buffered.indexOf("\n"); nl !== -1; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as { url?: unknown };
          if (typeof parsed.url === "string") {
            cleanup();
            resolve(parsed.url);
            return;
          }
        } catch {
          // not our line
        }
      }
    };
    const onExit = (code: number | null, signal: string | null) =>
      fail(new Error(`${what} exited (${code ?? signal}) before listening:\n${logTail()}`));
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
    };
    const fail = (error: Error) => {
      cleanup();
      reject(error);
    };
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}
