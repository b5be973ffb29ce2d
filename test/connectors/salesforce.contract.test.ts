import { startFakeSalesforce, type FakeConversation, type FakeSalesforce } from '../fakes/salesforce.js';
import { runConnectorContract, type InboundAnswer, type ReceivedByHelpdesk } from './contract.js';

const TRANSCRIPT_HEADER = 'Conversation with the bot so far:';

/** The transcript message the connector sends first, back into entries. */
function parseTranscript(text: string): Array<{ role: string; text: string }> {
  return text
    .split('\n')
    .slice(1)
    .map((line) => {
      const [who, ...rest] = line.split(': ');
      return { role: (who ?? '').toLowerCase(), text: rest.join(': ') };
    })
    .filter((e) => e.text);
}

function conversationFor(fake: FakeSalesforce, handoverId: string): FakeConversation | undefined {
  return [...fake.conversations.values()].find((c) => c.routingAttributes.HandoverId === handoverId);
}

function received(fake: FakeSalesforce, handoverId: string): ReceivedByHelpdesk[] {
  const c = conversationFor(fake, handoverId);
  if (!c) return [];
  const metadata = { plan: c.routingAttributes.Plan, orderId: c.routingAttributes.OrderId };
  const out: ReceivedByHelpdesk[] = [];
  const seen = new Set<string>();
  let transcript: Array<{ role: string; text: string }> = [];
  const messages: ReceivedByHelpdesk[] = [];
  for (const m of c.messagesReceived) {
    if (seen.has(m.id)) continue;
    seen.add(m.id);
    if (m.text.startsWith(TRANSCRIPT_HEADER)) transcript = parseTranscript(m.text);
    else messages.push({ kind: 'message', text: m.text });
  }
  out.push({ kind: 'handover.requested', userId: String(c.routingAttributes.UserId ?? ''), transcript, metadata });
  out.push(...messages);
  for (const typing of c.typingReceived) out.push({ kind: 'typing', typing });
  if (c.deleteCalls > 0) out.push({ kind: 'ended' });
  return out;
}

/**
 * Salesforce pushes nothing to us: the agent's actions reach the service through the conversation's
 * event stream, which one instance holds. Acting as the agent therefore answers no HTTP status of ours;
 * the driver answers 200 once the event is on the stream. Its inbound URL takes nothing (forged
 * events are refused there), and a repeat is the stream sending an event id again.
 */
runConnectorContract({
  name: 'salesforce',
  capabilities: { userTyping: true, agentTyping: true, transfer: false, explicitJoin: true, pull: true },
  async start() {
    const fake = await startFakeSalesforce();
    let inboundUrl = '';
    const idOf = (handoverId: string) => {
      const c = conversationFor(fake, handoverId);
      if (!c) throw new Error(`no Salesforce conversation for ${handoverId}`);
      return c.id;
    };
    const onStream = (act: () => void): Promise<InboundAnswer> => {
      act();
      return Promise.resolve({ status: 200, body: { ok: true } });
    };
    let last: string | undefined;
    return {
      type: 'salesforce',
      config: {
        baseUrl: fake.url,
        orgId: fake.orgId,
        esDeveloperName: fake.esDeveloperName,
        routingAttributes: { HandoverId: 'handoverId', UserId: 'user.id', Plan: 'metadata.plan', OrderId: 'metadata.orderId' },
      },
      // The per-conversation access tokens are the credentials here.
      get secrets() {
        return fake.issuedTokens();
      },
      connected(connector) {
        inboundUrl = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        join: (handoverId, agent) => onStream(() => fake.agentJoins((last = idOf(handoverId)), { subject: `005${agent.id}`, name: agent.name })),
        send: (handoverId, message) => onStream(() => fake.agentSays((last = idOf(handoverId)), message.text)),
        typing: (handoverId, typing) => onStream(() => fake.agentTyping((last = idOf(handoverId)), typing)),
        transfer: () => Promise.reject(new Error('Salesforce routes inside the org; no transfer signal')),
        end: (handoverId) => onStream(() => fake.agentEnds((last = idOf(handoverId)))),
        resendLast: () => onStream(() => fake.replayLast(last!)),
        forge: async (handoverId) => {
          const res = await fetch(inboundUrl, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ handoverId, type: 'message.created', data: { message: { text: 'forged' } } }),
          });
          return { status: res.status, body: await res.json() };
        },
      },
      problems: () => fake.refused.map((r) => `${r.method} ${r.path}: ${r.status} ${r.why}`),
      setDown(down) {
        fake.down = down;
      },
      close: () => fake.close(),
    };
  },
});
