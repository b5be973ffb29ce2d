import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/resilience/errors.js';
import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { startFakeFreshchat, type FakeFreshchat } from '../fakes/freshchat.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { startFakeIntercom, type FakeIntercom } from '../fakes/intercom.js';
import { startFakeGenesys, type FakeGenesys } from '../fakes/genesys.js';
import { startFakeZendesk, type FakeZendesk } from '../fakes/zendesk.js';
import { contentType, deeplyNested, FUZZ_CASES, fuzzTimeLimits, hostileString, wellFormed } from '../support/hostile-input.js';
import { chatwootWire } from '../support/inbound-wires/chatwoot.js';
import { freshchatWire } from '../support/inbound-wires/freshchat.js';
import { standardWebhooksWire } from '../support/inbound-wires/generic-webhook.js';
import { intercomWire } from '../support/inbound-wires/intercom.js';
import { genesysWire } from '../support/inbound-wires/genesys.js';
import type { InboundWire } from '../support/inbound-wires/wire.js';
import { zendeskWire } from '../support/inbound-wires/zendesk.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

/** The text as the service stores it: control characters (but tab, newline, return) as spaces, half a surrogate pair as U+FFFD. */
function repaired(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff) {
      out += text[i]! + text[i + 1]!;
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) out += '\uFFFD';
    else if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) out += ' ';
    else out += text[i]!;
  }
  return out;
}

/**
 * Hostile requests to each connector's inbound URL (generic webhook, Chatwoot, Zendesk, Intercom,
 * Freshchat, Genesys): forged,
 * missing and mangled signatures, timestamps old, future, non-numeric and huge, hostile delivery ids,
 * malformed and oversized bodies, wrong content types — with correctly signed valid events, and
 * replays of them, sent in between. Each case checks:
 * - never a 500 (a 4xx with a catalogued code);
 * - a request that does not verify by the vendor's rules is refused and changes nothing;
 * - an authentic but malformed or foreign event changes nothing of the watched handover;
 * - an authentic valid event is taken (200) and adds exactly one message; its replay is a duplicate.
 * At the end each taken message is in the handover's transcript, read through the bot API, once.
 * The connectors share 30% of the fuzz budget; every operation (hostile-input.test.ts) takes the rest.
 */
const TYPES = ['webhook', 'chatwoot', 'zendesk', 'intercom', 'freshchat', 'genesys'];
const RUNS = Math.ceil((FUZZ_CASES * 0.3) / TYPES.length);
const LIMITS = fuzzTimeLimits(RUNS);
const BODY_LIMIT = 256 * 1024;
const HELPDESK_SECRET = `whsec_${Buffer.from(randomUUID() + randomUUID()).toString('base64')}`;

type Body = { kind: 'valid' } | { kind: 'replay'; pick: number } | { kind: 'hostile'; raw: string } | { kind: 'oversized' };

interface Watched {
  wire: InboundWire<any>;
  inboundUrl: string;
  handoverId: string;
}

describe('hostile requests to the connectors’ inbound URLs (pg)', () => {
  let t: TestService;
  let helpdesk: GenericHelpdesk;
  let chatwoot: FakeChatwoot;
  let zendesk: FakeZendesk;
  let intercom: FakeIntercom;
  let freshchat: FakeFreshchat;
  let genesys: FakeGenesys;
  let apiKey: string;
  let tenantId: string;
  const watched = new Map<string, Watched>();
  let caseCounter = 0;

  beforeAll(async () => {
    // The per-connector inbound rate is fuzzed elsewhere (inbound-rate.test.ts); here it would only
    // turn valid events away with 429.
    t = await startTestService('pg', { 'connectors.inboundPerSecond': 1_000_000, 'connectors.inboundBurst': 1_000_000 });
    [helpdesk, chatwoot, zendesk, intercom, freshchat, genesys] = await Promise.all([
      startGenericHelpdesk(HELPDESK_SECRET),
      startFakeChatwoot(),
      startFakeZendesk({ retryDelayMs: 20 }),
      startFakeIntercom(),
      startFakeFreshchat(),
      startFakeGenesys(),
    ]);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Inbound' });
    apiKey = tenant.body.apiKey;
    tenantId = tenant.body.id;
    const configs = {
      webhook: { url: helpdesk.url, secret: HELPDESK_SECRET },
      chatwoot: {
        baseUrl: chatwoot.url,
        accountId: chatwoot.accountId,
        inboxId: chatwoot.inboxId,
        userToken: chatwoot.userToken,
        botToken: chatwoot.botToken,
        webhookSecret: chatwoot.webhookSecret,
      },
      zendesk: { baseUrl: zendesk.baseUrl, appId: zendesk.appId, keyId: zendesk.keyId, keySecret: zendesk.keySecret, webhookSecret: zendesk.webhookSecret },
      intercom: { baseUrl: intercom.url, accessToken: intercom.accessToken, clientSecret: intercom.clientSecret, adminId: intercom.botAdminId, teamId: '501' },
      freshchat: {
        baseUrl: freshchat.url,
        apiToken: freshchat.apiToken,
        webhookPublicKey: freshchat.publicKeyPem,
        appId: freshchat.appId,
        channelId: freshchat.channelId,
        agentId: freshchat.botAgentId,
        groupId: 'grp-support',
      },
      genesys: {
        apiBaseUrl: genesys.url,
        loginBaseUrl: genesys.url,
        clientId: genesys.clientId,
        clientSecret: genesys.clientSecret,
        integrationId: genesys.integrationId,
        webhookSecret: genesys.webhookSecret,
      },
    };
    const handovers: Record<string, { handoverId: string; inboundUrl: string }> = {};
    for (const [type, config] of Object.entries(configs)) {
      const connector = await t.admin('POST', `/v1/admin/tenants/${tenantId}/connectors`, { type, name: type, config });
      expect(connector.status).toBe(201);
      expect((await t.admin('POST', `/v1/admin/tenants/${tenantId}/queues`, { name: type, connectorId: connector.body.id })).status).toBe(201);
      const created = await t.api('POST', '/v1/handovers', { token: apiKey, body: { conversationId: `c-${type}`, queue: type, user: { id: `u-${type}` } } });
      expect(created.status).toBe(201);
      handovers[type] = { handoverId: created.body.id, inboundUrl: connector.body.inboundUrl };
    }
    helpdesk.inboundUrl = handovers.webhook!.inboundUrl;
    chatwoot.webhookTarget = handovers.chatwoot!.inboundUrl;
    zendesk.webhookTarget = handovers.zendesk!.inboundUrl;
    intercom.webhookTarget = handovers.intercom!.inboundUrl;
    freshchat.webhookTarget = handovers.freshchat!.inboundUrl;
    genesys.webhookTarget = handovers.genesys!.inboundUrl;
    // Each handover opened on its system (the fakes' echoes of it are in, and change nothing).
    await helpdesk.waitFor((r) => r.some((w) => w.body.type === 'handover.requested'), 10_000, 'handover.requested at the helpdesk');
    const cw = await eventually(async () => {
      const c = chatwoot.conversationForHandover(handovers.chatwoot!.handoverId);
      return c?.toggles.includes('open') ? c : null;
    }, 'the Chatwoot conversation opened for agents');
    const zd = await eventually(async () => {
      const c = zendesk.conversationForHandover(handovers.zendesk!.handoverId);
      return c && c.controlPasses.length > 0 ? c : null;
    }, 'the Zendesk conversation passed to agents');
    // Intercom's and Freshchat's events name their conversation: the handover must know it first.
    const ic = await eventually(async () => intercom.conversationForHandover(handovers.intercom!.handoverId), 'the Intercom conversation');
    const fr = await eventually(async () => freshchat.conversationForHandover(handovers.freshchat!.handoverId), 'the Freshchat conversation');
    // Genesys's events name the user (the handover id) once the handover has it as its reference.
    await eventually(async () => genesys.conversationFor(handovers.genesys!.handoverId), 'the Genesys conversation');
    for (const type of ['intercom', 'freshchat', 'genesys']) {
      await eventually(
        async () =>
          (await t.db.query<{ external_ref: string | null }>('select external_ref from handovers where id = $1', [handovers[type]!.handoverId])).rows[0]
            ?.external_ref,
        `the ${type} conversation id stored`,
      );
    }
    const ids = Object.values(handovers).map((h) => h.handoverId);
    const wires = [
      standardWebhooksWire({
        secret: HELPDESK_SECRET,
        handoverId: handovers.webhook!.handoverId,
        otherHandoverIds: ids.filter((id) => id !== handovers.webhook!.handoverId),
      }),
      chatwootWire({ secret: chatwoot.webhookSecret, conversationId: cw.id }),
      zendeskWire({ secret: zendesk.webhookSecret, appId: zendesk.appId, conversationId: zd.id }),
      intercomWire({ secret: intercom.clientSecret, conversationId: ic.id }),
      freshchatWire({ privateKey: freshchat.privateKey, conversationId: fr.id }),
      genesysWire({ secret: genesys.webhookSecret, integrationId: genesys.integrationId, userRef: handovers.genesys!.handoverId }),
    ];
    for (const [i, type] of TYPES.entries()) watched.set(type, { wire: wires[i]!, ...handovers[type]! });
  });

  afterAll(async () => {
    await t?.close();
    await Promise.all([helpdesk?.close(), chatwoot?.close(), zendesk?.close(), intercom?.close(), freshchat?.close(), genesys?.close()]);
  });

  /** What a request could change: the tenant's messages, its bot events, and each handover's state. */
  async function fingerprint(): Promise<{ messages: number; events: number; handovers: string }> {
    const { rows } = await t.db.query<{ messages: number; events: number; handovers: string }>(
      `select (select count(*)::int from messages where tenant_id = $1) as messages,
              (select count(*)::int from events where tenant_id = $1) as events,
              (select string_agg(id || ':' || state || ':' || last_seq || ':' || coalesce(agent_info::text, ''), ',' order by id) from handovers where tenant_id = $1) as handovers`,
      [tenantId],
    );
    return rows[0]!;
  }

  /** The texts of the agent messages the bot sees for one handover, through the bot API. */
  async function transcript(handoverId: string): Promise<string[]> {
    const texts: string[] = [];
    let after = '';
    for (let page = 0; page < 100; page++) {
      const res = await t.api('GET', `/v1/handovers/${handoverId}/events?limit=1000${after ? `&after=${after}` : ''}`, { token: apiKey });
      expect(res.status).toBe(200);
      for (const e of res.body.events) if (e.type === 'message.created') texts.push(e.data.message.text);
      if (res.body.events.length < 1000) return texts;
      after = res.body.next;
    }
    throw new Error('more than 100 pages of events');
  }

  for (const type of TYPES) {
    it(
      `${type}: answers ${RUNS} hostile requests without a 500, takes only what verifies, each valid event once`,
      async ({ task }) => {
        const { wire, inboundUrl, handoverId } = watched.get(type)!;
        const taken: Array<{ raw: string; headers: Record<string, string>; marker: string; text: string; at: number }> = [];
        let forged = 0;
        let cases = 0;
        const body: fc.Arbitrary<Body> = fc.oneof(
          { weight: 7, arbitrary: fc.constant({ kind: 'valid' as const }) },
          { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), pick: fc.nat() }) },
          {
            weight: 8,
            arbitrary: fc
              .oneof(wire.hostileEvent, wire.hostileEvent, hostileString, fc.constant(deeplyNested))
              .map((raw) => ({ kind: 'hostile' as const, raw })),
          },
          { weight: 1, arbitrary: fc.constant({ kind: 'oversized' as const }) },
        );
        // Valid text may be long: emoji up to the 20,000-unit bound of a text, or across it where the
        // connector cuts longer texts.
        const emoji = wire.longText === 'cut' ? { min: 9_970, max: 10_010 } : { min: 9_900, max: 9_960 };
        // Text a vendor could send: anything but NUL (which PostgreSQL cannot store) and half characters.
        const storable = hostileString.filter((x) => !x.includes('\u0000') && wellFormed(x) === x);
        const filler = fc.oneof(
          { weight: 8, arbitrary: fc.constant('') },
          { weight: 1, arbitrary: fc.integer(emoji).map((n) => ' ' + '😀'.repeat(n)) },
          { weight: 1, arbitrary: storable },
        );
        // The vendor's own message id, where its length is not bounded: sometimes long, or odd.
        const idTail = fc.oneof({ weight: 6, arbitrary: fc.constant('') }, { weight: 1, arbitrary: storable });
        const type_ = fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8') },
          { weight: 1, arbitrary: contentType },
        );

        await fc.assert(
          fc.asyncProperty(wire.auth, body, type_, filler, idTail, async (auth, b, ct, fill, tail) => {
            const caseNo = ++caseCounter;
            // A replay repeats a taken event exactly, while its timestamp is still within the tolerance.
            const recent = b.kind === 'replay' ? taken.filter((m) => Date.now() - m.at < 60_000) : [];
            const replay = b.kind === 'replay' && recent.length > 0 ? recent[b.pick % recent.length]! : undefined;
            const marker = `valid ${type} ${caseNo} ${randomUUID()}`;
            const text = marker + fill;
            const raw =
              replay?.raw ??
              (b.kind === 'hostile'
                ? b.raw
                : b.kind === 'oversized'
                  ? wire.validEvent(caseNo, text, tail).replace(/^\{/, `{"padding":"${'x'.repeat(BODY_LIMIT)}",`)
                  : wire.validEvent(caseNo, text, tail));
            const headers = replay?.headers ?? { ...wire.headers(auth, raw, caseNo), 'content-type': ct };
            const authentic = wire.verifies(auth);
            const aimed = replay === undefined && (b.kind === 'valid' || b.kind === 'replay');
            // Media types are case-insensitive and may carry parameters: others may or may not be read as JSON.
            const plainJson = ct === 'application/json' || ct === 'application/json; charset=utf-8';
            const before = await fingerprint();
            const res = await fetch(inboundUrl, { method: 'POST', headers, body: raw, signal: AbortSignal.timeout(10_000) });
            const answer = await res.text();
            const after = await fingerprint();
            const what = `${type} ${replay ? 'replay of a taken event' : `${JSON.stringify(auth).slice(0, 200)} ${b.kind}`} (text of ${text.length}) ${ct} → ${res.status} ${answer.slice(0, 300)}`;

            expect(res.status, what).not.toBe(500);
            if (res.status >= 400) {
              const code = (JSON.parse(answer) as { error?: { code?: string } }).error?.code;
              expect(code && code in errorCatalogue, `${what}: code ${code}`).toBe(true);
              expect(res.status, what).toBeLessThan(500);
            }
            if (replay) {
              expect(res.status, what).toBe(200);
              expect(JSON.parse(answer), what).toEqual({ ok: true, duplicate: true });
              expect(after, what).toEqual(before);
            } else if (!authentic) {
              forged++;
              expect(res.status, what).toBeGreaterThanOrEqual(400);
              expect(after, what).toEqual(before);
            } else if (aimed && (plainJson || res.status < 300)) {
              expect(res.status, what).toBe(200);
              expect(JSON.parse(answer), what).toEqual({ ok: true, duplicate: false });
              expect(after.messages, what).toBe(before.messages + 1);
              taken.push({ raw, headers, marker, text, at: Date.now() });
            } else {
              // Authentic, but malformed, oversized, of a type not read as JSON, for another handover or
              // another app: nothing changes.
              expect(after, what).toEqual(before);
            }
            cases++;
          }),
          { numRuns: RUNS, interruptAfterTimeLimit: LIMITS.interruptAfterTimeLimit },
        );

        expect(cases).toBe(RUNS);
        task.meta.fuzzCases = cases;
        expect(forged, 'forged requests').toBeGreaterThan(RUNS / 5);
        expect(taken.length, 'valid events taken').toBeGreaterThan(RUNS / 20);
        // Every valid event taken is in the transcript the bot reads, exactly once, and nothing else is.
        // Texts past 20,000 characters may be cut, at a character's boundary; control characters and half
        // surrogate pairs arrive repaired.
        const texts = await transcript(handoverId);
        expect(texts.length, 'agent messages the bot sees').toBe(taken.length);
        for (const m of taken) {
          const found = texts.filter((x) => x.startsWith(m.marker));
          expect(found.length, `${m.marker} in the transcript`).toBe(1);
          expect(repaired(m.text).startsWith(found[0]!), `${m.marker}: the text as sent (repaired), or its start`).toBe(true);
          expect(found[0]!.length, `${m.marker}: length`).toBeGreaterThanOrEqual(Math.min(m.text.length, 19_999));
        }
        expect((await t.api('GET', `/v1/handovers/${handoverId}`, { token: apiKey })).body.state).toBe('active');
      },
      LIMITS.testTimeoutMs,
    );
  }
});
