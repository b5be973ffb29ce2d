import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestHandover } from '../../src/handover/request-handover.js';
import { postAgentMessage, postUserMessage } from '../../src/handover/messages.js';
import { acceptHandover, endHandover, transferHandover } from '../../src/handover/lifecycle.js';
import { readEvents } from '../../src/handover/events.js';
import { getHandover } from '../../src/handover/queries.js';
import { codeOf, domainWorld, type DomainWorld } from '../support/domain.js';

/**
 * The handover's use cases called directly, on the embedded database: what each one decides and the
 * rows and signals it leaves, without HTTP, workers or timers in between. The end-to-end suites check
 * the same through the API; these say precisely which rule broke.
 */
describe('handover use cases', () => {
  let w: DomainWorld;
  let tenantId: string;
  beforeEach(async () => {
    w = await domainWorld();
    tenantId = await w.tenant();
  });
  afterEach(async () => {
    await w.close();
  });

  const user = { id: 'u-1', name: 'Ada' };
  const request = (conversationId = 'c-1', queue = 'support') => requestHandover(w.deps, { tenantId, conversationId, queue, user });
  const eventTypes = async (handoverId: string) => (await readEvents(w.db, { tenantId, afterPos: 0, handoverId, limit: 100 })).map((e) => e.type);

  describe('requestHandover', () => {
    it('refuses a desk queue nobody serves now, and records nothing', async () => {
      await w.queue({ tenantId });
      expect(await codeOf(request())).toBe('no_agents_available');
      const { rows } = await w.db.query('select 1 from handovers');
      expect(rows).toHaveLength(0);
    });

    it('refuses a queue closed today, whoever is online', async () => {
      const today = new Date().toISOString().slice(0, 10);
      await w.queue({ tenantId, closedDates: [today] });
      await w.agentOnline(tenantId);
      expect(await codeOf(request())).toBe('queue_closed');
    });

    it('queues the user when an agent serves the queue, first in line, and tells the bot', async () => {
      await w.queue({ tenantId });
      await w.agentOnline(tenantId);
      const result = await request();
      expect(result).toMatchObject({ outcome: 'created', position: 1, handover: { state: 'queued', conversationId: 'c-1' } });
      expect(await eventTypes(result.handover.id)).toEqual(['handover.queued']);
    });

    it("gives a conversation's second request its live handover instead of a new one", async () => {
      await w.queue({ tenantId });
      await w.agentOnline(tenantId);
      const first = await request();
      const again = await request();
      expect(again.outcome).toBe('existing');
      expect(again.handover.id).toBe(first.handover.id);
    });

    it('names an unknown queue', async () => {
      expect(await codeOf(request('c-1', 'nowhere'))).toBe('queue_not_found');
    });
  });

  describe('messages', () => {
    it('stores user messages in order, takes a repeated client id as a repeat, and refuses other tenants', async () => {
      await w.queue({ tenantId });
      await w.agentOnline(tenantId);
      const { handover } = await request();
      const one = await postUserMessage(w.deps, { tenantId, handoverId: handover.id, clientId: 'm-1', text: 'one' });
      const two = await postUserMessage(w.deps, { tenantId, handoverId: handover.id, clientId: 'm-2', text: 'two' });
      const repeat = await postUserMessage(w.deps, { tenantId, handoverId: handover.id, clientId: 'm-1', text: 'one, sent again' });
      expect(repeat).toEqual({ id: one.id, duplicate: true });
      const { rows } = await w.db.query<{ id: string; seq: number; text: string }>(
        `select id, seq, text from messages where handover_id = $1 and direction = 'to_agent' order by seq`,
        [handover.id],
      );
      expect(rows.map((r) => [r.id, r.text])).toEqual([
        [one.id, 'one'],
        [two.id, 'two'],
      ]);
      const other = await w.tenant('Otherco');
      expect(await codeOf(postUserMessage(w.deps, { tenantId: other, handoverId: handover.id, text: 'hello?' }))).toBe('handover_not_found');
    });

    it("lets only the agent holding the chat answer, and signals the tenant's desks", async () => {
      await w.queue({ tenantId });
      const holder = await w.agentOnline(tenantId);
      const other = await w.agentOnline(tenantId);
      const { handover } = await request();
      const post = (agent: typeof holder) =>
        postAgentMessage(w.deps, { tenantId, handoverId: handover.id, text: 'Hello', agent: { id: agent.id, name: agent.name }, source: 'desk' });
      expect(await codeOf(post(holder))).toBe('handover_not_active');
      await acceptHandover(w.deps, { agent: holder, handoverId: handover.id });
      expect(await codeOf(post(other))).toBe('handover_not_yours');
      const sent = await post(holder);
      expect(sent.duplicate).toBe(false);
      expect(await eventTypes(handover.id)).toEqual(['handover.queued', 'handover.accepted', 'message.created']);
      expect(w.signals.filter((s) => s.channel === `desk:${tenantId}`).map((s) => (s.message as { type: string }).type)).toEqual(
        expect.arrayContaining(['handover.accepted', 'message.created']),
      );
    });
  });

  describe('an agent takes, moves and ends chats', () => {
    it('gives a waiting chat to one agent only, and holds an agent to their chat limit', async () => {
      await w.queue({ tenantId });
      const first = await w.agentOnline(tenantId, { maxChats: 1 });
      const second = await w.agentOnline(tenantId);
      const a = await request('c-a');
      const b = await request('c-b');
      expect(await acceptHandover(w.deps, { agent: first, handoverId: a.handover.id })).toMatchObject({ state: 'active', agentId: first.id });
      // Taking it again is a no-op for its holder, a conflict for anyone else.
      expect((await acceptHandover(w.deps, { agent: first, handoverId: a.handover.id })).agentId).toBe(first.id);
      expect(await codeOf(acceptHandover(w.deps, { agent: second, handoverId: a.handover.id }))).toBe('handover_not_waiting');
      expect(await codeOf(acceptHandover(w.deps, { agent: first, handoverId: b.handover.id }))).toBe('agent_at_capacity');
      // The second in line moved up when the first was taken.
      expect((await getHandover(w.db, tenantId, b.handover.id)).position).toBe(1);
    });

    it('sends a chat to another queue with a note for whoever takes it next', async () => {
      await w.queue({ tenantId });
      await w.queue({ tenantId, name: 'billing' });
      const agent = await w.agentOnline(tenantId);
      const { handover } = await request();
      await acceptHandover(w.deps, { agent, handoverId: handover.id });
      const moved = await transferHandover(w.deps, { agent, handoverId: handover.id, queue: 'billing', note: 'Asked about an invoice' });
      expect(moved).toMatchObject({ state: 'queued', agentId: null });
      const { rows } = await w.db.query<{ kind: string; queue_name: string; text: string }>(
        'select kind, queue_name, text from handover_notes where handover_id = $1',
        [handover.id],
      );
      expect(rows).toEqual([{ kind: 'transfer', queue_name: 'billing', text: 'Asked about an invoice' }]);
    });

    it('ends a chat once: the bot is told, a second end changes nothing, and no message is taken after', async () => {
      await w.queue({ tenantId });
      const agent = await w.agentOnline(tenantId);
      const other = await w.agentOnline(tenantId);
      const { handover } = await request();
      await acceptHandover(w.deps, { agent, handoverId: handover.id });
      expect(await codeOf(endHandover(w.deps, { tenantId, handoverId: handover.id, reason: 'agent_ended', by: 'desk', agent: other }))).toBe(
        'handover_not_yours',
      );
      const ended = await endHandover(w.deps, { tenantId, handoverId: handover.id, reason: 'agent_ended', by: 'desk', agent });
      expect(ended).toMatchObject({ state: 'ended', endReason: 'agent_ended' });
      const again = await endHandover(w.deps, { tenantId, handoverId: handover.id, reason: 'bot_ended', by: 'bot' });
      expect(again.endReason).toBe('agent_ended');
      expect((await eventTypes(handover.id)).filter((t) => t === 'handover.ended')).toHaveLength(1);
      expect(await codeOf(postUserMessage(w.deps, { tenantId, handoverId: handover.id, text: 'still there?' }))).toBe('handover_ended');
    });

    it("lets a supervisor end any desk chat of the tenant, and no other tenant's", async () => {
      await w.queue({ tenantId });
      const agent = await w.agentOnline(tenantId);
      const supervisor = await w.agentOnline(tenantId, { role: 'supervisor' });
      const { handover } = await request();
      await acceptHandover(w.deps, { agent, handoverId: handover.id });
      const otherTenant = await w.tenant('Otherco');
      expect(await codeOf(endHandover(w.deps, { tenantId: otherTenant, handoverId: handover.id, reason: 'agent_ended', by: 'desk', agent: supervisor }))).toBe(
        'handover_not_found',
      );
      expect(await endHandover(w.deps, { tenantId, handoverId: handover.id, reason: 'agent_ended', by: 'desk', agent: supervisor })).toMatchObject({
        state: 'ended',
      });
    });
  });
});
