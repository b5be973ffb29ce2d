import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { runConnectorContract, type ReceivedByHelpdesk } from './contract.js';

function received(fake: FakeChatwoot, handoverId: string): ReceivedByHelpdesk[] {
  const conversation = fake.conversationForHandover(handoverId);
  if (!conversation) return [];
  const out: ReceivedByHelpdesk[] = [];
  if (conversation.toggles.includes('open')) {
    const note = conversation.messages.find((m) => m.private)?.content ?? '';
    const [transcriptPart = ''] = note.split('\n\n');
    const transcript = transcriptPart
      .split('\n')
      .slice(1)
      .map((line) => ({ role: line.slice(0, line.indexOf(': ')), text: line.slice(line.indexOf(': ') + 2) }));
    out.push({
      kind: 'handover.requested',
      transcript,
      metadata: conversation.additionalAttributes.handover_metadata ?? {},
      queue: conversation.additionalAttributes.handover_queue,
    });
  }
  for (const message of conversation.messages) if (message.message_type === 'incoming') out.push({ kind: 'message', text: message.content });
  for (const status of fake.contactTyping.get(conversation.id) ?? []) out.push({ kind: 'typing', typing: status === 'on' });
  if (conversation.toggles.includes('resolved')) out.push({ kind: 'ended' });
  return out;
}

runConnectorContract({
  name: 'chatwoot',
  capabilities: { userTyping: true, agentTyping: true, transfer: true, explicitJoin: true },
  async start() {
    const fake = await startFakeChatwoot();
    const conversationOf = (handoverId: string) => {
      const conversation = fake.conversationForHandover(handoverId);
      if (!conversation) throw new Error(`no Chatwoot conversation for ${handoverId}`);
      return conversation.id;
    };
    return {
      type: 'chatwoot',
      config: {
        baseUrl: fake.url,
        accountId: fake.accountId,
        inboxId: fake.inboxId,
        userToken: fake.userToken,
        botToken: fake.botToken,
        webhookSecret: fake.webhookSecret,
        inboxIdentifier: fake.inboxIdentifier,
      },
      secrets: [fake.userToken, fake.botToken, fake.webhookSecret],
      connected(connector) {
        fake.webhookTarget = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        join: (handoverId, agent) => fake.assign(conversationOf(handoverId), { id: 5, name: agent.name }),
        send: (handoverId, message) => fake.agentReply(conversationOf(handoverId), message.text),
        typing: (handoverId, typing) => fake.agentTyping(conversationOf(handoverId), typing),
        transfer: (handoverId, to) => fake.changeTeam(conversationOf(handoverId), { id: 12, name: to }),
        end: (handoverId) => fake.resolve(conversationOf(handoverId)),
        resendLast: () => fake.resend([...fake.deliveries].reverse().find((d) => d.body.includes('"sender":{"id":1,'))!),
        forge: async (handoverId) => {
          const body = JSON.stringify({
            event: 'message_created',
            id: 999_999,
            content: 'forged',
            message_type: 'outgoing',
            private: false,
            sender: { id: 1, name: 'Mallory', type: 'user' },
            conversation: { id: conversationOf(handoverId) },
          });
          return fake.resend({ body, headers: fake.sign(body, 'not-the-webhook-secret') });
        },
      },
      problems: () => fake.refused.filter((r) => r.status !== 503).map((r) => `${r.method} ${r.path}: ${r.status} ${r.reason}`),
      setDown(down) {
        fake.down = down;
      },
      setAgentsOnline(agentsOnline) {
        fake.agents = [
          ...Array.from({ length: agentsOnline }, (_, i) => ({ id: i + 1, name: `Agent ${i + 1}`, availability_status: 'online' as const })),
          { id: 99, name: 'Off', availability_status: 'offline' as const },
        ];
      },
      close: () => fake.close(),
    };
  },
});
