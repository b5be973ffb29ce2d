import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/** Every input a client can send gets a 4xx with a stable code, never a 500. */
describe('bad input is answered with a clear 4xx and a stable code', () => {
  let t: TestService;
  let desk: DeskSetup;
  let other: DeskSetup;
  let handoverId: string;
  let otherHandoverId: string;

  beforeAll(async () => {
    t = await startTestService('pglite', { 'http.bodyLimitBytes': 4096 });
    desk = await setUpDesk(t);
    other = await setUpDesk(t);
    const mine = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    handoverId = mine.body.id;
    const theirs = await t.api('POST', '/v1/handovers', { token: other.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    otherHandoverId = theirs.body.id;
  });
  afterAll(async () => t?.close());

  const cases: Array<[string, () => Promise<{ status: number; body: any }>, number, string]> = [
    ['malformed JSON', () => t.api('POST', '/v1/handovers', { token: desk.apiKey, rawBody: '{"conversationId": ' }), 400, 'invalid_json'],
    [
      'wrong type',
      () => t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 42, queue: 'support', user: { id: 'u' } } }),
      400,
      'invalid_request',
    ],
    ['missing field', () => t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { queue: 'support', user: { id: 'u' } } }), 400, 'invalid_request'],
    [
      'unknown field',
      () => t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'x', queue: 'support', user: { id: 'u' }, colour: 'red' } }),
      400,
      'invalid_request',
    ],
    [
      'prototype key',
      () =>
        t.api('POST', '/v1/handovers', {
          token: desk.apiKey,
          rawBody: '{"conversationId":"x","queue":"support","user":{"id":"u"},"metadata":{"__proto__":{"admin":true}}}',
        }),
      400,
      'invalid_request',
    ],
    [
      'oversized body',
      () => t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, body: { text: 'x'.repeat(10_000) } }),
      413,
      'body_too_large',
    ],
    [
      'wrong content type',
      () => t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, rawBody: 'hello', headers: { 'content-type': 'text/plain' } }),
      415,
      'unsupported_media_type',
    ],
    ['no API key', () => t.api('GET', `/v1/handovers/${handoverId}`), 401, 'unauthorized'],
    ['invalid API key', () => t.api('GET', `/v1/handovers/${handoverId}`, { token: 'handover_sk_nope' }), 401, 'unauthorized'],
    ['admin token as API key', () => t.api('GET', `/v1/handovers/${handoverId}`, { token: t.adminToken }), 401, 'unauthorized'],
    ['API key as admin token', () => t.api('GET', '/v1/admin/tenants', { token: desk.apiKey }), 401, 'unauthorized'],
    ['unknown handover', () => t.api('GET', '/v1/handovers/ho_doesnotexist', { token: desk.apiKey }), 404, 'handover_not_found'],
    ["another tenant's handover", () => t.api('GET', `/v1/handovers/${otherHandoverId}`, { token: desk.apiKey }), 404, 'handover_not_found'],
    [
      "message to another tenant's handover",
      () => t.api('POST', `/v1/handovers/${otherHandoverId}/messages`, { token: desk.apiKey, body: { text: 'hi' } }),
      404,
      'handover_not_found',
    ],
    [
      "desk agent accepting another tenant's handover",
      () => t.api('POST', `/v1/desk/handovers/${otherHandoverId}/accept`, { token: desk.agentToken }),
      404,
      'handover_not_found',
    ],
    ['a NUL character in an id', () => t.api('GET', '/v1/handovers/ho_%00x', { token: desk.apiKey }), 400, 'invalid_request'],
    [
      'a NUL character in a message',
      () => t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, rawBody: '{"text":"a\\u0000b"}' }),
      400,
      'invalid_request',
    ],
    [
      'a lone surrogate escape in a message',
      () => t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, rawBody: '{"text":"a\\ud800b"}' }),
      400,
      'invalid_json',
    ],
    [
      'a lone surrogate escape in a metadata key',
      () =>
        t.api('POST', '/v1/handovers', { token: desk.apiKey, rawBody: '{"conversationId":"s","queue":"support","user":{"id":"u"},"metadata":{"\\udc00":1}}' }),
      400,
      'invalid_json',
    ],
    [
      'a body announced in a charset other than UTF-8',
      () =>
        t.api('POST', `/v1/handovers/${handoverId}/messages`, {
          token: desk.apiKey,
          rawBody: Buffer.from('{"text":"Caf\xe9"}', 'latin1'),
          headers: { 'content-type': 'application/json; charset=iso-8859-1' },
        }),
      415,
      'unsupported_media_type',
    ],
    [
      'a message whose bytes are not UTF-8',
      () => t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, rawBody: Buffer.from('{"text":"Caf\xe9"}', 'latin1') }),
      400,
      'invalid_json',
    ],
    [
      'an admin body whose bytes are not UTF-8',
      () =>
        t.api('PATCH', `/v1/admin/tenants/${desk.tenantId}`, {
          token: t.adminToken,
          rawBody: Buffer.from('{"name":"Caf\xe9"}', 'latin1'),
        }),
      400,
      'invalid_json',
    ],
    [
      'an attachment whose URL is not http or https',
      () =>
        t.api('POST', `/v1/handovers/${handoverId}/messages`, {
          token: desk.apiKey,
          body: { text: 'see this', attachments: [{ url: 'javascript:alert(1)', name: 'x' }] },
        }),
      400,
      'invalid_request',
    ],
    [
      'a whsec_ webhook secret that is not base64',
      () =>
        t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
          type: 'webhook',
          name: 'w-bad-secret',
          config: { url: 'https://helpdesk.example.com/events', secret: 'whsec_!!!notbase64!!!' },
        }),
      400,
      'invalid_connector_config',
    ],
    [
      'a queue naming an empty connector id',
      () => t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'q-empty-connector', connectorId: '' }),
      404,
      'connector_not_found',
    ],
    ['a malformed percent-encoding in the path', () => t.api('GET', '/v1/handovers/%zz', { token: desk.apiKey }), 400, 'invalid_request'],
    ['a URL past the 16 KB header limit', () => t.api('GET', `/v1/availability?queue=${'q'.repeat(20_000)}`, { token: desk.apiKey }), 431, 'headers_too_large'],
    ['an id longer than any id', () => t.api('GET', `/v1/handovers/${'x'.repeat(500)}`, { token: desk.apiKey }), 400, 'invalid_request'],
    ['an overlong path segment', () => t.api('GET', `/v1/handovers/${'x'.repeat(2000)}`, { token: desk.apiKey }), 414, 'url_too_long'],
    ['unknown queue', () => t.api('GET', '/v1/availability?queue=nope', { token: desk.apiKey }), 404, 'queue_not_found'],
    ['missing query parameter', () => t.api('GET', '/v1/availability', { token: desk.apiKey }), 400, 'invalid_request'],
    ['unknown event cursor', () => t.api('GET', `/v1/handovers/${handoverId}/events?after=evt_nope`, { token: desk.apiKey }), 400, 'invalid_cursor'],
    ['unknown route', () => t.api('GET', '/v1/nothing-here', { token: desk.apiKey }), 404, 'not_found'],
    ['a method the path does not answer', () => t.api('DELETE', `/v1/handovers/${handoverId}`, { token: desk.apiKey }), 405, 'method_not_allowed'],
    ['wrong password', () => t.api('POST', '/v1/desk/login', { body: { email: 'nobody@example.com', password: 'wrong' } }), 401, 'invalid_credentials'],
    ['unknown connector inbound', () => t.api('POST', '/v1/connectors/con_nope/events', { body: { type: 'agent.joined' } }), 404, 'connector_not_found'],
    [
      'unknown connector type',
      () => t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, { type: 'fax', name: 'f', config: {} }),
      400,
      'unknown_connector_type',
    ],
    [
      'bad connector config',
      () => t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, { type: 'webhook', name: 'w', config: { url: 'ftp://x' } }),
      400,
      'invalid_connector_config',
    ],
    [
      'bad opening hours',
      () =>
        t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, {
          name: 'q2',
          timeZone: 'Mars/Olympus',
          openingHours: { mon: [{ from: '9', to: '17:00' }] },
        }),
      400,
      'invalid_request',
    ],
    ['duplicate queue name', () => t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'support' }), 409, 'already_exists'],
    ['unknown tenant', () => t.admin('POST', '/v1/admin/tenants/ten_nope/queues', { name: 'x' }), 404, 'tenant_not_found'],
  ];

  it.each(cases)('%s', async (_name, send, status, code) => {
    const res = await send();
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(typeof res.body.error.message).toBe('string');
  });

  it('names the scheme a 401 asks for, and lets no cache keep an answer that carries a credential', async () => {
    for (const refused of [
      await t.api('GET', `/v1/handovers/${handoverId}`),
      await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: 'handover_sk_nope', body: { text: 'hi' } }),
    ]) {
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toBe('Bearer realm="handover"');
    }
    const key = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' });
    expect(key.status).toBe(201);
    expect(key.headers.get('cache-control')).toBe('no-store');
  });

  /** What the server answers to `request` written on a new connection, up to its close. */
  async function rawExchange(request: string): Promise<string> {
    const { port, hostname } = new URL(t.url);
    return new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => socket.write(request));
      let text = '';
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer within 5 s')));
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
  }

  it.each([
    ['bytes that are not HTTP', 'GARBAGE / HTTP/9.9\r\n\r\n', 400, 'invalid_request'],
    ['an HTTP/1.1 request without a Host header', 'GET /healthz HTTP/1.1\r\n\r\n', 400, 'invalid_request'],
    ['a CONNECT', 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n', 405, 'method_not_allowed'],
    [
      'an expectation other than 100-continue',
      'POST /v1/handovers HTTP/1.1\r\nHost: x\r\nExpect: bogus\r\nContent-Length: 2\r\n\r\n{}',
      417,
      'expectation_failed',
    ],
  ])('answers %s in the same error format, and closes the connection', async (_name, request, status, code) => {
    const answer = await rawExchange(request);
    expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: { code } });
  });

  it('names the methods a path answers when asked another (405 with Allow)', async () => {
    const refused = await t.api('PUT', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, body: { text: 'x' } });
    expect(refused.status).toBe(405);
    expect(refused.headers.get('allow')).toBe('POST');
    // A method that may carry a body, sent without one: still the 405, not a 400 about its content type.
    const query = await t.api('QUERY', `/v1/handovers/${handoverId}`, { token: desk.apiKey });
    expect(query.status).toBe(405);
    expect(query.body.error.code).toBe('method_not_allowed');
    expect(query.headers.get('allow')).toContain('GET');
    expect((await t.api('QUERY', '/v1/no-such-thing', { token: desk.apiKey })).status).toBe(404);
  });

  it('ends a handover asked without a body, with or without a content type, with the default reason', async () => {
    for (const headers of [{}, { 'content-type': 'application/json' }] as Array<Record<string, string>>) {
      const created = await t.api('POST', '/v1/handovers', {
        token: desk.apiKey,
        body: { conversationId: `c-end-${Object.keys(headers).length}`, queue: 'support', user: { id: 'u-end' } },
      });
      expect(created.status).toBe(201);
      const { port, hostname } = new URL(t.url);
      const res = await fetch(`http://${hostname}:${port}/v1/handovers/${created.body.id}/end`, {
        method: 'POST',
        headers: { authorization: `Bearer ${desk.apiKey}`, ...headers },
        signal: AbortSignal.timeout(10_000),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { state: string }).state).toBe('ended');
    }
  });

  it('does not reveal whether another tenant’s handover exists', async () => {
    const unknown = await t.api('GET', '/v1/handovers/ho_doesnotexist', { token: desk.apiKey });
    const foreign = await t.api('GET', `/v1/handovers/${otherHandoverId}`, { token: desk.apiKey });
    expect(foreign.body).toEqual(unknown.body);
  });

  it('keeps what it accepted when a later request is bad', async () => {
    const ok = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, body: { id: 'keep-me', text: 'kept' } });
    expect(ok.status).toBe(202);
    await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, rawBody: '{"text":' });
    const { rows } = await t.db.query<{ text: string }>('select text from messages where handover_id = $1', [handoverId]);
    expect(rows.map((r) => r.text)).toEqual(['kept']);
  });

  it('serves the OpenAPI document and the docs page', async () => {
    const spec = await t.api('GET', '/openapi.json');
    expect(spec.status).toBe(200);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(['/v1/handovers', '/v1/availability', '/v1/events', '/v1/connectors/{connectorId}/events', '/v1/desk/login']),
    );
    const docs = await fetch(`${t.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger');
  });
});
