import { describeCoreSuite } from "../helpers/core-suite.js";
import { startTestRegistry } from "../helpers/registry.js";

describeCoreSuite("core scenarios with npm on fs storage", () => startTestRegistry());
