import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dbKinds, type DbKind } from '../support/test-db.js';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';

/**
 * Internal notes over the desk API: written on a chat by agents who can read it, listed oldest first,
 * carried by a transfer for the next agent, and never sent anywhere else — no bot event, no outbox row.
 */
const PASSWORD = 'correct horse battery';

describe.each<DbKind>(dbKinds)('internal notes (%s)', (kind) => {
  let t: TestService;
  let desk: DeskSetup;
  let other: DeskSetup;
  let billingAgent: string;

  beforeAll(async () => {
    t = await startTestService(kind);
    desk = await setUpDesk(t);
    other = await setUpDesk(t, { console: false });
    expect((await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'billing' })).status).toBe(201);
    const email = `billing-${Math.random().toString(36).slice(2)}@example.com`;
    expect(
      (await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/agents`, { email, name: 'Bea Billing', password: PASSWORD, queues: ['billing'] })).status,
    ).toBe(201);
    billingAgent = (await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).body.token;
    expect((await t.api('PUT', '/v1/desk/presence', { token: billingAgent, body: { presence: 'available' } })).status).toBe(200);
  });

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
  });

  const notes = (token: string, id: string) => t.api('GET', `/v1/desk/handovers/${id}/notes`, { token });
  const addNote = (token: string, id: string, body: unknown) => t.api('POST', `/v1/desk/handovers/${id}/notes`, { token, body });

  it('keeps notes to the desk: listed in order, never in a bot event or the outbox', async () => {
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: 'c-notes', queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    expect(created.status).toBe(201);
    const id: string = created.body.id;
    // Readable while it waits (it is in the agent's queue), and once held.
    expect((await addNote(desk.agentToken, id, { text: 'VIP customer, second contact today' })).status).toBe(201);
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const second = await addNote(desk.agentToken, id, { text: 'Secret: refund approved by Bob' });
    expect(second.status).toBe(201);
    expect(second.body).toMatchObject({ handoverId: id, kind: 'note', queue: null, agent: { name: 'Ada Agent' }, text: 'Secret: refund approved by Bob' });
    await desk.console!.waitFor(
      (events) => events.some((e) => e.event === 'note.created' && e.data.noteId === second.body.id),
      10_000,
      'the note signal on the desk stream',
    );

    const listed = await notes(desk.agentToken, id);
    expect(listed.status).toBe(200);
    expect(listed.body.notes.map((n: { text: string }) => n.text)).toEqual(['VIP customer, second contact today', 'Secret: refund approved by Bob']);

    // Nothing of it left the desk: no bot event, no work for any connector, not among the messages.
    const leaked = await t.db.query<{ n: number }>(
      `select (select count(*) from events where data::text like '%Secret%')::int + (select count(*) from outbox where payload::text like '%Secret%')::int
            + (select count(*) from messages where text like '%Secret%')::int as n`,
    );
    expect(leaked.rows[0]!.n).toBe(0);
    expect((await t.api('GET', `/v1/desk/handovers/${id}/messages`, { token: desk.agentToken })).body.messages).toEqual([]);

    // Another tenant, or an agent of other queues, cannot read or write them.
    for (const token of [other.agentToken, billingAgent]) {
      expect((await notes(token, id)).body.error.code).toBe('handover_not_found');
      expect((await addNote(token, id, { text: 'x' })).status).toBe(404);
    }
    for (const body of [{ text: '' }, { text: 'x'.repeat(5001) }, { text: 'x', kind: 'transfer' }, {}]) {
      const res = await addNote(desk.agentToken, id, body);
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(res.body.error.code).toBe('invalid_request');
    }
    expect((await notes(desk.agentToken, 'ho_nothing')).status).toBe(404);

    // An ended chat keeps its notes, and takes more (a follow-up written after the end).
    expect((await t.api('POST', `/v1/desk/handovers/${id}/end`, { token: desk.agentToken, body: {} })).status).toBe(200);
    expect((await addNote(desk.agentToken, id, { text: 'Called back after the chat' })).status).toBe(201);
    expect((await notes(desk.agentToken, id)).body.notes).toHaveLength(3);
  });

  it('carries a note with a transfer to the agent who takes the chat next', async () => {
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: 'c-transfer', queue: 'support', user: { id: 'u-2', name: 'Ulf' } },
    });
    const id: string = created.body.id;
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: desk.agentToken })).status).toBe(200);
    const tooLong = await t.api('POST', `/v1/desk/handovers/${id}/transfer`, { token: desk.agentToken, body: { queue: 'billing', note: 'x'.repeat(5001) } });
    expect(tooLong.status).toBe(400);
    const moved = await t.api('POST', `/v1/desk/handovers/${id}/transfer`, {
      token: desk.agentToken,
      body: { queue: 'billing', note: 'Charged twice on A-1001' },
    });
    expect(moved.status).toBe(200);
    expect(moved.body.state).toBe('queued');

    // The billing agent sees it before and after accepting; the bot was told of the transfer only.
    expect((await t.api('POST', `/v1/desk/handovers/${id}/accept`, { token: billingAgent })).status).toBe(200);
    const listed = await notes(billingAgent, id);
    expect(listed.body.notes).toEqual([
      expect.objectContaining({ kind: 'transfer', queue: 'billing', agent: expect.objectContaining({ name: 'Ada Agent' }), text: 'Charged twice on A-1001' }),
    ]);
    const events = await t.api('GET', `/v1/handovers/${id}/events`, { token: desk.apiKey });
    expect(events.body.events.map((e: { type: string }) => e.type)).toContain('handover.transferred');
    expect(JSON.stringify(events.body)).not.toContain('Charged twice');

    // A transfer without a note (or a blank one) adds none.
    expect((await t.api('POST', `/v1/desk/handovers/${id}/transfer`, { token: billingAgent, body: { queue: 'support', note: '  ' } })).status).toBe(200);
    expect((await notes(desk.agentToken, id)).body.notes).toHaveLength(1);
  });
});
