import ipaddr from "ipaddr.js";
import { AuthError } from "./errors.js";

/** Validates a CIDR allow-list (npm's `cidr_whitelist`); an absent list means "from anywhere". */
export function checkCidrs(list: unknown): string[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new AuthError("E_BAD_REQUEST", "cidr_whitelist must be a list of CIDR ranges");
  return list.map((entry) => {
    if (typeof entry !== "string" || !ipaddr.isValidCIDR(entry)) {
      throw new AuthError(
        "E_BAD_REQUEST",
        `invalid CIDR range "${String(entry).slice(0, 60)}" (expected e.g. 10.0.0.0/8)`,
      );
    }
    return entry;
  });
}

/** Parses an address, turning IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what dual-stack sockets report) into IPv4. */
export function parseIp(ip: string | undefined): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (!ip || !ipaddr.isValid(ip)) return null;
  const address = ipaddr.parse(ip);
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (address as ipaddr.IPv6).toIPv4Address();
  }
  return address;
}

/** Whether `ip` is inside one of `cidrs`; an empty list allows every address, an unknown address none. */
export function ipAllowed(ip: string | undefined, cidrs: readonly string[]): boolean {
  if (cidrs.length === 0) return true;
  const address = parseIp(ip);
  if (!address) return false;
  return cidrs.some((cidr) => {
    const range = ipaddr.parseCIDR(cidr);
    if (range[0].kind() !== address.kind()) return false;
    return address.kind() === "ipv4"
      ? (address as ipaddr.IPv4).match(range as [ipaddr.IPv4, number])
      : (address as ipaddr.IPv6).match(range as [ipaddr.IPv6, number]);
  });
}
