/**
 * The shared connector contract: the same cases, run for every connector against its fake server.
 *
 * To run it for a connector, write a `ContractDriver` and call `runConnectorContract(driver)` from a
 * `<type>.contract.test.ts` file. The suite runs on both stores (one describe per connector and store;
 * CONTRACT_STORES=pg or =pglite picks one), with fast retries, and plays the bot itself (a signed
 * webhook receiver).
 *
 * The driver interface:
 * - `name`: shown in the test names.
 * - `capabilities`: what the connector supports. `userTyping: false` — the suite checks that user
 *   typing is accepted from the bot, reaches nothing and harms nothing. `agentTyping` / `transfer` /
 *   `explicitJoin: false` — those cases check only that the system has no such signal (skipped cleanly).
 * - `capabilities.pull`: the system pushes nothing to us; we read its event stream (Salesforce). The
 *   agent's actions then answer no HTTP status of ours (the driver answers 200 once the event is on
 *   the stream), a repeat is an event id sent again on the stream, and "forged" means a request to the
 *   connector's inbound URL, which takes nothing from anyone.
 * - `start()`: starts the fake system (a local HTTP server speaking the vendor's wire format) and
 *   returns a `DriverSystem`:
 *   - `type`, `config`: the connector type and its config, pointing at the fake;
 *   - `secrets`: credential values in `config` that must never be stored or answered in clear;
 *   - `connected({ id, inboundUrl })`: told once the connector exists (where the fake sends events);
 *   - `received(handoverId)`: what the system got from us for that handover, normalised to
 *     `ReceivedByHelpdesk` items, in arrival order, each logical item once (de-duplicated the way the
 *     vendor would, e.g. by message id);
 *   - `agent`: act as the helpdesk's agent on the handover's conversation: `join`, `send` (with an
 *     id the system would give the message), `typing`, `transfer`, `end`; `resendLast()` repeats the
 *     last delivery to our inbound URL exactly as the vendor retries it; `forge(handoverId)` sends an
 *     event for the handover with a wrong signature or key. Each returns our HTTP answer.
 *   - `problems()`: requests the fake refused as malformed (wrong auth, shape, sizes), to be empty;
 *   - `setDown(down)`: while true every call to the fake fails with a 5xx;
 *   - `setAgentsOnline(n)` (only where the connector has the availability capability): how many agents
 *     the fake reports as available from now on;
 *   - `close()`.
 *   A driver may assume one handover per system instance at a time, except where noted.
 * - `capabilities.manyHandovers`: the fake tells several handovers apart at the same time; the suite then
 *   also checks that the messages of several handovers sent at once each arrive in their own order (what
 *   a connector that coalesces calls, like the generic webhook's batch mode, must keep).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { firstArrivals, messageTexts, numbered } from '../support/receivers.js';
import { deliveriesSettled, sharedServices } from '../support/shared-services.js';
import { eventually, type TestService } from '../support/test-service.js';
import { dumpSchema } from '../support/dump-schema.js';
import { dbKinds, type DbKind } from '../support/test-db.js';

export type ReceivedByHelpdesk =
  | { kind: 'handover.requested'; userId?: string; queue?: string; transcript: Array<{ role: string; text: string }>; metadata: Record<string, unknown> }
  | { kind: 'message'; text: string }
  | { kind: 'typing'; typing: boolean }
  | { kind: 'ended' };

export interface InboundAnswer {
  status: number;
  body: any;
}

export interface DriverAgent {
  join(handoverId: string, agent: { id: string; name: string }): Promise<InboundAnswer>;
  send(handoverId: string, message: { id: string; text: string }): Promise<InboundAnswer>;
  typing(handoverId: string, typing: boolean): Promise<InboundAnswer>;
  transfer(handoverId: string, to: string): Promise<InboundAnswer>;
  end(handoverId: string): Promise<InboundAnswer>;
  resendLast(): Promise<InboundAnswer>;
  forge(handoverId: string): Promise<InboundAnswer>;
}

export interface DriverSystem {
  type: string;
  config: Record<string, unknown>;
  secrets: string[];
  connected(connector: { id: string; inboundUrl: string }): void;
  received(handoverId: string): ReceivedByHelpdesk[];
  agent: DriverAgent;
  setDown(down: boolean): void;
  /** Calls the fake refused (4xx) that a correct connector would never make; checked after the relay case. */
  problems(): string[];
  /** Only for systems that report agent availability: what the fake answers from now on. */
  setAgentsOnline?(agentsOnline: number): void;
  close(): Promise<void>;
}

export interface ContractDriver {
  name: string;
  capabilities: { userTyping: boolean; agentTyping: boolean; transfer: boolean; explicitJoin: boolean; pull?: boolean; manyHandovers?: boolean };
  start(): Promise<DriverSystem>;
}

const MESSAGES_EACH_WAY = 30;

interface Harness {
  t: TestService;
  bot: SignedWebhookServer;
  system: DriverSystem;
  apiKey: string;
  /** Bot events of one handover, first arrivals in order. */
  botEvents(handoverId: string, type?: string): Array<Record<string, any>>;
  start(conversationId: string, extra?: Record<string, unknown>): Promise<string>;
  waitForHelpdesk(handoverId: string, what: string, predicate: (r: ReceivedByHelpdesk[]) => boolean): Promise<ReceivedByHelpdesk[]>;
  waitForBot(handoverId: string, type: string): Promise<Record<string, any>>;
  /** The system has the handover and we have recorded its conversation id: an agent may act. */
  started(handoverId: string): Promise<ReceivedByHelpdesk[]>;
}

/** The stores the suite runs on: both, unless CONTRACT_STORES names one. */
function contractStores(): DbKind[] {
  const chosen = (process.env.CONTRACT_STORES ?? 'pg,pglite').split(',').map((s) => s.trim());
  return dbKinds.filter((kind) => chosen.includes(kind));
}

/**
 * `stores` narrows the stores for a second run of a connector whose other run already covers both
 * (the generic webhook's batch mode: the wire differs, the store under it does not).
 */
export function runConnectorContract(driver: ContractDriver, options: { stores?: DbKind[] } = {}): void {
  for (const kind of contractStores()) if (!options.stores || options.stores.includes(kind)) contractOn(driver, kind);
}

/**
 * Settings of the cases that take a failure path: few delivery attempts (a system that is down fails the
 * handover soon) and availability fetched often and dropped soon. The other cases run on the defaults.
 */
const failurePathSettings = { 'delivery.maxAttempts': 3, 'connectors.availabilityRefreshMs': 100, 'connectors.availabilityMaxAgeMs': 3000 };

function contractOn(driver: ContractDriver, kind: DbKind): void {
  describe(`connector contract: ${driver.name} (${kind})`, () => {
    // One service per connector and store (starting one is most of a case's time); each case has a
    // tenant, a fake system and a bot receiver of its own, so no case sees another's handovers,
    // connector or deliveries. The failure-path cases share a second service with their own settings.
    const service = sharedServices(kind);
    const serviceFor = (settings: 'default' | 'failure path'): Promise<TestService> => service(settings === 'default' ? {} : failurePathSettings);
    /** What a case set up, for its clean-up (a case may fail halfway through its set-up). */
    let parts: { t: TestService; bot: SignedWebhookServer; system: DriverSystem; handoverIds: string[]; tenant?: { id: string; apiKey: string } } | undefined;
    beforeAll(async () => {
      await serviceFor('default');
    });
    afterEach(async () => {
      const done = parts;
      parts = undefined;
      if (!done) return;
      try {
        if (done.tenant) await closeCase(done.t, done.tenant, done.handoverIds);
      } finally {
        await done.bot.close();
        await done.system.close();
      }
    });

    /**
     * Ends the case's handovers still open and waits until nothing of its tenant is left to deliver:
     * the next case starts on a service with no work of this one in flight (no delivery or event stream
     * towards a fake that is about to close).
     */
    async function closeCase(t: TestService, tenant: { id: string; apiKey: string }, handoverIds: string[]): Promise<void> {
      for (const handoverId of handoverIds) {
        const state = await t.api('GET', `/v1/handovers/${handoverId}`, { token: tenant.apiKey });
        if (state.status === 200 && state.body.state !== 'ended') {
          const ended = await t.api('POST', `/v1/handovers/${handoverId}/end`, { token: tenant.apiKey, body: { reason: 'bot_ended' } });
          expect(ended.status, JSON.stringify(ended.body)).toBe(200);
        }
      }
      await deliveriesSettled(t, tenant.id);
    }

    async function setUp(settings: 'default' | 'failure path' = 'default'): Promise<Harness> {
      const t = await serviceFor(settings);
      let botSecret = '';
      const bot = await startSignedWebhookServer(() => botSecret);
      const system = await driver.start().catch(async (err: unknown) => {
        await bot.close();
        throw err;
      });
      const handoverIds: string[] = [];
      parts = { t, bot, system, handoverIds };
      const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Contract', webhookUrl: bot.url });
      expect(tenant.status).toBe(201);
      botSecret = tenant.body.webhookSecret;
      parts.tenant = { id: tenant.body.id, apiKey: tenant.body.apiKey };
      const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type: system.type, name: 'helpdesk', config: system.config });
      expect(connector.status, JSON.stringify(connector.body)).toBe(201);
      for (const secret of system.secrets) expect(JSON.stringify(connector.body)).not.toContain(secret);
      system.connected({ id: connector.body.id, inboundUrl: connector.body.inboundUrl });
      const queue = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'helpdesk', connectorId: connector.body.id });
      expect(queue.status).toBe(201);
      const apiKey: string = tenant.body.apiKey;
      const harness: Harness = {
        t,
        bot,
        system,
        apiKey,
        botEvents: (handoverId, type) =>
          firstArrivals(bot.received.map((r) => r.body)).filter((b) => b.handoverId === handoverId && (type === undefined || b.type === type)),
        async start(conversationId, extra = {}) {
          const created = await t.api('POST', '/v1/handovers', {
            token: apiKey,
            body: { conversationId, queue: 'helpdesk', user: { id: `user-${conversationId}`, name: 'Uma User', email: 'uma@example.com' }, ...extra },
          });
          expect(created.status, JSON.stringify(created.body)).toBe(201);
          handoverIds.push(created.body.id);
          return created.body.id as string;
        },
        async waitForHelpdesk(handoverId, what, predicate) {
          return eventually(async () => {
            const got = system.received(handoverId);
            return predicate(got) ? got : null;
          }, `${what} at the helpdesk`);
        },
        async started(handoverId) {
          await harness.waitForHelpdesk(handoverId, 'handover.requested', requested);
          await eventually(async () => {
            // Delivered: deleted (at its first attempt) or marked done (after failed ones).
            const { rows } = await t.db.query<{ state: string }>(
              `select state from outbox where handover_id = $1 and kind = 'handover.requested' and target = 'agent'`,
              [handoverId],
            );
            return rows.every((r) => r.state === 'done');
          }, 'handover.requested recorded as delivered');
          // Read again now the start is done: a system may take it in several calls (Salesforce: the
          // conversation, then the transcript as its first message).
          return system.received(handoverId);
        },
        async waitForBot(handoverId, type) {
          return eventually(async () => harness.botEvents(handoverId, type)[0], `${type} at the bot`);
        },
      };
      return harness;
    }

    const requested = (r: ReceivedByHelpdesk[]) => r.some((x) => x.kind === 'handover.requested');
    const texts = (r: ReceivedByHelpdesk[]) => r.flatMap((x) => (x.kind === 'message' ? [x.text] : []));

    it('start: the handover reaches the system with the transcript and metadata', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-start', {
        transcript: [
          { role: 'user', text: 'my order never came' },
          { role: 'bot', text: 'let me get a person' },
        ],
        metadata: { plan: 'gold', orderId: 'A-17' },
      });
      const got = await s.started(handoverId);
      const start = got.find((x) => x.kind === 'handover.requested')!;
      expect(start.transcript.map((e) => e.text)).toEqual(['my order never came', 'let me get a person']);
      expect(start.metadata).toMatchObject({ plan: 'gold', orderId: 'A-17' });
      const state = await s.t.api('GET', `/v1/handovers/${handoverId}`, { token: s.apiKey });
      expect(state.body.state).toBe('queued');
      // No credential sits in clear anywhere in the database.
      const dump = await dumpSchema(s.t.db);
      expect(dump).toContain(handoverId);
      for (const secret of s.system.secrets) expect(dump).not.toContain(secret);
    });

    it(`messages both ways, ${MESSAGES_EACH_WAY} each, concurrently, arrive in order`, async () => {
      const s = await setUp();
      const handoverId = await s.start('c-relay');
      await s.started(handoverId);
      const userSide = (async () => {
        for (let i = 0; i < MESSAGES_EACH_WAY; i++) {
          const res = await s.t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: s.apiKey, body: { id: `u-${i}`, text: `user ${i}` } });
          expect(res.status).toBe(202);
        }
      })();
      const agentSide = (async () => {
        for (let i = 0; i < MESSAGES_EACH_WAY; i++) {
          const res = await s.system.agent.send(handoverId, { id: `agent-msg-${i}`, text: `agent ${i}` });
          expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
        }
      })();
      await Promise.all([userSide, agentSide]);
      await s.waitForHelpdesk(handoverId, 'user messages', (r) => texts(r).length >= MESSAGES_EACH_WAY);
      expect(texts(s.system.received(handoverId))).toEqual(numbered('user', MESSAGES_EACH_WAY));
      await eventually(async () => messageTexts(s.botEvents(handoverId)).length >= MESSAGES_EACH_WAY, 'agent messages at the bot');
      expect(messageTexts(s.botEvents(handoverId))).toEqual(numbered('agent', MESSAGES_EACH_WAY));
      // The agent's messages are never echoed back to the system.
      expect(texts(s.system.received(handoverId)).some((text) => text.startsWith('agent'))).toBe(false);
      expect(s.system.problems()).toEqual([]);
    });

    it("several handovers at once: each one's messages arrive in its own order", async () => {
      if (!driver.capabilities.manyHandovers) return expect(driver.capabilities.manyHandovers).toBeFalsy();
      const s = await setUp();
      const handoverIds = await Promise.all(['c-many-0', 'c-many-1', 'c-many-2', 'c-many-3'].map((c) => s.start(c)));
      await Promise.all(handoverIds.map((id) => s.started(id)));
      const each = 10;
      // All handovers' messages interleaved, each handover's in order.
      await Promise.all(
        handoverIds.map(async (handoverId, h) => {
          for (let i = 0; i < each; i++) {
            const res = await s.t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: s.apiKey, body: { id: `m-${i}`, text: `h${h} ${i}` } });
            expect(res.status).toBe(202);
          }
        }),
      );
      for (const [h, handoverId] of handoverIds.entries()) {
        await s.waitForHelpdesk(handoverId, `handover ${h}'s messages`, (r) => texts(r).length >= each);
        expect(texts(s.system.received(handoverId))).toEqual(numbered(`h${h}`, each));
      }
      expect(s.system.problems()).toEqual([]);
    });

    it('typing: relayed where the system supports it, refused by nothing where it does not', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-typing');
      await s.started(handoverId);
      await s.system.agent.join(handoverId, { id: 'agent-1', name: 'Ada' });
      const typing = await s.t.api('POST', `/v1/handovers/${handoverId}/typing`, { token: s.apiKey, body: { typing: true } });
      expect(typing.status).toBe(202);
      // A message after the typing signal: once it has arrived, the typing signal has been dealt with.
      await s.t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: s.apiKey, body: { id: 'after-typing', text: 'after typing' } });
      const got = await s.waitForHelpdesk(handoverId, 'the message after typing', (r) => texts(r).includes('after typing'));
      if (driver.capabilities.userTyping) expect(got.filter((x) => x.kind === 'typing')).toEqual([{ kind: 'typing', typing: true }]);
      else expect(got.some((x) => x.kind === 'typing')).toBe(false);
      if (driver.capabilities.agentTyping) {
        expect((await s.system.agent.typing(handoverId, true)).status).toBeLessThan(300);
        expect((await s.waitForBot(handoverId, 'agent.typing')).data).toEqual({ typing: true });
      }
      const state = await s.t.api('GET', `/v1/handovers/${handoverId}`, { token: s.apiKey });
      expect(state.body.state).toBe('active');
    });

    it('agent joined: the bot is told who took the chat', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-join');
      await s.started(handoverId);
      const joined = await s.system.agent.join(handoverId, { id: 'agent-7', name: 'Hal' });
      expect(joined.status).toBeLessThan(300);
      const accepted = await s.waitForBot(handoverId, 'handover.accepted');
      if (driver.capabilities.explicitJoin) expect(accepted.data.agent).toMatchObject({ name: 'Hal' });
      else expect(accepted.data.agent).toBeDefined();
      const state = await s.t.api('GET', `/v1/handovers/${handoverId}`, { token: s.apiKey });
      expect(state.body.state).toBe('active');
    });

    it('transfer: the bot hears of it where the system supports it', async () => {
      if (!driver.capabilities.transfer) return expect(driver.capabilities.transfer).toBe(false);
      const s = await setUp();
      const handoverId = await s.start('c-transfer');
      await s.started(handoverId);
      await s.system.agent.join(handoverId, { id: 'agent-1', name: 'Ada' });
      expect((await s.system.agent.transfer(handoverId, 'billing')).status).toBeLessThan(300);
      const transferred = await s.waitForBot(handoverId, 'handover.transferred');
      expect(JSON.stringify(transferred.data)).toContain('billing');
    });

    it('agent ends: the bot gets handover.ended and takes over again', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-agent-ends');
      await s.started(handoverId);
      await s.system.agent.join(handoverId, { id: 'agent-1', name: 'Ada' });
      await s.system.agent.send(handoverId, { id: 'bye', text: 'glad I could help' });
      expect((await s.system.agent.end(handoverId)).status).toBeLessThan(300);
      const ended = await s.waitForBot(handoverId, 'handover.ended');
      expect(ended.data.reason).toBe('agent_ended');
      const state = await s.t.api('GET', `/v1/handovers/${handoverId}`, { token: s.apiKey });
      expect(state.body.state).toBe('ended');
      // The bot has the conversation back: a new handover for the same conversation may start.
      const again = await s.start('c-agent-ends');
      expect(again).not.toBe(handoverId);
      // What the system sent us is never sent back, and the end it told us is not echoed.
      expect(s.system.received(handoverId).some((x) => x.kind === 'ended')).toBe(false);
    });

    it('user ends: the system is told', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-user-ends');
      await s.started(handoverId);
      await s.system.agent.join(handoverId, { id: 'agent-1', name: 'Ada' });
      const end = await s.t.api('POST', `/v1/handovers/${handoverId}/end`, { token: s.apiKey, body: { reason: 'user_ended' } });
      expect(end.status).toBe(200);
      await s.waitForHelpdesk(handoverId, 'the end', (r) => r.some((x) => x.kind === 'ended'));
    });

    it('helpdesk down: retries, then the handover fails with a reason the bot is told', async () => {
      const s = await setUp('failure path');
      s.system.setDown(true);
      const handoverId = await s.start('c-down');
      const ended = await s.waitForBot(handoverId, 'handover.ended');
      expect(ended.data.reason).toBe('failed');
      expect(String(ended.data.detail)).toMatch(/\d{3}|failed|answered/);
      const { rows } = await s.t.db.query<{ n: number }>(
        `select count(*)::int as n from delivery_attempts a join outbox o on o.id = a.outbox_id where o.handover_id = $1 and o.target = 'agent'`,
        [handoverId],
      );
      expect(rows[0]!.n).toBeGreaterThanOrEqual(3);
    });

    it('a repeated inbound delivery is applied once', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-dup');
      await s.started(handoverId);
      expect((await s.system.agent.send(handoverId, { id: 'once', text: 'only once' })).status).toBeLessThan(300);
      const again = await s.system.agent.resendLast();
      expect(again.status).toBeLessThan(300);
      if (!driver.capabilities.pull) expect(again.body).toMatchObject({ ok: true, duplicate: true });
      expect((await s.system.agent.send(handoverId, { id: 'later', text: 'later' })).status).toBeLessThan(300);
      await eventually(async () => messageTexts(s.botEvents(handoverId)).includes('later'), 'the later message at the bot');
      expect(messageTexts(s.botEvents(handoverId))).toEqual(['only once', 'later']);
    });

    it('availability: the system saying nobody is there makes the queue unavailable; a stale answer is dropped', async () => {
      const s = await setUp('failure path');
      if (!s.system.setAgentsOnline) return expect(s.system.setAgentsOnline).toBeUndefined();
      const setAgentsOnline = s.system.setAgentsOnline.bind(s.system);
      const ask = () => s.t.api('GET', '/v1/availability?queue=helpdesk', { token: s.apiKey });
      setAgentsOnline(0);
      const unavailable = await eventually(async () => {
        const res = await ask();
        return res.body.reason === 'no_agents' ? res : null;
      }, 'no_agents from the system');
      expect(unavailable.body).toMatchObject({ available: false, agentsOnline: 0 });
      const refused = await s.t.api('POST', '/v1/handovers', { token: s.apiKey, body: { conversationId: 'c-nobody', queue: 'helpdesk', user: { id: 'u' } } });
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('no_agents_available');
      setAgentsOnline(2);
      await eventually(async () => (await ask()).body.agentsOnline === 2, 'two agents from the system');
      // A system that stops answering is taken at its word once its last answer is too old.
      s.system.setDown(true);
      await eventually(async () => {
        const res = await ask();
        return res.body.available === true && res.body.agentsOnline === null;
      }, 'the stale answer to be dropped');
    });

    it('a forged inbound event is refused with a stable code', async () => {
      const s = await setUp();
      const handoverId = await s.start('c-forged');
      await s.started(handoverId);
      const forged = await s.system.agent.forge(handoverId);
      if (driver.capabilities.pull) {
        // Nothing may come in by that door: the system's events are read from its own stream.
        expect(forged.status).toBe(404);
        expect(forged.body.error.code).toBe('connector_not_found');
      } else {
        expect([401, 403]).toContain(forged.status);
        expect(forged.body.error.code).toBe('invalid_signature');
      }
      const state = await s.t.api('GET', `/v1/handovers/${handoverId}`, { token: s.apiKey });
      expect(state.body.state).toBe('queued');
      expect(s.botEvents(handoverId, 'message.created')).toEqual([]);
    });
  });
}
