import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';

/**
 * The message route served before Fastify (src/http/message-route.ts) answers every request exactly as
 * the Fastify route does: the same requests go to two instances, one with it (the default) and one
 * without (HANDOVER_HTTP_DIRECT_MESSAGES=false), and each answer's status, body and headers are compared.
 * Requests it must leave to Fastify (anything the framework might answer differently) are among them,
 * and the counts say which path took each.
 */
interface Side {
  t: TestService;
  key: string;
  readKey: string;
  live: string;
  ended: string;
}

async function side(direct: boolean): Promise<Side> {
  const t = await startTestService('pg', { 'http.directMessages': direct, 'http.bodyLimitBytes': 64 * 1024 });
  const desk = await setUpDesk(t);
  const open = async (conversationId: string) =>
    (await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId, queue: 'support', user: { id: 'u' } } })).body.id as string;
  const live = await open('live');
  const ended = await open('ended');
  expect((await t.api('POST', `/v1/handovers/${ended}/end`, { token: desk.apiKey, body: {} })).status).toBe(200);
  const readKey = (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/api-keys`, { scope: 'read' })).body.apiKey as string;
  return { t, key: desk.apiKey, readKey, live, ended };
}

interface Call {
  path?: (s: Side) => string;
  token?: (s: Side) => string | undefined;
  authorization?: string;
  contentType?: string;
  body: string;
}

/** name, the request, and whether the direct route serves it itself (else it hands it to Fastify). */
const calls: Array<[string, Call, boolean]> = [
  ['a plain message', { body: '{"text":"hello"}' }, true],
  ['a message with an id', { body: '{"id":"m-1","text":"hello"}' }, true],
  ['the same id again', { body: '{"id":"m-1","text":"hello again"}' }, true],
  ['an empty text', { body: '{"text":""}' }, true],
  ['text of 20,000 characters', { body: JSON.stringify({ text: 'é'.repeat(20_000) }) }, true],
  ['text beyond any BMP character', { body: JSON.stringify({ text: '🙂 done' }) }, true],
  ['a charset in the content type', { body: '{"text":"hi"}', contentType: 'application/json; charset=UTF-8' }, true],
  ['a lower-case bearer scheme', { body: '{"text":"hi"}', authorization: 'bearer {key}' }, true],
  ['an unknown handover', { body: '{"text":"hi"}', path: () => '/v1/handovers/ho_nope/messages' }, true],
  ['an id of 64 characters', { body: '{"text":"hi"}', path: () => `/v1/handovers/${'h'.repeat(64)}/messages` }, true],
  ['an ended handover', { body: '{"text":"hi"}', path: (s) => `/v1/handovers/${s.ended}/messages` }, true],
  ['a wrong key', { body: '{"text":"hi"}', token: () => 'not-a-key' }, true],
  ['a read-only key', { body: '{"text":"hi"}', token: (s) => s.readKey }, true],
  ['malformed JSON', { body: '{"text": ' }, false],
  ['a JSON array', { body: '[1]' }, false],
  ['JSON null', { body: 'null' }, false],
  ['an unknown field', { body: '{"text":"hi","colour":"red"}' }, false],
  ['text not a string', { body: '{"text":42}' }, false],
  ['no text', { body: '{"id":"x"}' }, false],
  ['an empty id', { body: '{"id":"","text":"hi"}' }, false],
  ['an id of 257 characters', { body: JSON.stringify({ id: 'i'.repeat(257), text: 'hi' }) }, false],
  ['text of 20,001 characters', { body: JSON.stringify({ text: 'x'.repeat(20_001) }) }, false],
  ['a lone surrogate escape', { body: '{"text":"a\\ud800b"}' }, false],
  ['a prototype key', { body: '{"text":"hi","__proto__":{"x":1}}' }, false],
  ['an escaped prototype key', { body: '{"text":"hi","\\u005f_proto__":{"x":1}}' }, false],
  ['__proto__ within the text', { body: '{"text":"what is __proto__?"}' }, false],
  ['text of 20,002 UTF-16 units and 10,001 characters', { body: JSON.stringify({ text: '🙂'.repeat(10_001) }) }, false],
  ['an empty body', { body: '' }, false],
  ['attachments', { body: '{"text":"hi","attachments":[{"url":"https://example.com/a.png","name":"a.png"}]}' }, false],
  ['no credential', { body: '{"text":"hi"}', token: () => undefined }, false],
  ['a credential of another scheme', { body: '{"text":"hi"}', authorization: 'Basic abc' }, false],
  ['plain text', { body: 'hello', contentType: 'text/plain' }, false],
  ['a percent-encoded id', { body: '{"text":"hi"}', path: (s) => `/v1/handovers/%${s.live.charCodeAt(0).toString(16)}${s.live.slice(1)}/messages` }, false],
  ['a query string', { body: '{"text":"hi"}', path: (s) => `/v1/handovers/${s.live}/messages?x=1` }, false],
  ['an upper-case path', { body: '{"text":"hi"}', path: (s) => `/V1/handovers/${s.live}/messages` }, false],
  ['a doubled slash', { body: '{"text":"hi"}', path: (s) => `/v1//handovers/${s.live}/messages` }, false],
  ['a trailing slash', { body: '{"text":"hi"}', path: (s) => `/v1/handovers/${s.live}/messages/` }, false],
  ['an id longer than any', { body: '{"text":"hi"}', path: () => `/v1/handovers/${'h'.repeat(65)}/messages` }, false],
  ['a body over the limit', { body: JSON.stringify({ text: 'x'.repeat(70_000) }) }, false],
];

async function send(s: Side, call: Call): Promise<{ status: number; body: any; headers: Record<string, string | null> }> {
  const token = call.token ? call.token(s) : s.key;
  const headers: Record<string, string> = { 'content-type': call.contentType ?? 'application/json' };
  if (call.authorization) headers.authorization = call.authorization.replace('{key}', s.key);
  else if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const path = call.path ? call.path(s) : `/v1/handovers/${s.live}/messages`;
  const res = await fetch(`${s.t.url}${path}`, { method: 'POST', headers, body: call.body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  // Every header but the date, in name order.
  const picked: Record<string, string | null> = {};
  for (const [name, value] of [...res.headers].sort(([a], [b]) => a.localeCompare(b))) if (name !== 'date') picked[name] = value;
  const body = JSON.parse(text) as Record<string, unknown>;
  // Each instance names its own messages: the ids differ, their form does not.
  if (typeof body.id === 'string') body.id = body.id.replace(/^(msg_).*$/, '$1…');
  if (typeof (body.error as { message?: unknown } | undefined)?.message === 'string') {
    const error = body.error as { message: string };
    error.message = error.message.replaceAll(s.live, '{live}').replaceAll(s.ended, '{ended}');
  }
  return { status: res.status, body, headers: picked };
}

describe('the message route served before Fastify', () => {
  let direct: Side;
  let framework: Side;

  beforeAll(async () => {
    [direct, framework] = await Promise.all([side(true), side(false)]);
  });
  afterAll(async () => {
    await Promise.all([direct?.t.close(), framework?.t.close()]);
  });

  it('is on by default and off when switched off', () => {
    expect(direct.t.service.app.directMessages).toBeDefined();
    expect(framework.t.service.app.directMessages).toBeUndefined();
  });

  for (const [name, call, servedDirectly] of calls) {
    it(`answers ${name} as Fastify does (${servedDirectly ? 'served itself' : 'handed to Fastify'})`, async () => {
      const counts = direct.t.service.app.directMessages!;
      const before = { ...counts };
      const [mine, theirs] = [await send(direct, call), await send(framework, call)];
      expect(mine).toEqual(theirs);
      const served = counts.served - before.served;
      const handedOver = counts.handedOver - before.handedOver;
      // A request the head alone rules out never reaches the route's counts.
      if (servedDirectly) expect({ served, handedOver }).toEqual({ served: 1, handedOver: 0 });
      else expect(served).toBe(0);
    });
  }

  it('stores what it accepts as the Fastify route does', async () => {
    // Both handovers took the same accepted messages, in the same order, a repeated id stored once.
    const stored = (s: Side) =>
      s.t.db.query<{ text: string; client_id: string | null }>('select text, client_id from messages where handover_id = $1 order by seq', [s.live]);
    const [mine, theirs] = await Promise.all([stored(direct), stored(framework)]);
    expect(mine.rows).toEqual(theirs.rows);
    expect(mine.rows.filter((r) => r.client_id === 'm-1')).toHaveLength(1);
    expect(mine.rows.length).toBeGreaterThan(5);
  });

  it('counts its answers where Fastify counts them', async () => {
    // The request histogram of the route, by status: the same requests, the same counts.
    const counted = async (s: Side) => {
      const text = await (await fetch(`${s.t.url}/metrics`)).text();
      return text
        .split('\n')
        .filter((line) => line.startsWith('http_server_request_duration_seconds_count') && line.includes('http_route="/v1/handovers/:id/messages"'))
        .map((line) => line.replace(/\s[\d.e+-]+$/, (n) => ` ${Number(n)}`))
        .sort();
    };
    const [mine, theirs] = await Promise.all([counted(direct), counted(framework)]);
    expect(mine).toEqual(theirs);
    expect(mine.some((line) => line.includes('http_response_status_code="202"'))).toBe(true);
  });
});
