import { cac } from "cac";
import { describe, expect, it } from "vitest";
import { restoreTypedValues } from "../src/flags.js";

function parse(argv: string[]) {
  const cli = cac("fw");
  cli.option("--config <file>", "config");
  cli
    .command("publish [path]", "publish")
    .option("--otp <code>", "one-time password")
    .option("--token <token>", "token")
    .option("--tag <tag>", "dist-tag")
    .option("--dry-run", "boolean");
  cli.parse(["node", "fw", ...argv], { run: false });
  restoreTypedValues(cli);
  return cli;
}

describe("restoreTypedValues", () => {
  it("gives value flags back as typed, where the parser made numbers of them", () => {
    const cli = parse(["publish", "./pkg", "--otp", "012345", "--token=1e3", "--config", "007.json5"]);
    expect(cli.options.otp).toBe("012345");
    expect(cli.options.token).toBe("1e3");
    expect(cli.options.config).toBe("007.json5");
    expect(cli.args).toEqual(["./pkg"]);
  });

  it("keeps repeated flags as lists, booleans as booleans, and stops at --", () => {
    const cli = parse(["publish", "--tag", "01", "--tag", "2.0", "--dry-run", "--", "--otp", "000111"]);
    expect(cli.options.tag).toEqual(["01", "2.0"]);
    expect(cli.options.dryRun).toBe(true);
    expect(cli.options.otp).toBeUndefined();
  });

  it("leaves text alone and does not take the next flag as a value", () => {
    const cli = parse(["publish", "--tag", "next", "--otp", "--dry-run"]);
    expect(cli.options.tag).toBe("next");
    expect(cli.options.otp).toBe(true);
    expect(cli.options.dryRun).toBe(true);
  });
});
