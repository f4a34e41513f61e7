export type RegistryKind = "fw" | "fw-bun" | "verdaccio" | "nginx";

/** fw itself, on Node ("fw") or on Bun ("fw-bun"): the same build, the same storage layout. */
export const isFw = (kind: RegistryKind): boolean => kind === "fw" || kind === "fw-bun";

/** A registry under test, running as processes this benchmark started. */
export interface RunningServer {
  kind: RegistryKind;
  /** Name and version for the tables, e.g. "Verdaccio 6.10.4". */
  label: string;
  url: string;
  /** The main process; its VmHWM is reset per phase. */
  pid: number;
  /** Every process whose memory counts (nginx: master and workers). */
  pids(): number[];
  /** Where the server keeps its data, for seeding the synthetic popular package. */
  storageDir?: string;
  /** The last lines the server wrote to stderr, for error messages. */
  logTail(): string;
}
