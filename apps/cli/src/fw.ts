#!/usr/bin/env node
import { inspect } from "node:util";
import { setFlagsFromString } from "node:v8";
import { runCli } from "./cli.js";

const argv = process.argv.slice(2);

// A registry allocates large short-lived strings (packuments of megabytes); V8's default heap growth
// then keeps 2–3× the live memory. Sizing for memory lowers peak RSS that much for a few percent of
// throughput (bench/README.md). FW_V8_OPTIMIZE_FOR_SIZE=0 keeps V8's defaults.
if (process.env.FW_V8_OPTIMIZE_FOR_SIZE !== "0" && !process.versions.bun) setFlagsFromString("--optimize-for-size");

/**
 * The one place errors are printed and the exit code is set: `fw: <message>` on one line (or a JSON
 * object on stdout with `--json`), the stack and causes only with `--debug`. The exit code is set
 * rather than forced so output is flushed and `registry start` keeps running.
 */
function report(error: unknown): void {
  const message = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, " ");
  if (argv.includes("--json")) {
    const code = error instanceof Error && "code" in error && typeof error.code === "string" ? error.code : "E_FW";
    const issues = error instanceof Error && "issues" in error ? error.issues : undefined;
    process.stdout.write(
      `${JSON.stringify({ error: { code, message, ...(issues === undefined ? {} : { issues }) } })}\n`,
    );
  } else {
    process.stderr.write(`fw: ${message}\n`);
  }
  if (argv.includes("--debug")) process.stderr.write(`${inspect(error, { depth: 5 })}\n`);
}

try {
  await runCli(argv);
} catch (error) {
  report(error);
  process.exitCode = 1;
}
