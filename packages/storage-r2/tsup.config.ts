import { libraryPreset } from "@fw/tooling/tsup";

export default libraryPreset({
  entry: {
    index: "src/index.ts",
    "drivers/memory": "src/drivers/memory.ts",
    "drivers/fs": "src/drivers/fs.ts",
    "drivers/s3": "src/drivers/s3.ts",
    "drivers/r2": "src/drivers/r2.ts",
  },
});
