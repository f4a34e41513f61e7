import { type AppContext, readJson } from "../context.js";
import { RegistryError } from "./errors.js";

const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i;

/**
 * The request's JSON body. A body declared as something else (a raw tarball, a form) is refused with
 * 415 rather than guessed at; npm-registry-fetch, yarn, pnpm and bun all send `application/json` with
 * JSON bodies. A body without a Content-Type is still parsed: hand-written scripts often omit it.
 */
export async function readJsonBody(c: AppContext): Promise<unknown> {
  const type = c.req.header("content-type");
  if (type !== undefined && !JSON_TYPE.test(type)) {
    throw new RegistryError(
      "E_UNSUPPORTED_MEDIA_TYPE",
      `expected a JSON body (Content-Type: application/json), not "${type.slice(0, 60)}"`,
    );
  }
  return readJson(c);
}
