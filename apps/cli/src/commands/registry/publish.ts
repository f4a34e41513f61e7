import { Presets, SingleBar } from "cli-progress";
import semver from "semver";
import { escapePackageName, RegistryClient, RegistryRequestError } from "../../client.js";
import { print, printJson } from "../../output.js";
import { describePacked, formatBytes, type Manifest, type Packed, packDirectory, packedJson } from "./pack.js";

export interface PublishOptions {
  registry?: string;
  token?: string;
  config?: string;
  /** The folder to publish. Default `.`. */
  path: string;
  /** `--tag`; default publishConfig.tag, else `latest`. */
  tag?: string;
  /** `--access public|restricted`; default publishConfig.access, else not sent. */
  access?: string;
  otp?: string;
  dryRun: boolean;
  json: boolean;
}

/** Bytes per chunk of the streamed upload: small enough for a smooth bar, large enough to cost nothing. */
const CHUNK = 64 * 1024;

interface Upload {
  /** Called with bytes handed to the connection so far. */
  onProgress?: (sent: number, total: number) => void;
  /** The last response's WWW-Authenticate challenge. */
  challenge?: string;
}

/**
 * The fetch the publish's client uses: the JSON body it is given goes out as a stream of chunks
 * (`duplex: "half"`, which Node's fetch requires for stream bodies) so progress can be shown, the
 * `npm-otp` header is added as npm-registry-fetch does (lib/index.js, `opts.otp`), and the answer's
 * WWW-Authenticate is kept, since the client's error carries only the message and status.
 */
function uploadingFetch(otp: string | undefined, upload: Upload): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    // Only on the write: a registry may spend a code when it checks one.
    const method = (init?.method ?? "GET").toUpperCase();
    if (otp !== undefined && method !== "GET" && method !== "HEAD") headers.set("npm-otp", otp);
    let body = init?.body;
    if (typeof body === "string") {
      const bytes = new TextEncoder().encode(body);
      let sent = 0;
      upload.onProgress?.(0, bytes.byteLength);
      body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= bytes.byteLength) {
            controller.close();
            return;
          }
          const chunk = bytes.subarray(sent, sent + CHUNK);
          sent += chunk.byteLength;
          controller.enqueue(chunk);
          upload.onProgress?.(sent, bytes.byteLength);
        },
      });
    }
    const response = await fetch(input, {
      ...init,
      headers,
      body,
      ...(body instanceof ReadableStream && { duplex: "half" }),
    });
    upload.challenge = response.headers.get("www-authenticate") ?? undefined;
    return response;
  };
}

interface Progress {
  update(sent: number, total: number): void;
  stop(): void;
}

/**
 * A bar on stderr when it is a terminal; otherwise a line at the start, at each quarter of a body
 * over 1 MB, and at the end (none with --json, whose reader wants stdout alone).
 */
function progress(id: string, json: boolean): Progress {
  if (process.stderr.isTTY) {
    const bar = new SingleBar(
      {
        stream: process.stderr,
        format: `${id} {bar} {percentage}% | {sentText} of {totalText}`,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
      },
      Presets.shades_classic,
    );
    let started = false;
    return {
      update(sent, total) {
        const payload = { sentText: formatBytes(sent), totalText: formatBytes(total) };
        if (!started) {
          started = true;
          bar.start(total, sent, payload);
        } else bar.update(sent, payload);
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  if (json) return { update() {}, stop() {} };
  let quarter = -1;
  return {
    update(sent, total) {
      const reached = total === 0 ? 4 : Math.floor((sent / total) * 4);
      if (reached === quarter || (total < 1_000_000 && reached > 0 && reached < 4)) return;
      quarter = reached;
      process.stderr.write(
        reached === 0
          ? `uploading ${id} (${formatBytes(total)})\n`
          : reached === 4
            ? `uploaded ${formatBytes(total)}; waiting for the registry\n`
            : `uploading ${id}: ${reached * 25}% (${formatBytes(sent)} of ${formatBytes(total)})\n`,
      );
    },
    stop() {},
  };
}

/**
 * The document `npm publish` PUTs, built as libnpmpublish does (lib/publish.js `buildMetadata`):
 * the root carries `_id`, `name`, `description`, the one dist-tag, the one version and `access`;
 * the version gets `_id: name@version`, `_nodeVersion` (patchManifest), `dist.integrity` (sha512
 * only), the legacy `dist.shasum`, and `dist.tarball` under the registry with http, never https
 * ("installing from an HTTP-only mirror"); the attachment is keyed by the unescaped
 * `<name>-<version>.tgz` (for scoped packages `@scope/name-1.0.0.tgz`, not the file name npm pack
 * writes) with base64 `data` and its byte `length`.
 */
export function publishBody(packed: Packed, registry: URL, tag: string, access: string | undefined) {
  const { manifest } = packed;
  const attachment = `${manifest.name}-${manifest.version}.tgz`;
  const version: Manifest = {
    ...manifest,
    _id: packed.id,
    _nodeVersion: process.versions.node,
    dist: {
      ...(typeof manifest.dist === "object" && manifest.dist),
      integrity: packed.integrity,
      shasum: packed.shasum,
      tarball: new URL(`${manifest.name}/-/${attachment}`, registry).href.replace(/^https:\/\//, "http://"),
    },
  };
  return {
    _id: manifest.name,
    name: manifest.name,
    description: manifest.description,
    "dist-tags": { [tag]: manifest.version },
    versions: { [manifest.version]: version },
    ...(access !== undefined && { access }),
    _attachments: {
      [attachment]: {
        content_type: "application/octet-stream",
        data: packed.tarball.toString("base64"),
        length: packed.size,
      },
    },
  };
}

function publishConfig(manifest: Manifest): { tag?: string; access?: string } {
  const config = manifest.publishConfig;
  if (typeof config !== "object" || config === null) return {};
  const { tag, access } = config as { tag?: unknown; access?: unknown };
  return {
    ...(typeof tag === "string" && { tag }),
    ...(typeof access === "string" && { access }),
  };
}

/**
 * npm publish's checks before anything is sent (lib/commands/publish.js): `private` packages, a tag
 * that is a semver range, a pre-release without an explicit tag, `restricted` on an unscoped name
 * (libnpmpublish), and — when the registry has the package — the default `latest` moving backwards.
 */
async function check(
  packed: Packed,
  client: RegistryClient,
  tag: string,
  explicitTag: boolean,
  access: string | undefined,
): Promise<{ published: boolean }> {
  const { manifest } = packed;
  if (manifest.private === true || manifest.private === "true")
    throw new Error(`${packed.id} is marked "private" in package.json; remove it to publish`);
  if (semver.validRange(tag)) throw new Error(`--tag must not be a version or range, and "${tag}" is one`);
  if (!semver.valid(manifest.version)) throw new Error(`"${manifest.version}" in package.json is not a valid version`);
  if (!explicitTag && semver.prerelease(manifest.version))
    throw new Error(`${packed.id} is a pre-release: pass --tag (e.g. --tag next) so it does not become "latest"`);
  if (access !== undefined && access !== "public" && access !== "restricted")
    throw new Error(`--access must be public or restricted, not "${access}"`);
  if (access === "restricted" && !manifest.name.startsWith("@"))
    throw new Error(`${manifest.name} is not scoped: only scoped packages can be restricted`);

  // npm's `#registryVersions`: a failure to read is not an error here; the PUT will say what is wrong.
  const doc = await client
    .getJson<{ versions?: Record<string, { deprecated?: unknown }> }>(`/${escapePackageName(manifest.name)}`)
    .catch(() => null);
  const versions = Object.keys(doc?.versions ?? {});
  // A version that exists is left to the registry, whose message says why it cannot be reused.
  if (versions.includes(manifest.version)) return { published: true };
  const released = versions.filter(
    (v) => semver.valid(v) && !semver.prerelease(v) && doc?.versions?.[v]?.deprecated === undefined,
  );
  const highest = semver.rsort(released)[0];
  if (!explicitTag && highest !== undefined && semver.gt(highest, manifest.version))
    throw new Error(
      `${highest} is already published, which is higher than ${manifest.version}: pass --tag to publish it without moving "latest"`,
    );
  return { published: false };
}

/**
 * `fw registry publish [path] [--tag t] [--access a] [--otp code] [--dry-run] [--json]`: packs the
 * folder like `npm pack`, prints its contents, and PUTs it to the registry as `npm publish` does,
 * with the token from --token, FW_TOKEN or .npmrc.
 */
export async function run(opts: PublishOptions): Promise<void> {
  const packed = await packDirectory(opts.path);
  const upload: Upload = {};
  const client = await RegistryClient.create({ ...opts, fetch: uploadingFetch(opts.otp, upload) });
  const configured = publishConfig(packed.manifest);
  const tag = opts.tag ?? configured.tag ?? "latest";
  const access = opts.access ?? configured.access;
  const { published } = await check(
    packed,
    client,
    tag,
    opts.tag !== undefined || configured.tag !== undefined,
    access,
  );

  const summary = {
    ...packedJson(packed),
    tag,
    ...(access !== undefined && { access }),
    registry: client.registry.href,
    dryRun: opts.dryRun,
  };
  if (!opts.json) {
    for (const fix of packed.fixes) process.stderr.write(`fw: package.json: ${fix} (npm pkg fix corrects it)\n`);
    print(describePacked(packed));
    print(
      `${opts.dryRun ? "Would publish" : "Publishing"} to ${client.registry.href} with tag ${tag}${access ? ` and ${access} access` : ""}${opts.dryRun ? " (dry run)" : ""}`,
    );
  }
  if (opts.dryRun) {
    if (published && !opts.json)
      process.stderr.write(`fw: warning: ${packed.id} is already published there; a real publish would be refused\n`);
    if (opts.json) printJson({ ...summary, published: false, alreadyPublished: published });
    else print(`+ ${packed.id} (dry run: nothing was published)`);
    return;
  }
  if (!client.authenticated)
    throw new Error(
      `publishing needs a token for ${client.registry.href}: log in (npm login) or pass --token / FW_TOKEN`,
    );

  const bar = progress(packed.id, opts.json);
  upload.onProgress = (sent, total) => bar.update(sent, total);
  try {
    await client.putJson(
      `/${escapePackageName(packed.manifest.name)}`,
      publishBody(packed, client.registry, tag, access),
    );
  } catch (error) {
    // npm-registry-fetch check-response.js: a 401 whose WWW-Authenticate lists "otp" asks for a one-time password.
    if (
      error instanceof RegistryRequestError &&
      error.status === 401 &&
      upload.challenge?.split(/,\s*/).some((part) => part.trim().toLowerCase() === "otp")
    ) {
      throw new Error(
        opts.otp === undefined
          ? `publishing ${packed.id} needs a one-time password: pass --otp <code> from your authenticator app`
          : `the registry refused the one-time password for ${packed.id}: pass --otp with a fresh code`,
        { cause: error },
      );
    }
    throw error;
  } finally {
    bar.stop();
  }
  if (opts.json) printJson({ ...summary, published: true });
  else print(`+ ${packed.id}`);
}
