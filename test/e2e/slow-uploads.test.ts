import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admissionCounts } from '../support/admission-probe.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { openRawRequest, slowJsonUpload, type RawRequest } from '../support/raw-http.js';
import { eventually, setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Slow uploads cost a socket, not the service's capacity: bodies are read whole before a request takes
 * an admission slot, a body slower than the minimum rate is cut, and one address may send only so many
 * slow bodies at once. The window is short here so the test takes seconds.
 */
describe('slow uploads cannot take the service down (pg)', () => {
  let t: TestService;
  let desk: DeskSetup;
  let handoverId: string;
  let inboundPath: string;
  beforeAll(async () => {
    // A fixed limit of 8: before bodies were read first, 16 slow uploads held every slot.
    t = await startTestService('pg', {
      'admission.adaptive': false,
      'admission.initialLimit': 8,
      'http.uploads.windowMs': 400,
      'http.uploads.maxPerAddress': 8,
    });
    desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'support', user: { id: 'u' } } });
    handoverId = created.body.id;
    const secret = 'whsec_' + Buffer.from('slow-upload-secret-of-32-bytes!!').toString('base64');
    const connector = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
      type: 'webhook',
      name: 'hd',
      config: { url: 'http://127.0.0.1:9/hooks', secret },
    });
    expect(connector.status).toBe(201);
    inboundPath = new URL(connector.body.inboundUrl).pathname;
  });
  afterAll(async () => t?.close());

  it('16 connections at a byte a second to the sign-in and an inbound URL, reopened when answered: the bot is answered throughout', async () => {
    const attackMs = 3_000;
    const stopAt = Date.now() + attackMs;
    const refusals = new Map<string, number>();
    const attackers = Array.from({ length: 16 }, (_, i) => trickle(t.url, i % 2 === 0 ? '/v1/desk/login' : inboundPath, stopAt, refusals));
    const latencies: number[] = [];
    const statuses: number[] = [];
    let n = 0;
    while (Date.now() < stopAt) {
      const started = performance.now();
      const res = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: desk.apiKey, body: { id: `m-${n++}`, text: 'still here?' } });
      statuses.push(res.status);
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 50));
    }
    await Promise.all(attackers);

    expect(statuses.length).toBeGreaterThanOrEqual(10);
    expect(statuses.every((s) => s === 202)).toBe(true);
    // Answered at the pace of a quiet service, not at the slow clients' deadline.
    expect(Math.max(...latencies)).toBeLessThan(2_000);
    expect(refusals.get('upload_too_slow') ?? 0).toBeGreaterThan(0);
    expect(refusals.get('too_many_uploads') ?? 0).toBeGreaterThan(0);
    // Nothing else: no slow upload reached a handler or held a slot until its deadline.
    expect([...refusals.keys()].filter((code) => code !== 'upload_too_slow' && code !== 'too_many_uploads')).toEqual([]);
    await eventually(async () => (await admissionCounts(t)).inflight === 0, 'every slot to come back', 5_000);
    expect((await t.api('GET', '/readyz')).status).toBe(200);
    // Counted, so an attack shows on a dashboard.
    const samples = parsePromText((await t.api('GET', '/metrics')).body as string);
    expect(valueOf(samples, 'handover_guard_refusals_total', { code: 'upload_too_slow' })).toBeGreaterThan(0);
    expect(valueOf(samples, 'handover_guard_refusals_total', { code: 'too_many_uploads' })).toBeGreaterThan(0);
  });

  it('a refused slow upload is answered, and its connection closed so the rest is never read', async () => {
    const upload = await openRawRequest(t.url, slowJsonUpload('/v1/desk/login', 100_000));
    try {
      expect(await upload.answered(5_000)).toBe(408);
      expect(upload.code).toBe('upload_too_slow');
      expect(upload.received.toLowerCase()).toContain('connection: close');
      await eventually(async () => upload.closed, 'the connection to close', 5_000);
    } finally {
      upload.destroy();
    }
  });

  it('a body sent in pieces at a fair pace is taken, and a slot is never held while it arrives', async () => {
    const body = JSON.stringify({ id: 'fair-1', text: 'x'.repeat(600) });
    const upload = await openRawRequest(t.url, {
      method: 'POST',
      path: `/v1/handovers/${handoverId}/messages`,
      headers: { authorization: `Bearer ${desk.apiKey}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
    });
    try {
      // Three pieces 150 ms apart: about 1.3 KB/s, above the 1 KB/s minimum.
      for (let i = 0; i < 3; i++) {
        upload.write(body.slice((i * body.length) / 3, ((i + 1) * body.length) / 3));
        if (i < 2) {
          await new Promise((r) => setTimeout(r, 150));
          expect((await admissionCounts(t)).inflight).toBe(0);
        }
      }
      expect(await upload.answered(5_000)).toBe(202);
    } finally {
      upload.destroy();
    }
  });

  it('a chunked body past the size limit is refused while it arrives', async () => {
    const upload = await openRawRequest(t.url, {
      method: 'POST',
      path: '/v1/desk/login',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    });
    try {
      const chunk = 'a'.repeat(64 * 1024);
      for (let i = 0; i < 5 && upload.status === undefined; i++) upload.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      expect(await upload.answered(5_000)).toBe(413);
      expect(upload.code).toBe('body_too_large');
    } finally {
      upload.destroy();
    }
  });
});

/** One slow client: a body announced as 100,000 bytes, sent a byte a second, reopened when answered. */
async function trickle(baseUrl: string, path: string, stopAt: number, refusals: Map<string, number>): Promise<void> {
  while (Date.now() < stopAt) {
    const upload: RawRequest = await openRawRequest(baseUrl, slowJsonUpload(path, 100_000));
    const timer = setInterval(() => upload.write('a'), 1_000);
    try {
      await upload.answered(Math.max(1, stopAt - Date.now()));
      const code = upload.code ?? (upload.status === undefined ? 'closed without an answer' : `status ${upload.status}`);
      refusals.set(code, (refusals.get(code) ?? 0) + 1);
    } catch {
      // Still trickling when the attack ends.
    } finally {
      clearInterval(timer);
      upload.destroy();
    }
  }
}
