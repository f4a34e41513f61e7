export const CREDENTIALS_IN_URL = "it has a user name or password";

/** Why `value` is not an absolute http(s) URL without a query, fragment or credentials, or undefined when it is one. */
export function urlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "not a URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${url.protocol} is not http: or https:`;
  // `new URL` drops an empty "?" or "#", so look at the text too.
  if (url.search || value.includes("?")) return "it has a query";
  if (url.hash || value.includes("#")) return "it has a fragment";
  if (url.username || url.password) return CREDENTIALS_IN_URL;
  return undefined;
}
