/**
 * Responses whose body is bytes the registry holds in memory (cached packument forms and tarballs), and
 * those bytes. Node's `Response` copies a `Uint8Array` it is given the moment its body is read, so a
 * server that wrote such a response through its body stream would copy a cached 2 MB form for every
 * request; one that finds the bytes here writes them as they are. Status and headers still come from
 * the response (middleware may have added headers); a response made anew has no entry and is read as
 * any other.
 */
const held = new WeakMap<Response, Uint8Array>();

/** A response of bytes held in memory, which the caller must not change afterwards. */
export function heldBytesResponse(body: Uint8Array, init: ResponseInit): Response {
  const response = new Response(body as Uint8Array<ArrayBuffer>, init);
  held.set(response, body);
  return response;
}

/** The bytes a response was made of with `heldBytesResponse`, if it was. */
export function heldBytes(response: Response): Uint8Array | undefined {
  return held.get(response);
}
