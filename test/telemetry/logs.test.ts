import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.js';
import { AppError } from '../../src/resilience/errors.js';
import { loadConfig } from '../../src/config/config.js';
import { createService, type Service } from '../../src/service.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { ADMIN_TOKEN, setUpDesk, testSettings, type TestService } from '../support/test-service.js';
import { captureLogs as capture } from '../support/log-capture.js';

describe('structured logs', () => {
  it('redact secrets wherever the usual fields carry them', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const secrets = ['Bearer handover_sk_live_secret1', 'whsec_c2VjcmV0LXNlY3JldA==', 'pw-correct-horse', 'cookie-value-9', 'tok-42-secret', 'hash-of-a-key'];
    log.info({ req: { headers: { authorization: secrets[0], cookie: secrets[3] } } }, 'incoming');
    log.info({ connector: { config: { url: 'https://helpdesk.example', secret: secrets[1] } } }, 'connector added');
    log.info({ agent: { email: 'a@example.com', password: secrets[2] }, session: { token: secrets[4] } }, 'agent');
    log.info({ tenant: { id: 'ten_1', webhook_secret: secrets[1] }, key: { key_hash: secrets[5] } }, 'tenant');
    log.info({ outbound: { headers: { authorization: secrets[0] } } }, 'call');
    const text = out.text();
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
    // What is not secret stays readable.
    expect(text).toContain('https://helpdesk.example');
    expect(text).toContain('a@example.com');
  });

  it('leave out conversation text and remote bodies wherever the usual fields carry them', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const texts = [
      'my card ends in 4242',
      'a transcript line',
      'a metadata value',
      'a raw request body',
      'a queued payload',
      'an echoed answer',
      'a response body',
    ];
    log.info(
      { message: { id: 'msg_kept', text: texts[0] }, handover: { transcript: [{ role: 'user', text: texts[1] }], metadata: { note: texts[2] } } },
      'message',
    );
    log.info(
      {
        request: { rawBody: texts[3] },
        row: { payload: { message: { text: texts[4] } } },
        err: { message: 'answered 400', answerQuote: texts[5], body: texts[6] },
      },
      'failure',
    );
    const text = out.text();
    for (const t of texts) expect(text).not.toContain(t);
    expect(text).toContain('msg_kept');
    expect(text).toContain('answered 400');
  });

  it('log errors with their catalogue code and whole cause chain', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const root = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const err = new AppError('database_unavailable', { message: 'The database is not reachable.', cause: new Error('pool connect failed', { cause: root }) });
    log.error({ err }, 'request failed');
    const [line] = out.lines();
    expect(line!.err.code).toBe('database_unavailable');
    expect(line!.err.message).toBe('The database is not reachable.');
    expect(line!.err.cause.message).toBe('pool connect failed');
    expect(line!.err.cause.cause.message).toBe('connect ECONNREFUSED 127.0.0.1:5432');
  });
});

describe('request logs of a running service', () => {
  let service: Service | undefined;
  let db: TestDb | undefined;
  afterEach(async () => {
    await service?.stop();
    await db?.dropAndClose();
  });

  it('carry the request id, tenant and handover, and never the API key', async () => {
    const out = capture();
    db = await createTestDb('pg');
    const config = loadConfig({}, { ...testSettings, logLevel: 'debug' });
    service = await createService(config, { db, log: createLogger('debug', out.stream) });
    const url = await service.listen();
    const api: TestService['api'] = async (method, path, opts = {}) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
        body: opts.body ? JSON.stringify(opts.body) : null,
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
    };
    const t = { url, api, admin: (method: string, path: string, body?: unknown) => api(method, path, { token: ADMIN_TOKEN, body }) } as unknown as TestService;
    const desk = await setUpDesk(t);
    const created = await api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-log', queue: 'support', user: { id: 'u' } } });
    expect(created.status).toBe(201);
    const message = await api('POST', `/v1/handovers/${created.body.id}/messages`, {
      token: desk.apiKey,
      body: { text: 'hi' },
      headers: { 'x-request-id': 'req-trace-1' },
    });
    expect(message.status).toBe(202);

    const line = out.lines().find((l) => l.reqId === 'req-trace-1' && l.msg === 'request');
    expect(line).toMatchObject({ reqId: 'req-trace-1', tenantId: desk.tenantId, handoverId: created.body.id, status: 202 });
    expect(out.text()).not.toContain(desk.apiKey);
    expect(out.text()).not.toContain(desk.webhookSecret);

    // An id that is not a plain token of at most 128 characters is not taken, on either route.
    const long = 'x'.repeat(5000);
    for (const path of [`/v1/handovers/${created.body.id}/messages`, `/v1/handovers/${created.body.id}/typing`]) {
      const sent = await api('POST', path, {
        token: desk.apiKey,
        body: path.endsWith('typing') ? { typing: true } : { text: 'again' },
        headers: { 'x-request-id': long },
      });
      expect(sent.status).toBe(202);
    }
    expect(out.text()).not.toContain(long);
  });
});
