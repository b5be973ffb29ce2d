import { generateKeyPairSync } from 'node:crypto';
import { startFakeFreshchat, type FakeFreshchat } from '../fakes/freshchat.js';
import { runConnectorContract, type ReceivedByHelpdesk } from './contract.js';

function received(fake: FakeFreshchat, handoverId: string): ReceivedByHelpdesk[] {
  const conversation = fake.conversationForHandover(handoverId);
  if (!conversation) return [];
  const out: ReceivedByHelpdesk[] = [];
  if (conversation.updates.some((u) => u.assigned_group_id !== undefined)) {
    const note = String(conversation.messages.find((m) => m.message_type === 'private')?.message_parts[0]?.text?.content ?? '');
    const [transcriptPart = '', detailsPart = ''] = note.split('\n\n');
    const lines = (part: string) =>
      part
        .split('\n')
        .slice(1)
        .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)] as const);
    const transcript = lines(transcriptPart).map(([role, text]) => ({ role, text }));
    const metadata = detailsPart.startsWith('Details:') ? Object.fromEntries(lines(detailsPart)) : {};
    out.push({ kind: 'handover.requested', transcript, metadata });
  }
  // The user's messages after the opening one.
  for (const message of conversation.messages.filter((m) => m.actor_type === 'user').slice(1))
    out.push({ kind: 'message', text: String(message.message_parts[0]?.text?.content ?? '') });
  if (conversation.updates.some((u) => u.status === 'resolved')) out.push({ kind: 'ended' });
  return out;
}

runConnectorContract({
  name: 'freshchat',
  capabilities: { userTyping: false, agentTyping: false, transfer: true, explicitJoin: false },
  async start() {
    const fake = await startFakeFreshchat();
    const conversationOf = (handoverId: string) => {
      const conversation = fake.conversationForHandover(handoverId);
      if (!conversation) throw new Error(`no Freshchat conversation for ${handoverId}`);
      return conversation.id;
    };
    return {
      type: 'freshchat',
      config: {
        baseUrl: fake.url,
        apiToken: fake.apiToken,
        webhookPublicKey: fake.publicKeyPem,
        appId: fake.appId,
        channelId: fake.channelId,
        agentId: fake.botAgentId,
        groupId: 'grp-support',
        groups: { billing: 'grp-billing' },
      },
      secrets: [fake.apiToken],
      connected(connector) {
        fake.webhookTarget = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        join: (handoverId, agent) => {
          const joining = { id: `agent-${agent.id}`, first_name: agent.name, email: 'agent@acme.test' };
          if (!fake.agents.some((a) => a.id === joining.id)) fake.agents.push(joining);
          return fake.assign(conversationOf(handoverId), joining);
        },
        send: (handoverId, message) => fake.agentReply(conversationOf(handoverId), message.text),
        typing: async () => ({ status: 200, body: null }),
        transfer: (handoverId) => fake.moveToGroup(conversationOf(handoverId), 'grp-billing'),
        end: (handoverId) => fake.resolve(conversationOf(handoverId)),
        resendLast: () =>
          fake.resend([...fake.deliveries].reverse().find((d) => d.body.includes('"actor_type":"agent"') && d.body.includes('message_create'))!),
        forge: async (handoverId) => {
          const body = JSON.stringify({
            actor: { actor_type: 'agent', actor_id: 'mallory' },
            action: 'message_create',
            action_time: new Date().toISOString(),
            data: {
              message: {
                id: `forged-${Date.now()}`,
                conversation_id: conversationOf(handoverId),
                actor_type: 'agent',
                actor_id: 'mallory',
                message_type: 'normal',
                message_parts: [{ text: { content: 'forged' } }],
              },
            },
          });
          // Signed with a key that is not Freshchat's.
          return fake.post(body, fake.sign(body, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
        },
      },
      problems: () => fake.refused.filter((r) => r.status !== 503).map((r) => `${r.method} ${r.path}: ${r.status} ${r.reason}`),
      setDown(down) {
        fake.down = down;
      },
      setAgentsOnline(agentsOnline) {
        // The connector's own agent never counts; everyone else is made unavailable, then n available ones added.
        const others = fake.agents
          .filter((a) => !a.id.startsWith('online-'))
          .map((a) => (a.id === fake.botAgentId ? a : { ...a, availability_status: 'UNAVAILABLE' as const }));
        const online = Array.from({ length: agentsOnline }, (_, i) => ({
          id: `online-${i + 1}`,
          first_name: `Agent ${i + 1}`,
          email: `agent${i + 1}@acme.test`,
          availability_status: 'AVAILABLE' as const,
          is_deactivated: false,
          groups: ['grp-support', 'grp-billing'],
        }));
        fake.agents = [...others, ...online];
      },
      close: () => fake.close(),
    };
  },
});
