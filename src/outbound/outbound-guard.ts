import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { buildConnector } from 'undici';
import { AppError } from '../resilience/errors.js';

/**
 * Guards the calls this service makes to URLs that tenants give it (bot webhooks, helpdesk base URLs)
 * against server-side request forgery: unless allowed, such a URL may not lead to this machine, the
 * private network, link-local addresses (where cloud metadata services live) or other special ranges.
 *
 * The check happens where the connection is made, on the address actually connected to — a name is
 * resolved once, checked, and that very address is used — so a DNS answer that changes between a check
 * and the connection (DNS rebinding) cannot slip through. Redirects are never followed.
 */
export interface OutboundPolicy {
  /** Private, loopback and link-local destinations allowed (local development, demos, tests). */
  allowPrivate: boolean;
  /** Plain `http://` allowed besides `https://`. */
  allowHttp: boolean;
}

const v4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT (also where some clouds put their metadata service)
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local: cloud metadata at 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  v4.addSubnet(net, prefix, 'ipv4');
}
const v6 = new BlockList();
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7], // unique local (AWS's IPv6 metadata address fd00:ec2::254 is here)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
  ['2001:db8::', 32], // documentation
  ['64:ff9b:1::', 48], // local-use NAT64: whatever it translates to is not known here
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo: tunnels to an IPv4 address (its server's in clear, its client's obfuscated)
] as const) {
  v6.addSubnet(net, prefix, 'ipv6');
}

/** The eight 16-bit groups of an IPv6 address (with `::` and a dotted IPv4 tail expanded). */
function ipv6Groups(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const parts = dotted[1]!.split('.').map(Number);
    text = text.slice(0, -dotted[1]!.length) + `${((parts[0]! << 8) | parts[1]!).toString(16)}:${((parts[2]! << 8) | parts[3]!).toString(16)}`;
  }
  const [head, tail, extra] = text.split('::');
  if (extra !== undefined) return undefined;
  const left = head ? head.split(':') : [];
  const right = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined ? left.length !== 8 : missing < 0) return undefined;
  const groups = [...left, ...Array<string>(tail === undefined ? 0 : missing).fill('0'), ...right].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

const v4Of = (hi: number, lo: number) => [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');

/**
 * The IPv4 address an IPv6 address carries, where it reaches IPv4 space: IPv4-compatible (::a.b.c.d),
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d, SIIT), NAT64 (64:ff9b::a.b.c.d) and
 * 6to4 (2002:aabb:ccdd::).
 */
function embeddedV4(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const zeros = (n: number) => g.slice(0, n).every((x) => x === 0);
  if (zeros(6)) return v4Of(g[6]!, g[7]!);
  if (zeros(5) && g[5] === 0xffff) return v4Of(g[6]!, g[7]!);
  if (zeros(4) && g[4] === 0xffff && g[5] === 0) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4Of(g[1]!, g[2]!);
  return undefined;
}

/** Why an address may not be called, or undefined when it may. */
export function forbiddenAddressReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return v4.check(address, 'ipv4') ? `${address} is a loopback, private, link-local or reserved address` : undefined;
  if (family === 6) {
    if (v6.check(address, 'ipv6')) return `${address} is a loopback, private, link-local or reserved address`;
    const inner = embeddedV4(address);
    return inner ? forbiddenAddressReason(inner) : undefined;
  }
  return `${address} is not an IP address`;
}

/** A connection refused by the guard; never retried, since it will not change by itself. */
export class ForbiddenDestinationError extends Error {
  readonly code = 'HANDOVER_FORBIDDEN_DESTINATION';
  constructor(host: string, reason: string) {
    super(`${host} may not be called: ${reason}. Set HANDOVER_ALLOW_PRIVATE_URLS=true to allow private destinations.`);
    this.name = 'ForbiddenDestinationError';
  }
}

/** A `lookup` for net/tls connect that resolves, drops forbidden answers, and connects to a checked one. */
function guardedLookup(): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const allowed = addresses.filter((a) => forbiddenAddressReason(a.address) === undefined);
      if (allowed.length === 0) {
        const reason = addresses.length > 0 ? forbiddenAddressReason(addresses[0]!.address)! : 'it resolves to no address';
        return callback(new ForbiddenDestinationError(hostname, `its address is not allowed (${reason})`), '', 0);
      }
      if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, allowed);
      callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

/**
 * The `connect` option for an undici Agent: connect and TLS timeouts as given, and — unless private
 * destinations are allowed — only to addresses that pass the guard.
 */
export function guardedConnect(policy: OutboundPolicy, options: { timeoutMs: number }): buildConnector.connector | { timeout: number } {
  if (policy.allowPrivate) return { timeout: options.timeoutMs };
  const connect = buildConnector({ timeout: options.timeoutMs, lookup: guardedLookup() } as buildConnector.BuildOptions);
  return (opts, callback) => {
    // A literal address is connected to without a lookup: check it here.
    const host = opts.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const reason = forbiddenAddressReason(host);
      if (reason) return callback(new ForbiddenDestinationError(host, reason), null);
    }
    return connect(opts, callback);
  };
}

/**
 * Checks a URL when a tenant or an admin sets it: the scheme, and a destination that is forbidden on
 * its face (a literal private address, `localhost`). Names are checked again, resolved, at each
 * connection; this early check only makes the common mistakes fail where they are made.
 */
export function checkOutboundUrl(raw: string, policy: OutboundPolicy, field: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AppError('url_not_allowed', { message: `${field} is not a valid URL.` });
  }
  const schemes = policy.allowHttp ? ['https:', 'http:'] : ['https:'];
  if (!schemes.includes(url.protocol)) {
    throw new AppError('url_not_allowed', {
      message: `${field} must use ${policy.allowHttp ? 'https or http' : 'https'}${policy.allowHttp ? '' : ' (set HANDOVER_ALLOW_HTTP_URLS=true to allow http)'}.`,
    });
  }
  if (url.username || url.password) throw new AppError('url_not_allowed', { message: `${field} must not carry credentials in the URL.` });
  if (url.port === '0') throw new AppError('url_not_allowed', { message: `${field} names port 0, which nothing listens on.` });
  if (policy.allowPrivate) return;
  // A fully qualified name's final dot ("localhost.") names the same host.
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '');
  const reason = isIP(host) ? forbiddenAddressReason(host) : host === 'localhost' || host.endsWith('.localhost') ? `${host} is this machine` : undefined;
  if (reason) throw new AppError('url_not_allowed', { message: `${field} may not point there: ${reason} (set HANDOVER_ALLOW_PRIVATE_URLS=true to allow).` });
}
