import { memoryDriver } from "../src/drivers/memory.js";
import { describeDriver } from "./contract.js";

describeDriver({
  name: "memory",
  create: async () => memoryDriver(),
  // The memory driver holds objects in memory by design, so its memory is not measured.
  largeObjectBytes: 32 * 1024 * 1024,
});
