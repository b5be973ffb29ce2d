import { afterEach, describe, expect, it } from 'vitest';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { requestFrom } from '../support/from-address.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { startTestService, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('inbound-budget-secret-of-32-bytes!!').toString('base64');

const postFrom = (localAddress: string, url: string, body: string, headers: Record<string, string>) => requestFrom(localAddress, 'POST', url, body, headers);

const forged = { 'webhook-id': 'msg_forged', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,Zm9yZ2VkIHNpZ25hdHVyZQ==' };
const forgedBody = JSON.stringify({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } });

describe('inbound budget: the signature is checked before the connector rate is spent (pglite)', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
  });

  it('forged requests from elsewhere cannot spend the connector rate, and run out of a budget of their own', async () => {
    t = await startTestService('pglite', {
      'connectors.inboundPerSecond': 1,
      'connectors.inboundBurst': 3,
      'connectors.inboundUnverifiedPerSecond': 1,
      'connectors.inboundUnverifiedBurst': 5,
    });
    helpdesk = await startGenericHelpdesk(SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Budget' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: SECRET },
    });
    helpdesk.inboundUrl = connector.body.inboundUrl;

    // Before: this flood used the connector's whole rate and every real event was answered 429.
    const flood = await Promise.all(Array.from({ length: 200 }, () => postFrom('127.0.0.2', helpdesk!.inboundUrl, forgedBody, forged)));
    const codes = flood.map((a) => a.body.error.code as string);
    expect(codes.filter((c) => c === 'invalid_signature').length).toBeLessThanOrEqual(6);
    expect(codes.filter((c) => c === 'inbound_unverified_rate_limited').length).toBeGreaterThanOrEqual(194);
    expect(codes.every((c) => c === 'invalid_signature' || c === 'inbound_unverified_rate_limited')).toBe(true);
    expect(flood.find((a) => a.status === 429)).toBeDefined();
    // An unknown connector id does not verify either.
    expect((await postFrom('127.0.0.2', `${t.url}/v1/connectors/con_nope/events`, forgedBody, forged)).body.error.code).toBe('inbound_unverified_rate_limited');

    // The helpdesk's own events: its whole burst is still there.
    for (let i = 0; i < 3; i++) expect((await helpdesk.send({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } })).status).not.toBe(429);
    expect((await helpdesk.send({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } })).body.error.code).toBe('inbound_rate_limited');

    // Another address has a budget of its own.
    expect((await postFrom('127.0.0.3', helpdesk.inboundUrl, forgedBody, forged)).body.error.code).toBe('invalid_signature');
    // Bodies that are not JSON spend that budget too, and once it is spent are not parsed at all.
    const malformed = [];
    for (let i = 0; i < 8; i++) malformed.push((await postFrom('127.0.0.4', helpdesk.inboundUrl, '{"a":', forged)).body.error.code as string);
    expect(malformed.filter((c) => c === 'invalid_json').length).toBeLessThanOrEqual(6);
    expect(malformed.slice(-2)).toEqual(['inbound_unverified_rate_limited', 'inbound_unverified_rate_limited']);
    const samples = parsePromText((await t.api('GET', '/metrics')).body as string);
    expect(valueOf(samples, 'handover_guard_refusals_total', { code: 'inbound_unverified_rate_limited' })).toBe(
      codes.filter((c) => c === 'inbound_unverified_rate_limited').length + 1 + malformed.filter((c) => c === 'inbound_unverified_rate_limited').length,
    );
    expect(valueOf(samples, 'handover_guard_refusals_total', { code: 'invalid_signature' })).toBe(codes.filter((c) => c === 'invalid_signature').length + 1);
  });

  it('never refuses an address that sends authentic events before checking, whatever else comes from it', async () => {
    t = await startTestService('pglite', { 'connectors.inboundUnverifiedPerSecond': 1, 'connectors.inboundUnverifiedBurst': 2 });
    helpdesk = await startGenericHelpdesk(SECRET);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Shared egress' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: helpdesk.url, secret: SECRET },
    });
    helpdesk.inboundUrl = connector.body.inboundUrl;
    const event = JSON.stringify({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } });
    // A helpdesk's shared egress address: another of its customers points a webhook with a wrong
    // secret at our URL, through the same address as the real events.
    const signed = await helpdesk.send({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } });
    expect(signed.status).not.toBe(429);
    for (let i = 0; i < 20; i++) expect((await postFrom('127.0.0.1', helpdesk.inboundUrl, event, forged)).body.error.code).toBe('invalid_signature');
    expect((await helpdesk.send({ type: 'agent.typing', handoverId: 'ho_none', data: { typing: true } })).status).not.toBe(429);
  });
});
