import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Satisfaction ratings over the bot API: recorded once for an ended handover (a repeat of the same is
 * answered as the first, a different one is refused with a stable code), refused for a live one and out
 * of range, shown in the desk's history and closed chat, and counted per tenant in the metrics.
 */
describe.each<DbKind>(dbKinds)('satisfaction ratings (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;

  beforeAll(async () => {
    t = await startTestService(kind);
    desk = await setUpDesk(t);
  });

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  });

  const rate = (id: string, body: unknown, token = desk.apiKey) => t.api('POST', `/v1/handovers/${id}/rating`, { token, body });

  it('records one rating per ended handover, shows it on the desk and counts it', async () => {
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: 'c-rate', queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken })).status).toBe(200);

    const live = await rate(id, { score: 5 });
    expect(live.status).toBe(409);
    expect(live.body.error.code).toBe('handover_not_ended');

    expect((await t.api('POST', `/v1/desk/handovers/${id}/end`, { token: desk.agentToken, body: { reason: 'agent_ended' } })).status).toBe(200);
    for (const score of [0, 6, 4.5, '5', null]) {
      const bad = await rate(id, { score });
      expect(bad.status, `score ${String(score)}`).toBe(400);
      expect(bad.body.error.code).toBe('invalid_request');
    }
    expect((await rate(id, { score: 4, comment: 'x'.repeat(2001) })).body.error.code).toBe('invalid_request');
    expect((await rate(id, { score: 4, extra: true })).body.error.code).toBe('invalid_request');

    const first = await rate(id, { score: 4, comment: '  Quick and friendly ' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ handoverId: id, score: 4, comment: 'Quick and friendly' });
    // A retry after a lost answer: the same rating is answered as recorded, nothing changes.
    const again = await rate(id, { score: 4, comment: 'Quick and friendly' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    for (const other of [{ score: 2, comment: 'Quick and friendly' }, { score: 4 }, { score: 4, comment: 'Changed my mind' }]) {
      const conflict = await rate(id, other);
      expect(conflict.status).toBe(409);
      expect(conflict.body.error).toMatchObject({ code: 'rating_conflict', details: { score: 4, comment: 'Quick and friendly' } });
    }

    // Another tenant's bot cannot rate it; an unknown id is unknown.
    const other = await setUpDesk(t, { console: false });
    expect((await rate(id, { score: 1 }, other.apiKey)).body.error.code).toBe('handover_not_found');
    expect((await rate('ho_unknown', { score: 1 })).status).toBe(404);

    // The desk shows it: in history, and in the chat opened on its own.
    const history = await t.api('GET', '/v1/desk/history?scope=mine', { token: desk.agentToken });
    expect(history.status).toBe(200);
    expect(history.body.handovers.find((h: { id: string }) => h.id === id).rating).toEqual({ score: 4, comment: 'Quick and friendly' });
    const detail = await t.api('GET', `/v1/desk/handovers/${id}`, { token: desk.agentToken });
    expect(detail.body.rating).toEqual({ score: 4, comment: 'Quick and friendly' });
    await desk.console!.waitFor(
      (events) => events.some((e) => e.event === 'handover.rated' && e.data.handoverId === id),
      10_000,
      'the rating signal on the desk stream',
    );

    // Metrics: one observation of 4 for this tenant, none for the other.
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    const line = (name: string, tenant: string) =>
      metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`tenant_id="${tenant}"`) && (!name.endsWith('_bucket') || l.includes('le="4"')));
    expect(line('handover_csat_score_count', desk.tenantId)).toMatch(/ 1$/);
    expect(line('handover_csat_score_sum', desk.tenantId)).toMatch(/ 4$/);
    expect(line('handover_csat_score_bucket', desk.tenantId)).toMatch(/ 1$/);
    expect(line('handover_csat_score_count', other.tenantId)).toBeUndefined();

    // The user's data: the rating is in their export, and goes with their erasure.
    const exported = await t.api('GET', '/v1/users/u-1/export', { token: desk.apiKey });
    expect(exported.body.handovers.find((h: { id: string }) => h.id === id).rating).toMatchObject({ score: 4, comment: 'Quick and friendly' });
    expect((await t.api('DELETE', '/v1/users/u-1', { token: desk.apiKey })).status).toBe(200);
    expect((await t.db.query<{ n: number }>('select count(*)::int as n from handover_ratings where handover_id = $1', [id])).rows[0]!.n).toBe(0);
  });
});
