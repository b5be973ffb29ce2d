import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forbiddenCause } from '../../src/outbound/index.js';
import { checkOutboundUrl, forbiddenAddressReason, guardedConnect } from '../../src/outbound/outbound-guard.js';

describe('outbound guard: which addresses are refused', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.100.100.200',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    'fc00::7',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:a9fe:a9fe',
    '64:ff9b::10.0.0.1',
    '::127.0.0.1',
    '::7f00:1',
    '2002:7f00:1::',
    '2002:a9fe:a9fe::1',
    '64:ff9b:1::8.8.8.8',
    '0:0:0:0:0:ffff:127.0.0.1',
    '::ffff:0:127.0.0.1',
    '::ffff:0:a9fe:a9fe',
    '100::1',
    '2001:0:4136:e378:8000:63bf:3fff:fdd2',
  ])('refuses %s', (address) => {
    expect(forbiddenAddressReason(address)).toMatch(/loopback, private, link-local or reserved/);
  });

  it.each([
    '93.184.215.14',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '2606:2800:21f:cb07:6820:80da:af6b:8b2c',
    '::ffff:8.8.8.8',
    '2002:808:808::',
    '64:ff9b::8.8.8.8',
    '::ffff:0:8.8.8.8',
    '2001:4860:4860::8888',
  ])('allows %s', (address) => {
    expect(forbiddenAddressReason(address)).toBeUndefined();
  });
});

describe('outbound guard: URLs when they are set', () => {
  const strict = { allowPrivate: false, allowHttp: false };
  it.each([
    ['http://hooks.example.com/x', /must use https \(set HANDOVER_ALLOW_HTTP_URLS/],
    ['ftp://hooks.example.com/x', /must use https/],
    ['https://127.0.0.1/x', /127\.0\.0\.1 is a loopback/],
    ['https://[::1]:8443/x', /::1 is a loopback/],
    ['https://[::ffff:7f00:1]/x', /127\.0\.0\.1 is a loopback/],
    ['https://localhost/x', /localhost is this machine/],
    ['https://api.localhost/x', /api\.localhost is this machine/],
    ['https://localhost./x', /localhost is this machine/],
    ['https://169.254.169.254/latest/meta-data', /169\.254\.169\.254/],
    ['https://user:pass@hooks.example.com/', /must not carry credentials/],
    ['https://hooks.example.com:0/x', /port 0/],
    ['https://[::ffff:0:127.0.0.1]/x', /127\.0\.0\.1 is a loopback/],
    ['not a url', /not a valid URL/],
  ])('refuses %s', (url, message) => {
    expect(() => checkOutboundUrl(url, strict, 'webhookUrl')).toThrow(message);
    try {
      checkOutboundUrl(url, strict, 'webhookUrl');
    } catch (err) {
      expect(err).toMatchObject({ code: 'url_not_allowed', status: 400 });
    }
  });

  it('allows public https URLs, and local ones when the policy says so', () => {
    expect(() => checkOutboundUrl('https://hooks.example.com/bot', strict, 'webhookUrl')).not.toThrow();
    expect(() => checkOutboundUrl('http://127.0.0.1:9000/bot', { allowPrivate: true, allowHttp: true }, 'webhookUrl')).not.toThrow();
  });
});

describe('outbound guard: at connection time, on the address actually used', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((_req, res) => res.end('reached'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  const call = async (url: string, allowPrivate: boolean) => {
    const agent = new Agent({ connect: guardedConnect({ allowPrivate, allowHttp: true }, { timeoutMs: 2000 }) });
    try {
      const res = await request(url, { dispatcher: agent });
      return await res.body.text();
    } finally {
      await agent.close();
    }
  };

  it('refuses a literal loopback address', async () => {
    const err = await call(`http://127.0.0.1:${port}/`, false).catch((e: unknown) => e);
    expect(forbiddenCause(err)?.message).toMatch(/^127\.0\.0\.1 may not be called: 127\.0\.0\.1 is a loopback/);
  });

  it('refuses a name that resolves to loopback, checked on the resolved address', async () => {
    const err = await call(`http://localhost:${port}/`, false).catch((e: unknown) => e);
    expect(forbiddenCause(err)?.message).toMatch(/^localhost may not be called: its address is not allowed \((127\.0\.0\.1|::1) is a loopback/);
  });

  it('connects when private destinations are allowed', async () => {
    expect(await call(`http://127.0.0.1:${port}/`, true)).toBe('reached');
    expect(await call(`http://localhost:${port}/`, true)).toBe('reached');
  });
});
