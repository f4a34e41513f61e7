import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { type Corpus, tarballPath } from "../corpus.ts";
import { abbreviate, corpusPackuments, type FullPackument } from "../packument.ts";
import { childPids, freePort, type Processes } from "../procs.ts";
import type { RunningServer } from "./types.ts";
import { tail, waitForHttp } from "./wait.ts";

/**
 * Writes one packument as nginx serves it: `<name>/full.json` and `<name>/abbreviated.json` next to
 * the package's `-/` tarball folder, each with a `.gz` twin for `gzip_static`.
 */
export function writeStaticPackument(root: string, doc: FullPackument): void {
  const dir = join(root, ...doc.name.split("/"));
  mkdirSync(dir, { recursive: true });
  for (const [file, body] of [
    ["full.json", doc],
    ["abbreviated.json", abbreviate(doc)],
  ] as const) {
    const bytes = Buffer.from(JSON.stringify(body));
    writeFileSync(join(dir, file), bytes);
    writeFileSync(join(dir, `${file}.gz`), gzipSync(bytes, { level: 6 }));
  }
}

/**
 * The read path with no registry logic at all, as a ceiling: every packument pre-rendered (tarball
 * URLs pointing at `baseUrl`) and every tarball a file on the public registry's URL layout.
 */
export function writeStaticMirror(corpus: Corpus, root: string, baseUrl: string): void {
  for (const { doc, files } of corpusPackuments(corpus, corpus.packages, (n, v) => baseUrl + tarballPath(n, v))) {
    writeStaticPackument(root, doc);
    for (const { version, source } of files) {
      const target = join(root, ...tarballPath(doc.name, version).split("/"));
      mkdirSync(dirname(target), { recursive: true });
      copyFileSync(source, target);
    }
  }
}

function nginxConfig(prefix: string, root: string, port: number): string {
  // One regex decides full or abbreviated by the Accept header, as a registry's content negotiation
  // does; tarballs go out with sendfile.
  return `worker_processes auto;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=10000 inactive=120s;
  client_body_temp_path ${prefix}/tmp/client;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  types { application/json json; application/octet-stream tgz; }
  map $http_accept $packument {
    default full.json;
    "~application/vnd\\.npm\\.install-v1\\+json" abbreviated.json;
  }
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location ~ "/-/[^/]+\\.tgz$" { }
    location / {
      gzip_static on;
      add_header Vary "Accept, Accept-Encoding";
      try_files $uri/$packument =404;
    }
  }
}
`;
}

export function nginxVersion(): string {
  // nginx prints its version on stderr
  const result = spawnSync("nginx", ["-v"], { encoding: "utf8" });
  return /nginx\/([\d.]+)/.exec(`${result.stdout}${result.stderr}`)?.[1] ?? "unknown";
}

export async function startNginx(
  processes: Processes,
  options: { workDir: string; corpus: Corpus },
): Promise<RunningServer & { root: string }> {
  const prefix = join(options.workDir, "nginx");
  const root = join(prefix, "root");
  for (const dir of [root, join(prefix, "tmp")]) mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeStaticMirror(options.corpus, root, url);
  const configFile = join(prefix, "nginx.conf");
  writeFileSync(configFile, nginxConfig(prefix, root, port));
  const child = processes.startServer("nginx", "nginx", ["-c", configFile, "-p", prefix]);
  const logTail = tail(child.stderr);
  tail(child.stdout);
  await waitForHttp(child, url, "/-/nothing", 15_000, "nginx");
  const pid = child.pid as number;
  return {
    kind: "nginx",
    label: `nginx ${nginxVersion()} (static mirror)`,
    url,
    pid,
    pids: () => [pid, ...childPids(pid)],
    root,
    logTail,
  };
}
