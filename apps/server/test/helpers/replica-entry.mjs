// One registry replica in its own process, as `fw registry start` runs it, from the built server:
// `node replica-entry.mjs <config.json>` prints {"url": …} once listening. SIGTERM shuts down gracefully.
import { readFileSync } from "node:fs";
import { parseConfig } from "../../dist/index.js";
import { startRegistry } from "../../dist/node.js";

const config = parseConfig(JSON.parse(readFileSync(process.argv[2], "utf8")));
const running = await startRegistry(config);
await running.registry.ready;
process.stdout.write(`${JSON.stringify({ url: running.url, pid: process.pid })}\n`);
