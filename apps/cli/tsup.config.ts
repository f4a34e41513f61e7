import { libraryPreset } from "@fw/tooling/tsup";

export default libraryPreset({
  // `fw` is the bin; `cli` is the same program for embedding (`runCli(argv)`).
  entry: { fw: "src/fw.ts", cli: "src/cli.ts" },
});
