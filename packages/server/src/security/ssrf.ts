/**
 * Where production webhooks may not go: loopback, private, link-local, carrier-grade NAT, multicast, unspecified,
 * and cloud metadata addresses. Checked on the address actually connected to (a DNS lookup hook on the socket), so a
 * name that resolves to a public address when the URL is checked and to a private one at send time (DNS
 * rebinding) is still refused.
 */
import dns from 'node:dns';
import net from 'node:net';

const blocked = new net.BlockList();
for (const [addr, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(addr, prefix, 'ipv4');
for (const [addr, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) {
  blocked.addSubnet(addr, prefix, 'ipv6');
}

/** True for an address a production webhook must not reach. */
export function isForbiddenAddress(ip: string): boolean {
  const family = net.isIP(ip);
  if (family === 0) return true; // not an address at all
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    // fd00:ec2::254 (AWS IMDS over IPv6) is inside fc00::/7 already.
    return blocked.check(ip, 'ipv6');
  }
  return blocked.check(ip, 'ipv4');
}

export class ForbiddenAddressError extends Error {
  code = 'forbidden_address';
  constructor(host: string, ip: string) {
    super(`${host} resolves to ${ip}, which production webhooks may not reach`);
  }
}

export type LookupFn = (hostname: string, options: dns.LookupOptions, callback: (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void) => void;

/**
 * A `lookup` for net/tls.connect that refuses forbidden addresses. `resolve` is the real resolver (dns.lookup), or a
 * test's.
 */
export function guardedLookup(resolve: LookupFn = dns.lookup as unknown as LookupFn, allow: (ip: string) => boolean = () => false): LookupFn {
  return (hostname, options, callback) => {
    resolve(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const list = Array.isArray(address) ? address : [{ address, family: family ?? net.isIP(address) }];
      for (const a of list) {
        if (isForbiddenAddress(a.address) && !allow(a.address)) return callback(new ForbiddenAddressError(hostname, a.address) as unknown as NodeJS.ErrnoException, '', 4);
      }
      callback(null, address, family);
    });
  };
}

/**
 * Host names that can only mean a cloud's metadata service or the local network, whatever they resolve to here:
 * refused in production up front, before any lookup (the connect-time guard would still stop the send).
 */
export const METADATA_HOSTS: ReadonlySet<string> = new Set([
  'metadata', 'metadata.google.internal', 'metadata.goog', 'metadata.azure.com', 'metadata.packet.net',
  'instance-data', 'instance-data.ec2.internal', 'metadata.tencentyun.com', 'metadata.platformequinix.com',
  'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local',
]);

/** Suffixes of names that are never public: local, internal, private-network and link-local zones. */
const PRIVATE_SUFFIXES = ['.localhost', '.local', '.internal', '.intranet', '.lan', '.home.arpa', '.corp', '.localdomain', '.cluster.local', '.svc'];

/** Why a host name (not an address) is refused in production, or undefined. */
export function forbiddenName(hostname: string): string | undefined {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost') return host;
  if (METADATA_HOSTS.has(host)) return `${host} (a cloud metadata service)`;
  if (PRIVATE_SUFFIXES.some((s) => host.endsWith(s))) return `${host} (a local or internal name)`;
  // A single label ("intranet", "router") is resolved through the local search domains: never a public host.
  if (!host.includes('.') && net.isIP(host) === 0) return `${host} (a single-label name)`;
  return undefined;
}

/** For a URL's literal host (no lookup happens for those): the same rule, and the names refused up front. */
export function literalForbidden(url: URL, allow: (ip: string) => boolean = () => false): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) return isForbiddenAddress(host) && !allow(host) ? host : undefined;
  return forbiddenName(host);
}

/**
 * Resolves a destination's host and returns a forbidden address it resolves to, if any. A name that does not
 * resolve (yet) passes: the connect-time check still guards every send.
 */
export function resolvesToForbidden(host: string, resolve: LookupFn = dns.lookup as unknown as LookupFn, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((done) => {
    const timer = setTimeout(() => done(undefined), timeoutMs);
    resolve(host, { all: true }, (err, address) => {
      clearTimeout(timer);
      if (err) return done(undefined);
      const list = Array.isArray(address) ? address.map((a) => a.address) : [address];
      done(list.find((a) => isForbiddenAddress(a)));
    });
  });
}
