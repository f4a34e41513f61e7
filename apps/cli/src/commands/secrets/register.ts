import type { CAC } from "cac";

/** Adds the `fw secrets …` commands. */
export function registerSecretsCommands(_cli: CAC): void {}
