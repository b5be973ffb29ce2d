import { parseTranscript } from '../../src/connectors/zendesk/zendesk-content.js';
import { startFakeZendesk, type FakeZendesk } from '../fakes/zendesk.js';
import { runConnectorContract, type InboundAnswer, type ReceivedByHelpdesk } from './contract.js';

const AGENT_NAME = 'Zed Agent';

function received(fake: FakeZendesk, handoverId: string): ReceivedByHelpdesk[] {
  const conversation = fake.conversationForHandover(handoverId);
  if (!conversation) return [];
  const out: ReceivedByHelpdesk[] = [];
  for (const pass of conversation.controlPasses) {
    const m = pass.metadata;
    if (m.handoverId !== handoverId) continue;
    const metadata = Object.fromEntries(
      Object.entries(m)
        .filter(([k]) => k.startsWith('meta_'))
        .map(([k, v]) => [k.slice(5), v]),
    );
    out.push({
      kind: 'handover.requested',
      userId: String(m.userId),
      queue: String(m.queue),
      transcript: parseTranscript(String(m.transcript ?? '')).filter((e) => e.text),
      metadata,
    });
  }
  const seen = new Set<unknown>();
  for (const message of conversation.messages) {
    if (message.author.type !== 'user') continue;
    if (message.metadata?.handoverEvent === 'ended') {
      out.push({ kind: 'ended' });
      continue;
    }
    // Our message id rides along in the metadata: a re-sent message shows once.
    const id = message.metadata?.handoverMessageId;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push({ kind: 'message', text: message.content.text ?? '' });
  }
  return out;
}

runConnectorContract({
  name: 'zendesk',
  capabilities: { userTyping: false, agentTyping: false, transfer: false, explicitJoin: false },
  async start() {
    const fake = await startFakeZendesk();
    const conversationOf = (handoverId: string) => {
      const conversation = fake.conversationForHandover(handoverId);
      if (!conversation) throw new Error(`no Sunshine conversation for ${handoverId}`);
      return conversation.id;
    };
    const unsupported = async (): Promise<InboundAnswer> => {
      throw new Error('not a Zendesk signal');
    };
    const lastAgentBatch = () => [...fake.webhookDeliveries].reverse().find((d) => d.body.includes('"type":"business"'))!.body;
    return {
      type: 'zendesk',
      config: {
        baseUrl: fake.baseUrl,
        appId: fake.appId,
        keyId: fake.keyId,
        keySecret: fake.keySecret,
        webhookSecret: fake.webhookSecret,
        switchboardIntegration: 'zd-agentWorkspace',
      },
      secrets: [fake.keySecret, fake.webhookSecret],
      connected(connector) {
        fake.webhookTarget = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        // The agent workspace has no join signal for integrations: the agent's first message is it.
        join: (handoverId, agent) => fake.agentMessage(conversationOf(handoverId), { text: `Hi, ${agent.name} here`, displayName: agent.name }),
        send: (handoverId, message) => fake.agentMessage(conversationOf(handoverId), { text: message.text, displayName: AGENT_NAME }),
        typing: unsupported,
        transfer: unsupported,
        end: (handoverId) => fake.closeTicket(conversationOf(handoverId)),
        resendLast: () => fake.resend(lastAgentBatch()),
        forge: async (handoverId) => {
          const body = JSON.stringify({
            app: { id: fake.appId },
            webhook: { id: 'wh_1', version: 'v2' },
            events: [
              {
                id: 'forged-1',
                type: 'conversation:message',
                createdAt: new Date().toISOString(),
                payload: {
                  conversation: { id: conversationOf(handoverId) },
                  message: { id: 'm-forged', author: { type: 'business', displayName: 'Mallory' }, content: { type: 'text', text: 'forged' } },
                },
              },
            ],
          });
          return fake.resend(body, 'not-the-webhook-secret');
        },
      },
      problems: () => fake.refused.filter((r) => r.status !== 503).map((r) => `${r.method} ${r.path}: ${r.status} ${r.reason}`),
      setDown(down) {
        fake.down = down;
      },
      close: () => fake.close(),
    };
  },
});
