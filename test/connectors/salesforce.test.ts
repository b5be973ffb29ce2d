import { afterEach, describe, expect, it } from 'vitest';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.js';
import { startSignedWebhookServer, type SignedWebhookServer } from '../fakes/signed-webhook-server.js';
import { firstArrivals, messageTexts, numbered } from '../support/receivers.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { ADMIN_TOKEN, eventually, startTestService, type TestService } from '../support/test-service.js';

const MESSAGES = 30;
/** Short leases so a takeover happens in test time; ticks well inside them. */
const fastStreams = { 'streams.leaseMs': 2000, 'streams.tickMs': 100 };

interface Tenant {
  apiKey: string;
  connectorId: string;
}

async function setUpSalesforce(
  t: Pick<TestService, 'api'>,
  fake: FakeSalesforce,
  bot: SignedWebhookServer,
  setBotSecret: (s: string) => void,
  extraConfig: Record<string, unknown> = {},
): Promise<Tenant> {
  const admin = (method: string, path: string, body?: unknown) => t.api(method, path, { token: ADMIN_TOKEN, body });
  const tenant = await admin('POST', '/v1/admin/tenants', { name: 'Initech', webhookUrl: bot.url });
  setBotSecret(tenant.body.webhookSecret);
  const connector = await admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
    type: 'salesforce',
    name: 'sf',
    config: {
      baseUrl: fake.url,
      orgId: fake.orgId,
      esDeveloperName: fake.esDeveloperName,
      routingAttributes: { Plan: 'metadata.plan', Email: 'user.email', Queue: 'queue' },
      ...extraConfig,
    },
  });
  expect(connector.status, JSON.stringify(connector.body)).toBe(201);
  const queue = await admin('POST', `/v1/admin/tenants/${tenant.body.id}/queues`, { name: 'sales', connectorId: connector.body.id });
  expect(queue.status).toBe(201);
  return { apiKey: tenant.body.apiKey, connectorId: connector.body.id };
}

async function startHandover(t: Pick<TestService, 'api'>, fake: FakeSalesforce, tenant: Tenant, conversationId: string, body: Record<string, unknown> = {}) {
  const before = fake.latest();
  const created = await t.api('POST', '/v1/handovers', {
    token: tenant.apiKey,
    body: { conversationId, queue: 'sales', user: { id: `u-${conversationId}`, email: 'pat@example.com' }, ...body },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const conversation = await fake.waitFor(() => fake.latest() !== before && fake.latest(), 'the conversation at Salesforce');
  await fake.waitFor(() => conversation.openStreams.size === 1, 'the event stream');
  return { handoverId: created.body.id as string, conversation };
}

/** The fake's default org id (15 characters). */
const fake15 = () => '00Dxx0000001gPL';

function botEvents(bot: SignedWebhookServer, handoverId: string, type?: string): Array<Record<string, any>> {
  return firstArrivals(bot.received.map((r) => r.body)).filter((b) => b.handoverId === handoverId && (type === undefined || b.type === type));
}

describe('Salesforce Messaging for In-App and Web connector (pg)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.reverse()) await fn();
    cleanup.length = 0;
  });

  async function world(
    options: { pingMs?: number; connectorConfig?: Record<string, unknown>; tokenTtlSeconds?: number; continuationKeepsExpiry?: boolean } = {},
  ) {
    const t = await startTestService('pg', fastStreams);
    cleanup.push(() => t.close());
    const fake = await startFakeSalesforce({
      pingMs: options.pingMs ?? 200,
      ...(options.tokenTtlSeconds ? { tokenTtlSeconds: options.tokenTtlSeconds } : {}),
      ...(options.continuationKeepsExpiry ? { continuationKeepsExpiry: true } : {}),
    });
    cleanup.push(() => fake.close());
    let botSecret = '';
    const bot = await startSignedWebhookServer(() => botSecret);
    cleanup.push(() => bot.close());
    const tenant = await setUpSalesforce(t, fake, bot, (s) => (botSecret = s), options.connectorConfig);
    return { t, fake, bot, tenant };
  }

  it('renews the token ahead of its expiry, so a conversation outlives its first token', async () => {
    const { t, fake, bot, tenant } = await world({ tokenTtlSeconds: 4 });
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-outlives');
    // Past the first token's expiry (and the second one's): the holder renewed in time, each time.
    await new Promise((r) => setTimeout(r, 6500));
    const sent = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: tenant.apiKey, body: { id: 'u-late', text: 'still there?' } });
    expect(sent.status).toBe(202);
    await fake.waitFor(() => fake.userMessages(conversation.id).includes('still there?'), 'the user message after the first token expired');
    fake.agentSays(conversation.id, 'yes');
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).includes('yes'), 10_000, 'the agent message after the first token expired');
    expect(botEvents(bot, handoverId, 'handover.ended')).toEqual([]);
    expect(fake.renewals).toBeGreaterThanOrEqual(2);
    expect(fake.refused.filter((r) => r.status === 401)).toEqual([]);
  });

  it('does not renew again and again a token whose renewal keeps its expiry', async () => {
    // A continuation token that expires when the one it continues does: renewing it ahead once more
    // would come due at once, and again, until the expiry.
    const { t, fake, tenant } = await world({ tokenTtlSeconds: 4, continuationKeepsExpiry: true });
    await startHandover(t, fake, tenant, 'c-keeps');
    // The stream's holder renews about 2.7 s into the token's 4 s; then nothing more before its expiry.
    await fake.waitFor(() => fake.renewals >= 1, 'the renewal ahead of the expiry');
    await new Promise((r) => setTimeout(r, 900));
    expect(fake.renewals).toBe(1);
  });

  it('tells the bot the wait Salesforce estimates in the routing result', async () => {
    const { t, fake, bot, tenant } = await world();
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-wait');
    fake.routingResult(conversation.id, { estimatedWaitTime: { estimatedWaitTimeInSeconds: 90, isEWTRequested: true } });
    await bot.waitFor(() => botEvents(bot, handoverId, 'queue.updated').length === 1, 10_000, 'queue.updated');
    expect(botEvents(bot, handoverId, 'queue.updated')[0]!.data).toMatchObject({ estimatedWaitSeconds: 90 });
  });

  it("tells the bot its place in the queue from Salesforce's QueuePosition entries, as the place changes", async () => {
    const { t, fake, bot, tenant } = await world();
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-position');
    fake.queuePosition(conversation.id, 3);
    fake.queuePosition(conversation.id, 2);
    await bot.waitFor(() => botEvents(bot, handoverId, 'queue.updated').length === 2, 10_000, 'two queue.updated');
    expect(botEvents(bot, handoverId, 'queue.updated').map((e) => e.data.position)).toEqual([3, 2]);
  });

  it('takes the 18-character org id as well as the 15-character one, and sends the 15-character form', async () => {
    const { t, fake, bot, tenant } = await world({ connectorConfig: { orgId: `${fake15()}AAA` } });
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-org18');
    fake.agentSays(conversation.id, 'hello');
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).includes('hello'), 10_000, 'the agent message');
    expect(fake.refused).toEqual([]);
  });

  it(`relays ${MESSAGES} messages each way in order through drops of the stream, with joins, typing and the agent's end`, async () => {
    const { t, fake, bot, tenant } = await world();
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-1', {
      transcript: [
        { role: 'user', text: 'my order is late' },
        { role: 'bot', text: 'let me get someone' },
      ],
      metadata: { plan: 'gold' },
    });
    expect(conversation.routingAttributes).toEqual({ Plan: 'gold', Email: 'pat@example.com', Queue: 'sales' });
    await fake.waitFor(() => fake.userMessages(conversation.id).length === 1, 'the transcript');
    expect(fake.userMessages(conversation.id)[0]).toBe('Conversation with the bot so far:\nUser: my order is late\nBot: let me get someone');

    fake.agentJoins(conversation.id);
    await bot.waitFor(() => botEvents(bot, handoverId, 'handover.accepted').length === 1, 10_000, 'handover.accepted');
    expect(botEvents(bot, handoverId, 'handover.accepted')[0]!.data).toEqual({ agent: { id: '005xx000001AgEnT', name: 'Ada Agent' } });
    fake.agentTyping(conversation.id, true);
    await bot.waitFor(() => botEvents(bot, handoverId, 'agent.typing').length === 1, 10_000, 'agent.typing');
    expect(botEvents(bot, handoverId, 'agent.typing')[0]!.data).toEqual({ typing: true });
    const typing = await t.api('POST', `/v1/handovers/${handoverId}/typing`, { token: tenant.apiKey, body: { typing: true } });
    expect(typing.status).toBe(202);
    await fake.waitFor(() => conversation.typingReceived.length === 1, 'the user typing entry');

    const userSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        const res = await t.api('POST', `/v1/handovers/${handoverId}/messages`, { token: tenant.apiKey, body: { id: `u-${i}`, text: `user ${i}` } });
        expect(res.status).toBe(202);
      }
    })();
    const agentSide = (async () => {
      for (let i = 0; i < MESSAGES; i++) {
        fake.agentSays(conversation.id, `agent ${i}`);
        if (i === 5) fake.unknownEvent(conversation.id);
        // Cut the stream twice mid-way: the events in between wait at Salesforce and are replayed.
        if (i === 10 || i === 20) {
          await fake.waitFor(() => conversation.openStreams.size === 1, 'a stream to cut');
          fake.dropStreams(conversation.id);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await Promise.all([userSide, agentSide]);

    await fake.waitFor(() => fake.userMessages(conversation.id).length === MESSAGES + 1, 'the user messages at Salesforce', 30_000);
    expect(fake.userMessages(conversation.id).slice(1)).toEqual(numbered('user', MESSAGES));
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= MESSAGES, 30_000, 'the agent messages at the bot');
    // In order, none missing, none doubled, and no echo of the user's own messages.
    expect(messageTexts(botEvents(bot, handoverId))).toEqual(numbered('agent', MESSAGES));
    expect(conversation.connects.length).toBeGreaterThanOrEqual(3);
    expect(conversation.connects.slice(1).every((id) => id !== null)).toBe(true);
    // Resumed after the last applied event: nothing was applied twice.
    expect(botEvents(bot, handoverId, 'handover.accepted')).toHaveLength(1);
    expect(botEvents(bot, handoverId, 'agent.typing')).toHaveLength(1);

    fake.agentEnds(conversation.id);
    await bot.waitFor(() => botEvents(bot, handoverId, 'handover.ended').length === 1, 10_000, 'handover.ended');
    expect(botEvents(bot, handoverId, 'handover.ended')[0]!.data).toEqual({ reason: 'agent_ended' });
    await fake.waitFor(() => conversation.openStreams.size === 0, 'the stream to close after the end');
    // The end came from Salesforce: it is not sent back there.
    expect(conversation.deleteCalls).toBe(0);
    expect(conversation.maxConcurrentStreams).toBe(1);
    expect(fake.refused).toEqual([]);
    // The token is stored for other instances, sealed like every credential (never in clear).
    const { rows } = await t.db.query<{ credential: string; stream_open: boolean }>(
      'select credential, stream_open from connector_sessions where handover_id = $1',
      [handoverId],
    );
    expect(JSON.parse(rows[0]!.credential)).toMatchObject({ $enc: 'v1', kid: expect.any(String) });
    for (const token of fake.issuedTokens()) expect(rows[0]!.credential).not.toContain(token);
    // The holder marks the stream closed once it has seen the end (the socket may close first).
    await eventually(
      async () => {
        const { rows: now } = await t.db.query<{ stream_open: boolean }>('select stream_open from connector_sessions where handover_id = $1', [handoverId]);
        return now[0]!.stream_open === false;
      },
      'the stream to be marked closed',
      10_000,
    );
  });

  it('skips an event that can never be applied, and goes on with the next ones', async () => {
    const { t, fake, bot, tenant } = await world();
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-skip');
    // The database refuses one message as data it cannot store, the same way every time (a fault
    // injected in the real database, with the code PostgreSQL gives a character it cannot take).
    await t.db.query(`create function refuse_poison() returns trigger language plpgsql as $$
      begin if new.text like '%poison%' then raise exception 'poison refused' using errcode = '22021'; end if; return new; end $$`);
    await t.db.query('create trigger refuse_poison before insert on messages for each row execute function refuse_poison()');
    fake.agentSays(conversation.id, 'before');
    fake.agentSays(conversation.id, 'a poison pill');
    // A NUL character cannot be stored as such: it is repaired, not skipped.
    fake.agentSays(conversation.id, 'nul \u0000 repaired');
    fake.agentSays(conversation.id, 'after');
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).includes('after'), 15_000, 'the message after the broken one');
    expect(messageTexts(botEvents(bot, handoverId))).toEqual(['before', 'nul   repaired', 'after']);
  });

  it('reconnects a stream that stays silent past its idle bound, and rejects a config that is not one', async () => {
    const { t, fake, bot, tenant } = await world({ pingMs: 0, connectorConfig: { streamIdleTimeoutMs: 1000 } });
    const { handoverId, conversation } = await startHandover(t, fake, tenant, 'c-idle');
    await fake.waitFor(() => conversation.connects.length >= 2, 'a reconnect after the idle bound');
    fake.agentSays(conversation.id, 'still here');
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length === 1, 10_000, 'the message after the reconnect');

    const tenants = await t.admin('GET', '/v1/admin/tenants');
    const tenantId = tenants.body.tenants[0].id as string;
    const bad = await t.admin('POST', `/v1/admin/tenants/${tenantId}/connectors`, {
      type: 'salesforce',
      name: 'bad',
      config: { baseUrl: fake.url, orgId: '00D-too-short', esDeveloperName: 'x y' },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_connector_config');
    expect(JSON.stringify(bad.body.error.details)).toContain('orgId');
  });

  it('renews an expired token, ends with DELETE when the user leaves, and fails the handover with a reason when the token is lost', async () => {
    const { t, fake, bot, tenant } = await world();
    const first = await startHandover(t, fake, tenant, 'c-renew');
    fake.expireTokens();
    fake.dropStreams(first.conversation.id);
    fake.agentSays(first.conversation.id, 'after renewal');
    await bot.waitFor(() => messageTexts(botEvents(bot, first.handoverId)).length === 1, 15_000, 'the message after the renewal');
    expect(messageTexts(botEvents(bot, first.handoverId))).toEqual(['after renewal']);
    expect(fake.renewals).toBe(1);
    // The renewed token expires too: the next delivery renews it again and goes through.
    fake.expireTokens();
    const sent = await t.api('POST', `/v1/handovers/${first.handoverId}/messages`, { token: tenant.apiKey, body: { id: 'u-after', text: 'still there?' } });
    expect(sent.status).toBe(202);
    await fake.waitFor(() => fake.userMessages(first.conversation.id).includes('still there?'), 'the user message after the renewal');
    expect(fake.renewals).toBe(2);

    const ended = await t.api('POST', `/v1/handovers/${first.handoverId}/end`, { token: tenant.apiKey, body: { reason: 'user_ended' } });
    expect(ended.status).toBe(200);
    await fake.waitFor(() => first.conversation.deleteCalls === 1 && first.conversation.closed, 'the DELETE at Salesforce');
    await fake.waitFor(() => first.conversation.openStreams.size === 0, 'the stream to close');
    // The bot's webhook is delivered in the background: wait for it before reading it.
    await bot.waitFor(() => botEvents(bot, first.handoverId, 'handover.ended').length > 0, 15_000, 'handover.ended at the bot');
    expect(botEvents(bot, first.handoverId, 'handover.ended').map((e) => e.data)).toEqual([{ reason: 'user_ended' }]);

    // Routing failed on the Salesforce side: the bot hears why and takes the chat back.
    const unrouted = await startHandover(t, fake, tenant, 'c-unrouted');
    fake.routingResult(unrouted.conversation.id, { failureType: 'NoAgentsAvailable', failureReason: 'nobody online' });
    await bot.waitFor(() => botEvents(bot, unrouted.handoverId, 'handover.ended').length === 1, 10_000, 'handover.ended after routing failed');
    expect(botEvents(bot, unrouted.handoverId, 'handover.ended')[0]!.data).toEqual({
      reason: 'unavailable',
      detail: 'Salesforce could not route the conversation (NoAgentsAvailable: nobody online).',
    });

    const lost = await startHandover(t, fake, tenant, 'c-lost');
    fake.expireTokens();
    fake.refuseRenewal = true;
    fake.dropStreams(lost.conversation.id);
    await bot.waitFor(() => botEvents(bot, lost.handoverId, 'handover.ended').length === 1, 15_000, 'handover.ended after the token was lost');
    const data = botEvents(bot, lost.handoverId, 'handover.ended')[0]!.data;
    expect(data.reason).toBe('failed');
    expect(data.detail).toContain('refused to renew');
    expect(fake.refused.every((r) => r.status === 401)).toBe(true);
  });
});

describe('Salesforce streams across instances (pg)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.reverse()) await fn();
    cleanup.length = 0;
  });

  it('exactly one instance holds a stream; when it dies another takes over within the lease and nothing is lost or doubled', async () => {
    const db: TestDb = await createTestDb('pg');
    cleanup.push(() => db.dropAndClose());
    const a = await startTestService('pg', fastStreams, { db });
    cleanup.push(() => a.close());
    const b = await startTestService('pg', fastStreams, { db });
    cleanup.push(() => b.close());
    const fake = await startFakeSalesforce({ pingMs: 200 });
    cleanup.push(() => fake.close());
    let botSecret = '';
    const bot = await startSignedWebhookServer(() => botSecret);
    cleanup.push(() => bot.close());
    const tenant = await setUpSalesforce(a, fake, bot, (s) => (botSecret = s));
    const { handoverId, conversation } = await startHandover(a, fake, tenant, 'c-ha');

    fake.agentJoins(conversation.id);
    for (let i = 0; i < 10; i++) fake.agentSays(conversation.id, `agent ${i}`);
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 10, 15_000, 'the first messages');
    // Both instances ran many ticks meanwhile; one holds the stream, the other left it alone.
    const holders = [a, b].filter((s) => s.service.heldStreams().includes(handoverId));
    expect(holders).toHaveLength(1);
    expect(conversation.maxConcurrentStreams).toBe(1);
    const holder = holders[0]!;
    const other = holder === a ? b : a;

    // The holder dies: its stream is cut and its lease is not given back.
    await holder.service.stopBackground(0, { keepLeases: true });
    await fake.waitFor(() => conversation.openStreams.size === 0, 'the dead holder’s stream to close');
    for (let i = 10; i < 20; i++) fake.agentSays(conversation.id, `agent ${i}`);
    await eventually(async () => other.service.heldStreams().includes(handoverId), 'the other instance to take the stream over', 15_000);
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 20, 15_000, 'the messages sent while nobody held the stream');
    expect(messageTexts(botEvents(bot, handoverId))).toEqual(numbered('agent', 20));
    expect(conversation.maxConcurrentStreams).toBe(1);

    // A graceful stop gives the lease back at once.
    await other.service.stopBackground(2000);
    const { rows } = await db.query<{ stream_holder: string | null }>('select stream_holder from connector_sessions where handover_id = $1', [handoverId]);
    expect(rows[0]!.stream_holder).toBeNull();
    holder.service.startBackground();
    await eventually(async () => holder.service.heldStreams().includes(handoverId), 'the restarted instance to take the stream', 15_000);
    fake.agentSays(conversation.id, 'agent 20');
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 21, 15_000, 'a message after the restart');
    expect(messageTexts(botEvents(bot, handoverId))).toEqual(numbered('agent', 21));
    expect(conversation.maxConcurrentStreams).toBe(1);

    // The handover ends while no instance runs streams: the next one to run closes its stream for good.
    await holder.service.stopBackground(2000);
    const ended = await holder.api('POST', `/v1/handovers/${handoverId}/end`, { token: tenant.apiKey, body: {} });
    expect(ended.status).toBe(200);
    other.service.startBackground();
    await eventually(
      async () => {
        const { rows: open } = await db.query<{ stream_open: boolean }>('select stream_open from connector_sessions where handover_id = $1', [handoverId]);
        return open[0]!.stream_open === false;
      },
      'the ended handover’s stream to be closed',
      15_000,
    );
    expect(other.service.heldStreams()).toEqual([]);
  });
});

describe('Salesforce stream survives its holder being killed (pg, kill -9)', () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const fn of cleanup.reverse()) await fn();
    cleanup.length = 0;
  });

  it('another instance takes the lease when it runs out and resumes after the last applied event', async () => {
    const db: TestDb = await createTestDb('pg');
    cleanup.push(() => db.dropAndClose());
    const fake = await startFakeSalesforce({ pingMs: 200 });
    cleanup.push(() => fake.close());
    let botSecret = '';
    const bot = await startSignedWebhookServer(() => botSecret);
    cleanup.push(() => bot.close());
    const server: ServerProcess = await startServerProcess({
      DATABASE_URL: db.url!,
      HANDOVER_ADMIN_TOKEN: ADMIN_TOKEN,
      HANDOVER_STREAM_LEASE_MS: '2000',
      HANDOVER_STREAM_TICK_MS: '100',
      HANDOVER_DELIVERY_POLL_MS: '50',
      HANDOVER_DELIVERY_LEASE_MS: '2000',
    });
    cleanup.push(async () => {
      server.child.kill('SIGKILL');
      await server.exited;
    });
    const tenant = await setUpSalesforce(server, fake, bot, (s) => (botSecret = s));
    const { handoverId, conversation } = await startHandover(server, fake, tenant, 'c-kill');
    for (let i = 0; i < 10; i++) fake.agentSays(conversation.id, `agent ${i}`);
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 10, 15_000, 'the first messages');

    // A second instance on the same database leaves the held stream alone...
    const other = await startTestService('pg', fastStreams, { db });
    cleanup.push(() => other.close());
    for (let i = 10; i < 15; i++) fake.agentSays(conversation.id, `agent ${i}`);
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 15, 15_000, 'messages while both run');
    expect(other.service.heldStreams()).toEqual([]);

    // ...until the holder dies mid-conversation (its bot-side lanes come free after their own short lease).
    server.child.kill('SIGKILL');
    await server.exited;
    for (let i = 15; i < 30; i++) fake.agentSays(conversation.id, `agent ${i}`);
    await eventually(async () => other.service.heldStreams().includes(handoverId), 'the takeover', 20_000);
    await bot.waitFor(() => messageTexts(botEvents(bot, handoverId)).length >= 30, 20_000, 'every agent message');
    expect(messageTexts(botEvents(bot, handoverId))).toEqual(numbered('agent', 30));
    expect(conversation.maxConcurrentStreams).toBe(1);
    // The takeover resumed from a stored position, not from the start.
    expect(conversation.connects.at(-1)).not.toBeNull();
  });
});
