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
] as const) {
  v6.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. */
function embeddedV4(address: string): string | undefined {
  const lower = address.toLowerCase();
  for (const prefix of ['::ffff:', '64:ff9b::']) {
    if (!lower.startsWith(prefix)) continue;
    const rest = lower.slice(prefix.length);
    if (isIP(rest) === 4) return rest;
    const groups = rest.split(':');
    if (groups.length === 2 && groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) {
      const [hi, lo] = groups.map((g) => parseInt(g, 16)) as [number, number];
      return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
    }
  }
  return undefined;
}

/** Why an address may not be called, or undefined when it may. */
export function forbiddenAddressReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 4) return v4.check(address, 'ipv4') ? `${address} is a loopback, private, link-local or reserved address` : undefined;
  if (family === 6) {
    const inner = embeddedV4(address);
    if (inner) return forbiddenAddressReason(inner);
    return v6.check(address, 'ipv6') ? `${address} is a loopback, private, link-local or reserved address` : undefined;
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
  if (policy.allowPrivate) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const reason = isIP(host) ? forbiddenAddressReason(host) : host === 'localhost' || host.endsWith('.localhost') ? `${host} is this machine` : undefined;
  if (reason) throw new AppError('url_not_allowed', { message: `${field} may not point at ${reason} (set HANDOVER_ALLOW_PRIVATE_URLS=true to allow).` });
}
