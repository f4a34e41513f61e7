import type { CAC } from "cac";

/** Adds the `fw version …` commands. */
export function registerVersionCommands(_cli: CAC): void {}
