// The fw server as its own process, so its memory and CPU can be read from /proc without the
// benchmark's own heap in the numbers. Usage: node fw-entry.ts <config.json>
// Prints one JSON line {"url": ...} on stdout once it listens; SIGTERM shuts it down gracefully
// (which is also when `--cpu-prof` writes its profile). FW_BENCH_SERVER_MODULE, when set, names
// another build of `@fw/server/node` to load (bench.ts --fw-module), e.g. to compare two commits.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { FwConfig } from "@fw/server";

type ServerNode = typeof import("@fw/server/node");
const other = process.env.FW_BENCH_SERVER_MODULE;
const { startRegistry } = (await import(other ? pathToFileURL(resolve(other)).href : "@fw/server/node")) as ServerNode;

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: node fw-entry.ts <config.json>\n");
  process.exit(2);
}
const config = JSON.parse(readFileSync(file, "utf8")) as FwConfig;
await startRegistry(config, {
  handleSignals: true,
  onListening(url) {
    process.stdout.write(`${JSON.stringify({ url })}\n`);
  },
});
