import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../support/redis-server.js';
import { openSseClient, type SseClient } from '../support/sse-client.js';
import { createTestDb, type TestDb } from '../support/test-db.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

async function liveUpdates(t: TestService): Promise<{ state: string; cause: string } | undefined> {
  const status = (await t.admin('GET', '/status.json')).body as { components: Array<{ id: string; state: string; cause: string }> };
  return status.components.find((c) => c.id === 'live_updates');
}

async function busConnected(t: TestService): Promise<string | undefined> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return text
    .split('\n')
    .find((line) => line.startsWith('handover_bus_connected '))
    ?.split(' ')[1];
}

/**
 * Two instances on one database and one Redis: what is accepted on one reaches streams held by the
 * other through Redis, and when Redis goes away nothing is lost — streams catch up by polling.
 * The bot stream's own safety-net poll is 30 s; every wait here is far shorter, so only Redis or the
 * degraded-mode polling can deliver in time.
 */
describe('live signals between instances through Redis (pg)', () => {
  let db: TestDb | undefined;
  let redis: PrivateRedis | undefined;
  const instances: TestService[] = [];
  const streams: SseClient[] = [];
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    for (const t of instances.splice(0)) await t.close();
    await db?.dropAndClose();
    await redis?.close();
  });

  it('fans events out across instances, degrades to polling while Redis is down, and recovers', async () => {
    redis = await startPrivateRedis();
    db = await createTestDb('pg');
    const settings = {
      'redis.url': redis.url,
      'redis.prefix': `test-${randomBytes(4).toString('hex')}:`,
      'redis.degradedPollMs': 300,
      'redis.timeoutMs': 300,
      'status.sampleMs': 100,
    };
    const a = await startTestService('pg', settings, { db });
    instances.push(a);
    const b = await startTestService('pg', settings, { db });
    instances.push(b);
    await eventually(async () => (await busConnected(a)) === '1' && (await busConnected(b)) === '1', 'both instances to reach Redis', 10_000);

    const desk = await setUpDesk(a);
    const bot = { authorization: `Bearer ${desk.apiKey}` };
    const botStream = openSseClient(`${a.url}/v1/events`, bot);
    const deskStream = openSseClient(`${a.url}/v1/desk/events`, { authorization: `Bearer ${desk.agentToken}` });
    streams.push(botStream, deskStream);
    expect(await botStream.opened).toBe(200);
    await deskStream.waitFor((e) => e.some((x) => x.event === 'ready'), 5000, 'desk stream ready');

    // Accepted on B, seen on A's streams.
    const created = await b.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c-1', queue: 'support', user: { id: 'u-1' } } });
    expect(created.status).toBe(201);
    const handoverId: string = created.body.id;
    await deskStream.waitFor((e) => e.some((x) => x.event === 'handover.queued' && x.data.handoverId === handoverId), 5000, 'the queued signal from B on A');
    expect((await b.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken })).status).toBe(200);
    await botStream.waitFor((e) => e.some((x) => x.event === 'handover.accepted'), 5000, 'handover.accepted from B on A');

    const agentSays = async (text: string) => {
      const res = await b.api('POST', `/v1/desk/handovers/${handoverId}/messages`, { token: desk.agentToken, body: { text } });
      expect(res.status).toBe(202);
    };
    const botSaw = (text: string) => (e: typeof botStream.events) => e.some((x) => x.event === 'message.created' && x.data.data?.message?.text === text);
    await agentSays('through redis');
    await botStream.waitFor(botSaw('through redis'), 5000, 'a message from B on A');

    // Redis goes away: requests are served at once, signals fall back to polling, the metric says so.
    await redis.stop();
    await eventually(async () => (await busConnected(a)) === '0' && (await busConnected(b)) === '0', 'both instances to notice Redis is gone', 10_000);
    const served = await b.api('POST', `/v1/handovers/${handoverId}/messages`, {
      token: desk.apiKey,
      body: { id: 'm-down', text: 'user while redis is down' },
    });
    expect(served.status).toBe(202);
    await agentSays('while redis is down');
    await botStream.waitFor(botSaw('while redis is down'), 5000, 'a message from B on A by polling');
    await deskStream.waitFor((e) => e.some((x) => x.event === 'resync'), 5000, 'the desk console told to re-read');
    const failures = (await (await fetch(`${b.url}/metrics`)).text()).split('\n').find((l) => l.startsWith('handover_bus_publish_failures_total '));
    expect(Number(failures?.split(' ')[1])).toBeGreaterThan(0);
    const degraded = await eventually(
      async () => {
        const c = await liveUpdates(a);
        return c?.state === 'degraded' ? c : null;
      },
      'the status page to say live updates are degraded',
      10_000,
    );
    expect(degraded.cause).toMatch(/^Redis unreachable since .*re-read the database every 300 ms instead; nothing is lost/);

    // Redis is back: both reconnect by themselves and signals flow again.
    await redis.start();
    await eventually(async () => (await busConnected(a)) === '1' && (await busConnected(b)) === '1', 'both instances to reconnect', 15_000);
    await eventually(async () => (await liveUpdates(a))?.state === 'operational', 'the status page to say live updates are back', 10_000);
    await agentSays('after redis returned');
    await botStream.waitFor(botSaw('after redis returned'), 5000, 'a message from B on A after Redis returned');

    // Nothing was lost or doubled on the bot stream.
    const texts = botStream.events.filter((x) => x.event === 'message.created').map((x) => x.data.data.message.text);
    expect(texts).toEqual(['through redis', 'while redis is down', 'after redis returned']);
  });
});
