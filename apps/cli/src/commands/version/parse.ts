import { parseVersion } from "@fw/semver-graph";
import { print, printJson } from "../../output.js";

/** `fw version parse <version>`: the parts of a version; exits 1 when it is not one. */
export async function run(opts: { version: string; json: boolean }): Promise<void> {
  const result = parseVersion(opts.version);
  if (opts.json) {
    printJson(result);
    if (!result.valid) process.exitCode = 1;
    return;
  }
  if (!result.valid) throw new Error(result.error);
  const { parsed } = result;
  print(
    [
      result.version,
      `  major       ${parsed.major}`,
      `  minor       ${parsed.minor}`,
      `  patch       ${parsed.patch}`,
      `  prerelease  ${parsed.prerelease.length > 0 ? parsed.prerelease.join(".") : "-"}`,
      `  build       ${parsed.build.length > 0 ? parsed.build.join(".") : "-"}`,
    ].join("\n"),
  );
}
