import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedHeaders } from '../../src/outbound/standard-webhooks.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { openSseClient } from '../support/sse-client.js';
import { contractOf } from '../support/openapi-contract.js';
import { download, files, upload } from '../support/attachment-files.js';
import { SESSION_COOKIE } from '../../src/desk/session-cookie.js';

/** A day of the week (as opening hours name it) two days after today in `timeZone`: a queue open only then is closed now. */
function closedDay(timeZone: string): string {
  const days = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const today = days.indexOf(new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short' }).format(new Date()).toLowerCase());
  if (today < 0) throw new Error(`closedDay: today's weekday in ${timeZone} was not read`);
  return days[(today + 2) % 7]!;
}

/**
 * Every documented operation, driven over real HTTP, with its usual answers and its typical refusals:
 * each answer must be documented for its operation (status, schema, error code, headers), and every
 * operation of the document must have been answered at least once. The events the service sends (SSE,
 * poll, bot webhooks, helpdesk webhooks) must match the document's `BotEvent` and `HelpdeskEvent`.
 */
describe.each<DbKind>(dbKinds)('the OpenAPI document describes what the service answers (%s)', (kind) => {
  let t: TestService;
  let bot: SignedWebhookServer;
  let helpdesk: GenericHelpdesk;
  let desk: DeskSetup;
  let spec: Record<string, any>;
  const helpdeskSecret = 'whsec_' + Buffer.alloc(32, 3).toString('base64');

  beforeAll(async () => {
    t = await startTestService(kind, { 'desk.loginMaxFailuresPerAddress': 3 }, { contract: true });
    bot = await startSignedWebhookServer(() => botSecret);
    helpdesk = await startGenericHelpdesk(helpdeskSecret);
    spec = (await t.api('GET', '/openapi.json')).body;
  });
  let botSecret = '';

  afterAll(async () => {
    await t?.close();
    await bot?.close();
    await helpdesk?.close();
  });

  const validatorFor = (component: string) => {
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema({ ...spec, $id: 'openapi' });
    const validate = ajv.getSchema(`openapi#/components/schemas/${component}`)!;
    return (value: unknown) => (validate(value) ? 'ok' : `${ajv.errorsText(validate.errors)} in ${JSON.stringify(value)}`);
  };

  it('marks the bodies that may be left out as not required (the ends: left out, the default reason)', () => {
    for (const path of ['/v1/handovers/{id}/end', '/v1/desk/handovers/{id}/end']) expect(spec.paths[path].post.requestBody.required, path).toBe(false);
    expect(spec.paths['/v1/handovers'].post.requestBody.required).toBe(true);
  });

  it('answers every documented operation only as documented', async () => {
    const admin = (method: string, path: string, body?: unknown) => t.admin(method, path, body);
    desk = await setUpDesk(t, { webhookUrl: bot.url });
    botSecret = desk.webhookSecret;
    const bearer = (token: string) => ({ token });
    const key = bearer(desk.apiKey);
    const agent = bearer(desk.agentToken);

    // Operations.
    expect((await t.api('GET', '/healthz')).status).toBe(200);
    expect((await t.api('GET', '/readyz')).status).toBe(200);

    // Admin API: the tenant's things, then the usual refusals.
    const tenantPath = `/v1/admin/tenants/${desk.tenantId}`;
    expect((await admin('GET', '/v1/admin/tokens')).status).toBe(200);
    expect((await admin('GET', '/v1/admin/tenants')).status).toBe(200);
    expect((await admin('PATCH', tenantPath, { retentionDays: 30 })).status).toBe(200);
    const readKey = await admin('POST', `${tenantPath}/api-keys`, { scope: 'read' });
    expect(readKey.status).toBe(201);
    expect((await admin('GET', `${tenantPath}/api-keys`)).status).toBe(200);
    const spare = await admin('POST', `${tenantPath}/api-keys`);
    expect((await admin('DELETE', `${tenantPath}/api-keys/${spare.body.id}`)).status).toBe(204);
    const connector = await admin('POST', `${tenantPath}/connectors`, {
      type: 'webhook',
      name: 'helpdesk',
      config: { url: helpdesk.url, secret: helpdeskSecret },
    });
    expect(connector.status).toBe(201);
    helpdesk.inboundUrl = connector.body.inboundUrl;
    expect((await admin('PATCH', `${tenantPath}/connectors/${connector.body.id}`, { name: 'our helpdesk' })).status).toBe(200);
    expect((await admin('GET', `${tenantPath}/connectors`)).status).toBe(200);
    expect((await admin('GET', `${tenantPath}/connector-checks`)).status).toBe(200);
    expect((await admin('GET', '/v1/admin/tenants/ten_nothing/connector-checks')).status).toBe(404);
    // A generic webhook has nothing to set up: its check and an empty list of settings.
    const setup = await admin('POST', `${tenantPath}/connectors/${connector.body.id}/setup`, {});
    expect(setup.status).toBe(200);
    expect(setup.body.items).toEqual([]);
    expect((await admin('POST', `${tenantPath}/connectors/con_nothing/setup`, { apply: true })).status).toBe(404);
    expect((await admin('POST', `${tenantPath}/connectors`, { type: 'nope', name: 'x', config: {} })).status).toBe(400);
    expect((await admin('POST', `${tenantPath}/queues`, { name: 'helpdesk', connectorId: connector.body.id })).status).toBe(201);
    // Open only on a day that is neither today nor tomorrow in its time zone: closed whenever this runs.
    expect(
      (
        await admin('POST', `${tenantPath}/queues`, {
          name: 'billing',
          openingHours: { [closedDay('Europe/Paris')]: [{ from: '09:00', to: '17:00' }] },
          timeZone: 'Europe/Paris',
        })
      ).status,
    ).toBe(201);
    expect((await admin('POST', `${tenantPath}/queues`, { name: 'billing' })).status).toBe(409);
    expect((await admin('GET', `${tenantPath}/queues`)).status).toBe(200);
    const supervisorEmail = `sup-${Date.now()}@example.com`;
    const supervisor = await admin('POST', `${tenantPath}/agents`, {
      email: supervisorEmail,
      name: 'Sue',
      password: 'correct horse battery',
      role: 'supervisor',
    });
    expect(supervisor.status).toBe(201);
    expect((await admin('GET', `${tenantPath}/agents`)).status).toBe(200);
    expect((await admin('PATCH', `${tenantPath}/agents/${supervisor.body.id}`, { maxChats: 5 })).status).toBe(200);
    expect((await admin('PATCH', `${tenantPath}/agents/agt_nobody`, { maxChats: 5 })).status).toBe(404);
    expect((await admin('GET', '/v1/admin/audit-log?limit=5')).status).toBe(200);
    expect((await admin('GET', '/v1/admin/audit-log?erasedUserId=u')).status).toBe(400);
    expect((await admin('GET', '/v1/admin/tenants/ten_nobody/queues')).status).toBe(404);
    expect((await admin('POST', '/v1/admin/keys/rotate')).status).toBe(200);
    expect((await t.api('GET', '/v1/admin/tenants', bearer('wrong'))).status).toBe(401);
    expect((await t.api('POST', '/v1/admin/tenants', { ...bearer(t.adminToken), rawBody: 'name=x', headers: { 'content-type': 'text/plain' } })).status).toBe(
      415,
    );
    expect((await t.api('POST', '/v1/admin/tenants', { ...bearer(t.adminToken), rawBody: '{"name":' })).status).toBe(400);
    expect((await t.api('POST', '/v1/admin/tenants', { ...bearer(t.adminToken), rawBody: JSON.stringify({ name: 'x'.repeat(300_000) }) })).status).toBe(413);

    // Bot API.
    expect((await t.api('GET', '/v1/availability?queue=support', key)).status).toBe(200);
    expect((await t.api('GET', '/v1/availability?queue=nowhere', key)).status).toBe(404);
    expect((await t.api('GET', '/v1/availability', key)).status).toBe(400);
    expect((await t.api('GET', '/v1/availability?queue=support')).status).toBe(401);
    const request = { conversationId: 'c-1', queue: 'support', user: { id: 'u-1', name: 'Uma' }, transcript: [{ role: 'user', text: 'help' }] };
    const created = await t.api('POST', '/v1/handovers', { ...key, body: request, headers: { 'idempotency-key': 'k-1' } });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/v1/handovers/${created.body.id}`);
    const id = created.body.id as string;
    expect((await t.api('POST', '/v1/handovers', { ...key, body: { ...request, conversationId: 'c-2' }, headers: { 'idempotency-key': 'k-1' } })).status).toBe(
      409,
    );
    expect((await t.api('POST', '/v1/handovers', { ...key, body: request })).status).toBe(200);
    expect((await t.api('POST', '/v1/handovers', { ...bearer(readKey.body.apiKey), body: request })).status).toBe(403);
    expect((await t.api('POST', '/v1/handovers', { ...key, body: { ...request, queue: 'billing', conversationId: 'c-closed' } })).status).toBe(409);
    expect((await t.api('GET', `/v1/handovers/${id}`, bearer(readKey.body.apiKey))).status).toBe(200);
    expect((await t.api('GET', '/v1/handovers/ho_nothing', key)).status).toBe(404);
    expect((await t.api('GET', `/v1/handovers/${'x'.repeat(120)}`, key)).status).toBe(400);
    expect((await t.api('GET', `/v1/handovers/${'x'.repeat(2000)}`, key)).status).toBe(414);
    expect((await t.api('POST', `/v1/handovers/${id}/messages`, { ...key, body: { id: 'm-1', text: 'hello' } })).status).toBe(202);
    expect((await t.api('POST', `/v1/handovers/${id}/messages`, { ...key, body: { text: 'x', extra: 1 } })).status).toBe(400);
    expect((await t.api('POST', `/v1/handovers/${id}/typing`, { ...key, body: { typing: true } })).status).toBe(202);

    // The stream opens with text/event-stream as documented; it is read below.
    const stream = openSseClient(`${t.url}/v1/events?after=`, { authorization: `Bearer ${desk.apiKey}` });
    expect(await stream.opened).toBe(200);
    const head = await fetch(`${t.url}/v1/events`, { headers: { authorization: `Bearer ${desk.apiKey}` }, signal: AbortSignal.timeout(2000) });
    expect(t.contract!.check({ method: 'GET', path: '/v1/events', status: head.status, headers: head.headers, body: '' })).toEqual([]);
    void head.body?.cancel();
    const badCursor = await fetch(`${t.url}/v1/events`, { headers: { authorization: `Bearer ${desk.apiKey}`, 'last-event-id': 'evt_unknown' } });
    expect(
      t.contract!.check({ method: 'GET', path: '/v1/events', status: badCursor.status, headers: badCursor.headers, body: await badCursor.text() }),
    ).toEqual([]);
    expect(badCursor.status).toBe(400);

    // Desk API.
    expect((await t.api('GET', '/v1/desk/me', agent)).status).toBe(200);
    const session = await t.api('GET', '/v1/desk/session', agent);
    expect(session.status).toBe(200);
    expect((await t.api('GET', '/v1/desk/queues', agent)).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/handovers', agent)).status).toBe(200);
    // A stream's answer is checked at its head (its body never ends).
    const deskStream = new AbortController();
    const opened = await fetch(`${t.url}/v1/desk/events`, { headers: { authorization: `Bearer ${desk.agentToken}` }, signal: deskStream.signal });
    expect(t.contract!.check({ method: 'GET', path: '/v1/desk/events', status: opened.status, headers: opened.headers, body: '' })).toEqual([]);
    expect(opened.status).toBe(200);
    deskStream.abort();
    // A change made with the cookie needs its CSRF token.
    const cookie = { cookie: `${SESSION_COOKIE}=${desk.agentToken}` };
    expect((await t.api('PUT', '/v1/desk/presence', { body: { presence: 'available' }, headers: cookie })).status).toBe(403);
    expect(
      (await t.api('PUT', '/v1/desk/presence', { body: { presence: 'available' }, headers: { ...cookie, 'x-csrf-token': session.body.csrfToken } })).status,
    ).toBe(200);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/messages`, { ...agent, body: { text: 'early' } })).status).toBe(409);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, agent)).status).toBe(200);
    expect((await t.api('POST', '/v1/desk/accept-next', { ...agent, body: {} })).status).toBe(200);
    expect((await t.api('GET', `/v1/desk/handovers/${id}/messages`, agent)).status).toBe(200);
    // Canned responses.
    const canned = await t.api('POST', '/v1/desk/canned-responses', { ...agent, body: { shortcut: 'hi', text: 'Hi {{user.name}}' } });
    expect(canned.status).toBe(201);
    expect((await t.api('POST', '/v1/desk/canned-responses', { ...agent, body: { shortcut: 'hi', text: 'again' } })).status).toBe(409);
    expect((await t.api('POST', '/v1/desk/canned-responses', { ...agent, body: { shortcut: 'all', text: 'x', scope: 'tenant' } })).status).toBe(403);
    expect((await t.api('GET', `/v1/desk/canned-responses?q=hi&handoverId=${id}`, agent)).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/canned-responses?handoverId=ho_nothing', agent)).status).toBe(404);
    expect((await t.api('PATCH', `/v1/desk/canned-responses/${canned.body.id}`, { ...agent, body: { text: 'Hello {{user.name}}' } })).status).toBe(200);
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${canned.body.id}`, agent)).status).toBe(204);
    expect((await t.api('DELETE', `/v1/desk/canned-responses/${canned.body.id}`, agent)).status).toBe(404);
    // Internal notes.
    expect((await t.api('POST', `/v1/desk/handovers/${id}/notes`, { ...agent, body: { text: 'Second contact today.' } })).status).toBe(201);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/notes`, { ...agent, body: { text: '' } })).status).toBe(400);
    expect((await t.api('GET', `/v1/desk/handovers/${id}/notes`, agent)).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/handovers/ho_nothing/notes', agent)).status).toBe(404);
    // History (a page with a closed chat is read below, once this one has ended).
    expect((await t.api('GET', '/v1/desk/history?before=nope', agent)).status).toBe(400);
    expect((await t.api('GET', `/v1/desk/handovers/${id}`, agent)).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/handovers/ho_nothing', agent)).status).toBe(404);
    expect((await t.api('GET', `/v1/desk/handovers/${id}/earlier`, agent)).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/handovers/ho_nothing/earlier', agent)).status).toBe(404);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/messages`, { ...agent, body: { id: 'a-1', text: 'Hi, Ada here.' } })).status).toBe(202);
    // Attachments: uploads both ways, sent by id, read through the signed link and with the bot's key.
    const userFile = await upload(t, `/v1/handovers/${id}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'a.png' });
    expect(userFile.status).toBe(201);
    expect((await upload(t, `/v1/handovers/${id}/attachments`, { token: desk.apiKey, bytes: files.elf })).status).toBe(415);
    expect((await upload(t, `/v1/handovers/${id}/attachments`, { token: desk.apiKey, bytes: Buffer.alloc(0) })).status).toBe(400);
    const agentFile = await upload(t, `/v1/desk/handovers/${id}/attachments`, {
      token: desk.agentToken,
      bytes: files.pdf,
      type: 'application/pdf',
      name: 'b.pdf',
    });
    expect(agentFile.status).toBe(201);
    expect((await upload(t, '/v1/desk/handovers/ho_nothing/attachments', { token: desk.agentToken, bytes: files.pdf })).status).toBe(404);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/messages`, { ...agent, body: { text: '', attachments: [{ id: agentFile.body.id }] } })).status).toBe(
      202,
    );
    expect((await t.api('POST', `/v1/desk/handovers/${id}/messages`, { ...agent, body: { text: '', attachments: [{ id: 'att_nothing' }] } })).status).toBe(404);
    expect((await download(t, agentFile.body.url)).status).toBe(200);
    expect((await download(t, `${t.url}/v1/attachments/${agentFile.body.id}`)).status).toBe(403);
    expect((await download(t, `${t.url}/v1/handovers/${id}/attachments/${userFile.body.id}`, desk.apiKey)).status).toBe(200);
    expect((await download(t, `${t.url}/v1/handovers/${id}/attachments/att_nothing`, desk.apiKey)).status).toBe(404);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/typing`, { ...agent, body: { typing: true } })).status).toBe(202);
    expect((await t.api('GET', '/v1/desk/team', agent)).status).toBe(403);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/transfer`, { ...agent, body: { queue: 'nowhere' } })).status).toBe(404);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/transfer`, { ...agent, body: { queue: 'support', note: 'For the next agent.' } })).status).toBe(200);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, agent)).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${id}/events`, key)).status).toBe(200);
    expect((await t.api('GET', `/v1/handovers/${id}/events?after=evt_nothing`, key)).status).toBe(400);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/end`, { ...agent, body: {} })).status).toBe(200);
    const closed = await t.api('GET', `/v1/desk/history?scope=team&user=u-1&from=2020-01-01&limit=5`, agent);
    expect(closed.status).toBe(200);
    expect(closed.body.handovers.map((h: { id: string }) => h.id)).toContain(id);
    expect((await t.api('POST', `/v1/handovers/${id}/messages`, { ...key, body: { text: 'too late' } })).status).toBe(409);
    expect((await t.api('POST', `/v1/handovers/${id}/end`, { ...key, body: {} })).status).toBe(200);
    // Satisfaction rating, once the handover has ended.
    expect((await t.api('POST', `/v1/handovers/${id}/rating`, { ...key, body: { score: 6 } })).status).toBe(400);
    expect((await t.api('POST', `/v1/handovers/${id}/rating`, { ...key, body: { score: 5, comment: 'Thanks!' } })).status).toBe(201);
    expect((await t.api('POST', `/v1/handovers/${id}/rating`, { ...key, body: { score: 5, comment: 'Thanks!' } })).status).toBe(200);
    expect((await t.api('POST', `/v1/handovers/${id}/rating`, { ...key, body: { score: 1 } })).status).toBe(409);
    expect((await t.api('POST', '/v1/handovers/ho_nothing/rating', { ...key, body: { score: 1 } })).status).toBe(404);

    const sup = await t.api('POST', '/v1/desk/login', { body: { email: supervisorEmail, password: 'correct horse battery' } });
    expect(sup.status).toBe(200);
    expect((await t.api('GET', '/v1/desk/team', bearer(sup.body.token))).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/supervisor/overview', bearer(sup.body.token))).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/supervisor/overview', agent)).status).toBe(403);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/take`, bearer(sup.body.token))).status).toBe(409);
    expect((await t.api('POST', '/v1/desk/handovers/ho_nothing/take', bearer(sup.body.token))).status).toBe(404);
    expect((await t.api('PUT', `/v1/desk/agents/${desk.agentId}/presence`, { ...bearer(sup.body.token), body: { presence: 'away' } })).status).toBe(200);
    expect((await t.api('POST', `/v1/desk/agents/${desk.agentId}/sign-out`, bearer(sup.body.token))).status).toBe(200);
    expect((await t.api('GET', '/v1/desk/me', agent)).status).toBe(401);
    expect((await t.api('POST', '/v1/desk/logout', bearer(sup.body.token))).status).toBe(204);
    expect((await admin('DELETE', `${tenantPath}/agents/${supervisor.body.id}/sessions`)).status).toBe(200);
    for (let i = 0; i < 3; i++)
      expect((await t.api('POST', '/v1/desk/login', { body: { email: supervisorEmail, password: 'wrong password!' } })).status).toBe(401);
    expect((await t.api('POST', '/v1/desk/login', { body: { email: supervisorEmail, password: 'wrong password!' } })).status).toBe(429);

    // Connector inbound: a handover on the helpdesk's queue, and the helpdesk's signed events.
    const viaHelpdesk = await t.api('POST', '/v1/handovers', { ...key, body: { conversationId: 'c-hd', queue: 'helpdesk', user: { id: 'u-2' } } });
    expect(viaHelpdesk.status).toBe(201);
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'the helpdesk to get the handover');
    const inbound = (event: unknown, options: { secret?: string; id?: string } = {}) => {
      const body = JSON.stringify(event);
      const headers = signedHeaders(options.secret ?? helpdeskSecret, options.id ?? `hd-${Math.random()}`, body);
      return t.api('POST', `/v1/connectors/${connector.body.id}/events`, { rawBody: body, headers });
    };
    const hd = viaHelpdesk.body.id as string;
    expect((await inbound({ type: 'agent.joined', handoverId: hd, data: { agent: { id: 'sam', name: 'Sam' } } })).status).toBe(200);
    expect((await inbound({ type: 'message.created', handoverId: hd, data: { message: { id: 'hd-1', text: "Hi, I'm Sam." } } })).status).toBe(200);
    expect((await inbound({ type: 'queue.updated', handoverId: hd, data: {} })).status).toBe(200);
    expect((await inbound({ type: 'message.created', handoverId: hd }, {})).status).toBe(400);
    expect(
      (await inbound({ type: 'agent.typing', handoverId: hd, data: { typing: true } }, { secret: 'whsec_' + Buffer.alloc(32, 9).toString('base64') })).status,
    ).toBe(401);
    expect((await inbound({ type: 'agent.typing', handoverId: 'ho_nothing', data: { typing: true } })).status).toBe(404);
    expect((await t.api('POST', `/v1/handovers/${hd}/messages`, { ...key, body: { id: 'm-hd', text: 'to the helpdesk' } })).status).toBe(202);
    expect((await inbound({ type: 'handover.ended', handoverId: hd })).status).toBe(200);
    expect((await inbound({ type: 'queue.updated', handoverId: hd, data: {} })).status).toBe(409);

    // Privacy, last: the user's handovers have ended.
    expect((await t.api('GET', '/v1/users/u-1/export', key)).status).toBe(200);
    expect((await t.api('DELETE', '/v1/users/u-1', key)).status).toBe(200);

    // The events the bot got, every way it can get them, match the document.
    const botEvent = validatorFor('BotEvent');
    const polled = await t.api('GET', `/v1/handovers/${hd}/events`, key);
    for (const event of polled.body.events) expect(botEvent(event)).toBe('ok');
    await stream.waitFor((events) => events.some((e) => e.event === 'handover.ended' && e.data.handoverId === hd), 10_000, 'the end on the stream');
    stream.close();
    expect(new Set(stream.events.map((e) => e.event))).toEqual(
      new Set(['handover.queued', 'handover.accepted', 'message.created', 'agent.typing', 'queue.updated', 'handover.transferred', 'handover.ended']),
    );
    for (const event of stream.events) expect(botEvent(event.data)).toBe('ok');
    await bot.waitFor((received) => received.some((w) => w.body.type === 'handover.ended' && w.body.handoverId === hd), 10_000, 'the end by webhook');
    for (const webhook of bot.received) expect(botEvent(webhook.body)).toBe('ok');
    const helpdeskEvent = validatorFor('HelpdeskEvent');
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'message.created'), 10_000, 'the user message at the helpdesk');
    for (const webhook of helpdesk.received) expect(helpdeskEvent(webhook.body)).toBe('ok');

    // A tenant made only to be deleted (the document's 204 and 404).
    const spareTenant = await admin('POST', '/v1/admin/tenants', { name: 'Spare' });
    expect((await admin('DELETE', `/v1/admin/tenants/${spareTenant.body.id}`)).status).toBe(204);
    expect((await admin('DELETE', `/v1/admin/tenants/${spareTenant.body.id}`)).status).toBe(404);

    const unanswered = t.contract!.operations.filter((op) => !t.contract!.seen.has(op));
    expect(unanswered, 'documented operations this test never called').toEqual([]);
  });

  it('documents the refusals of an overloaded instance, with Retry-After', async () => {
    const busy = await startTestService(kind, { 'admission.heapUsedLimitRatio': 0.0001 }, { contract: spec });
    try {
      for (const [method, path] of [
        ['GET', '/v1/availability?queue=support'],
        ['POST', '/v1/handovers'],
        ['GET', '/v1/desk/me'],
        ['GET', '/v1/admin/tenants'],
      ] as const) {
        const res = await busy.api(method, path, { token: 'any', ...(method === 'POST' ? { body: {} } : {}) });
        expect(res.status).toBe(503);
        expect(res.body.error.code).toBe('overloaded_memory');
      }
      expect((await busy.api('GET', '/healthz')).status).toBe(200);
    } finally {
      await busy.close();
    }
  });

  it('gives examples that match their schemas', () => {
    const withExamples = Object.entries<Record<string, any>>(spec.components.schemas).filter(([, schema]) => Array.isArray(schema.examples));
    expect(withExamples.length).toBeGreaterThanOrEqual(15);
    for (const [name, schema] of withExamples) {
      const validate = validatorFor(name);
      for (const example of schema.examples) expect(validate(example), name).toBe('ok');
    }
  });

  it('fails an answer the document does not describe', () => {
    const contract = contractOf(spec);
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
      contract.check({
        method: 'GET',
        path: '/v1/handovers/ho_1',
        status,
        headers: new Headers({ 'content-type': 'application/json', ...headers }),
        body: JSON.stringify(body),
      });
    const error = (code: string) => ({ error: { code, message: 'm' } });
    expect(answer(404, error('handover_not_found'))).toEqual([]);
    expect(answer(418, error('teapot')).join()).toContain('status 418 is not documented');
    expect(answer(404, error('queue_full')).join()).toContain('error code queue_full is not documented');
    expect(answer(200, { id: 'ho_1' }).join()).toContain('does not match its schema');
    expect(answer(503, error('overloaded_memory')).join()).toContain('header Retry-After is missing');
    expect(answer(503, error('overloaded_memory'), { 'retry-after': '1' })).toEqual([]);
    expect(contract.check({ method: 'GET', path: '/desk/app.js', status: 200, headers: new Headers(), body: '' })).toEqual([]);
  });

  it('lists every status of an operation only once, and no 413 or 415 where no body can be sent', () => {
    for (const [path, item] of Object.entries<Record<string, any>>(spec.paths)) {
      for (const [method, op] of Object.entries<any>(item)) {
        const statuses = Object.keys(op.responses);
        if (method === 'get') expect(statuses, `${method} ${path}`).not.toContain('413');
        if (method === 'get') expect(statuses, `${method} ${path}`).not.toContain('415');
        expect(op.operationId, `${method} ${path}`).toMatch(/^[a-z][A-Za-z]+$/);
        for (const [status, response] of Object.entries<any>(op.responses)) {
          if (status === '503' || status === '429') expect(response.headers?.['Retry-After'], `${method} ${path} ${status}`).toBeDefined();
        }
      }
    }
    expect(Object.keys(spec.webhooks)).toEqual(
      expect.arrayContaining([
        'handover.queued',
        'handover.accepted',
        'message.created',
        'agent.typing',
        'queue.updated',
        'handover.transferred',
        'handover.ended',
        'helpdesk.handover.requested',
        'helpdesk.batch',
      ]),
    );
    // No alternative that says nothing (`anyOf [{}, null]` breaks generators).
    const empty: string[] = [];
    const walk = (node: unknown, at: string): void => {
      if (Array.isArray(node)) return node.forEach((item, i) => walk(item, `${at}/${i}`));
      if (node === null || typeof node !== 'object') return;
      for (const key of ['anyOf', 'oneOf']) {
        const options = (node as Record<string, unknown>)[key];
        if (Array.isArray(options) && options.some((o) => o !== null && typeof o === 'object' && Object.keys(o).length === 0)) empty.push(`${at}/${key}`);
      }
      for (const [key, value] of Object.entries(node)) walk(value, `${at}/${key}`);
    };
    walk(spec, '');
    expect(empty).toEqual([]);
    expect(spec['x-document-problems'], 'what keeps the document from being complete').toBeUndefined();
  });
});
