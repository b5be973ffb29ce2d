import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../../src/http/error-handler.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { keyOf } from '../fakes/signed-webhook-server.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

const SECRET = 'whsec_' + Buffer.from('json-depth-secret-of-32-bytes!!!!!').toString('base64');

/** `depth` arrays inside each other around a number. */
const nested = (depth: number) => '['.repeat(depth) + '1' + ']'.repeat(depth);

describe('JSON nested too deep is refused at the door (400 invalid_json, never 500)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let helpdesk: GenericHelpdesk;

  beforeAll(async () => {
    t = await startTestService('pglite');
    desk = await setUpDesk(t);
    helpdesk = await startGenericHelpdesk(SECRET);
    const connector = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
      type: 'webhook',
      name: 'deep',
      config: { url: helpdesk.url, secret: SECRET },
    });
    expect(connector.status).toBe(201);
    helpdesk.inboundUrl = connector.body.inboundUrl;
  });
  afterAll(async () => {
    await t?.close();
    await helpdesk?.close();
  });

  it('refuses metadata nested 5,000 deep, and takes metadata nested within the bound', async () => {
    const deep = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      rawBody: `{"conversationId":"deep","queue":"support","user":{"id":"u"},"metadata":{"x":${nested(5000)}}}`,
    });
    expect(deep.status).toBe(400);
    expect(deep.body.error.code).toBe('invalid_json');
    expect(deep.body.error.message).toContain(`more than ${MAX_JSON_DEPTH} deep`);

    const fine = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      rawBody: `{"conversationId":"fine","queue":"support","user":{"id":"u"},"metadata":{"x":${nested(MAX_JSON_DEPTH - 2)},"brackets":"${'['.repeat(5000)}"}}`,
    });
    expect(fine.status).toBe(201);
  });

  it('refuses a correctly signed inbound event nested 5,000 deep with a 4xx the helpdesk will not retry', async () => {
    // Written as text: JSON.stringify itself runs out of stack on a value this deep.
    const body = `{"type":"message.created","handoverId":"ho_none","data":{"message":{"id":"m1","text":"hi"},"extra":${nested(5000)}}}`;
    const id = 'hd_deep';
    const ts = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', keyOf(SECRET)).update(`${id}.${ts}.${body}`).digest('base64');
    const answer = await t.api('POST', new URL(helpdesk.inboundUrl).pathname, {
      rawBody: body,
      headers: { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': `v1,${signature}` },
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.code).toBe('invalid_json');
  });

  it('refuses deep bodies on the admin and desk APIs too', async () => {
    const admin = await t.api('POST', '/v1/admin/tenants', { token: t.adminToken, rawBody: `{"name":${nested(5000)}}` });
    expect(admin.status).toBe(400);
    expect(admin.body.error.code).toBe('invalid_json');
    const deskAnswer = await t.api('PUT', '/v1/desk/presence', { token: desk.agentToken, rawBody: `{"presence":${nested(200)}}` });
    expect(deskAnswer.status).toBe(400);
    expect(deskAnswer.body.error.code).toBe('invalid_json');
  });

  it('counts brackets only outside strings', () => {
    expect(nestedDeeperThan(nested(3), 3)).toBe(false);
    expect(nestedDeeperThan(nested(4), 3)).toBe(true);
    expect(nestedDeeperThan(`{"a":"${'{'.repeat(100)}","b":[[1]]}`, 3)).toBe(false);
    expect(nestedDeeperThan(`{"a":"\\"${'['.repeat(10)}","b":[[[1]]]}`, 3)).toBe(true);
    expect(nestedDeeperThan(`[{},{},{},{},{},[],[],[]]`, 3)).toBe(false);
  });
});
