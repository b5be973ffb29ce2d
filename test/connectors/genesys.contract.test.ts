import { startFakeGenesys, type FakeGenesys } from '../fakes/genesys.js';
import { runConnectorContract, type ReceivedByHelpdesk } from './contract.js';

/** What the Genesys conversation of a handover holds: the opening message, the user's messages, typing, the end. */
function received(fake: FakeGenesys, handoverId: string): ReceivedByHelpdesk[] {
  const conversation = fake.conversationFor(handoverId);
  if (!conversation) return [];
  const [opening, ...rest] = conversation.inbound;
  const lines = opening!.text.split('\n');
  const from = lines.indexOf('Transcript:');
  const transcript =
    from < 0 ? [] : lines.slice(from + 1).map((line) => ({ role: line.slice(0, line.indexOf(': ')), text: line.slice(line.indexOf(': ') + 2) }));
  const out: ReceivedByHelpdesk[] = [{ kind: 'handover.requested', transcript, metadata: conversation.customAttributes }];
  for (const message of rest) out.push({ kind: 'message', text: message.text });
  for (let i = 0; i < conversation.typing; i++) out.push({ kind: 'typing', typing: true });
  if (conversation.disconnectedBy === 'api') out.push({ kind: 'ended' });
  return out;
}

runConnectorContract({
  name: 'genesys',
  capabilities: { userTyping: true, agentTyping: true, transfer: false, explicitJoin: false },
  async start() {
    const fake = await startFakeGenesys();
    return {
      type: 'genesys',
      config: {
        apiBaseUrl: fake.url,
        loginBaseUrl: fake.url,
        clientId: fake.clientId,
        clientSecret: fake.clientSecret,
        integrationId: fake.integrationId,
        webhookSecret: fake.webhookSecret,
      },
      secrets: [fake.clientSecret, fake.webhookSecret],
      connected(connector) {
        fake.webhookTarget = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        join: (handoverId, agent) => fake.agentSend(handoverId, `Hi, ${agent.name} here`, { nickname: agent.name }),
        send: (handoverId, message) => fake.agentSend(handoverId, message.text),
        typing: (handoverId) => fake.agentTyping(handoverId),
        transfer: async () => ({ status: 200, body: null }),
        end: (handoverId) => fake.agentDisconnect(handoverId),
        resendLast: () => fake.resend([...fake.deliveries].reverse().find((d) => d.message.type === 'Text')!.message),
        forge: async (handoverId) => {
          const body = JSON.stringify({
            id: 'forged',
            channel: {
              id: fake.integrationId,
              platform: 'Open',
              type: 'Private',
              to: { id: handoverId },
              from: { id: fake.integrationId, idType: 'Opaque' },
              time: new Date().toISOString(),
            },
            type: 'Text',
            text: 'forged',
            direction: 'Outbound',
          });
          return fake.post(body, fake.sign(body, 'not-the-webhook-secret'));
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
