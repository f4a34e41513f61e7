import { buildVersionGraph, renderAscii, renderJson, renderMermaid, renderSvg, toD3 } from "@fw/semver-graph";
import { print, printJson } from "../../output.js";
import { fetchPackument, isPackumentFile, RegistryClient, readPackumentFile, type SourceOptions } from "./source.js";

const FORMATS = ["ascii", "mermaid", "json", "svg"] as const;

export interface GraphOptions extends SourceOptions {
  pkg: string;
  format?: string;
  all: boolean;
  width?: number;
  window?: number;
  json: boolean;
}

/** Colours for a terminal only: never for a pipe or a file, nor with NO_COLOR; FORCE_COLOR forces them. */
function useColor(): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR && process.env.FORCE_COLOR !== "0") return true;
  return process.stdout.isTTY === true;
}

/** `fw version graph <pkg|file> [ascii|mermaid|json|svg]`. */
export async function run(opts: GraphOptions): Promise<void> {
  const format = opts.json ? "json" : (opts.format ?? "ascii");
  if (!(FORMATS as readonly string[]).includes(format)) {
    throw new Error(`unknown format "${format}"; use one of ${FORMATS.join(", ")}`);
  }
  const packument = isPackumentFile(opts.pkg)
    ? await readPackumentFile(opts.pkg)
    : await fetchPackument(await RegistryClient.create(opts), opts.pkg);
  const graph = buildVersionGraph(packument, opts.window === undefined ? {} : { rollbackWindow: opts.window });
  const view = { all: opts.all };
  if (opts.json) return printJson(toD3(graph, view));
  switch (format) {
    case "mermaid":
      return print(renderMermaid(graph, view));
    case "json":
      return print(renderJson(graph, view));
    case "svg":
      return print(renderSvg(graph, view));
    default:
      return print(
        renderAscii(graph, {
          ...view,
          width: opts.width ?? (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80,
          color: useColor(),
        }),
      );
  }
}
