import { createHash } from "node:crypto";

/** Hash algorithms npm metadata uses, strongest first. */
const ALGORITHMS = ["sha512", "sha384", "sha256", "sha1"] as const;
export type DigestAlgorithm = (typeof ALGORITHMS)[number];

/** What a tarball must hash to: one algorithm and the digests (base64) accepted for it. */
export interface ExpectedDigest {
  algorithm: DigestAlgorithm;
  digests: string[];
}

/**
 * The check a tarball from an uplink must pass, from its version's `dist`: the strongest algorithm in
 * `integrity` (an SRI string, which may list several hashes: any one of the strongest must match, as in
 * pacote's ssri), else the hex SHA-1 `shasum` of old packages. `undefined` when the metadata names
 * neither, and the tarball cannot be checked at all.
 */
export function expectedDigest(
  dist: { integrity?: unknown; shasum?: unknown } | undefined,
): ExpectedDigest | undefined {
  const byAlgorithm = new Map<DigestAlgorithm, string[]>();
  if (typeof dist?.integrity === "string") {
    for (const entry of dist.integrity.trim().split(/\s+/)) {
      const match = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/]+={0,2})(?:\?.*)?$/.exec(entry);
      if (!match) continue;
      const algorithm = match[1] as DigestAlgorithm;
      byAlgorithm.set(algorithm, [...(byAlgorithm.get(algorithm) ?? []), match[2] as string]);
    }
  }
  for (const algorithm of ALGORITHMS) {
    const digests = byAlgorithm.get(algorithm);
    if (digests) return { algorithm, digests };
  }
  if (typeof dist?.shasum === "string" && /^[0-9a-f]{40}$/i.test(dist.shasum)) {
    return { algorithm: "sha1", digests: [Buffer.from(dist.shasum, "hex").toString("base64")] };
  }
  return undefined;
}

/** A tarball whose bytes do not hash to what the upstream metadata says. */
export class IntegrityError extends Error {
  override readonly name = "IntegrityError";
  readonly code = "E_INTEGRITY";
}

/**
 * A pass-through stream that hashes the bytes and holds back the last chunk until the end. Only when the
 * digest matches is that chunk released and the stream closed; otherwise the stream errors with an
 * `IntegrityError`. Every consumer (the client's response, a storage write) therefore sees either the
 * whole verified body or a failed, incomplete one — never a complete wrong tarball.
 */
export function verifyingStream(expected: ExpectedDigest): TransformStream<Uint8Array, Uint8Array> {
  const hash = createHash(expected.algorithm);
  let held: Uint8Array | undefined;
  let size = 0;
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (chunk.byteLength === 0) return;
      if (held) controller.enqueue(held);
      hash.update(chunk);
      size += chunk.byteLength;
      held = chunk;
    },
    flush(controller) {
      const actual = hash.digest("base64");
      if (!expected.digests.includes(actual)) {
        throw new IntegrityError(
          `the tarball (${size} bytes) has ${expected.algorithm}-${actual}, not the ${expected.algorithm} the metadata lists`,
        );
      }
      if (held) controller.enqueue(held);
    },
  });
}
