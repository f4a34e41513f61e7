import { libraryPreset } from "@fw/tooling/tsup";

export default libraryPreset({
  entry: { index: "src/index.ts", node: "src/node.ts", bun: "src/bun.ts" },
});
