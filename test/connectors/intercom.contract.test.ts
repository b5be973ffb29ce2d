import { startFakeIntercom, type FakeIntercom } from '../fakes/intercom.js';
import { runConnectorContract, type ReceivedByHelpdesk } from './contract.js';

/** The text of a note or comment body as the agents read it (paragraphs as lines). */
function textOf(html: string): string {
  return html
    .replace(/<\/p>/g, '\n')
    .replace(/<[^>]*>/g, '')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\n$/, '');
}

function received(fake: FakeIntercom, handoverId: string): ReceivedByHelpdesk[] {
  const conversation = fake.conversationForHandover(handoverId);
  if (!conversation) return [];
  const out: ReceivedByHelpdesk[] = [];
  const byBot = (p: { author: { type: string; id: string } }) => p.author.type === 'admin' && p.author.id === fake.botAdminId;
  if (conversation.parts.some((p) => p.part_type === 'assignment' && byBot(p) && p.assigned_to?.type === 'team')) {
    const note = textOf(conversation.parts.find((p) => p.part_type === 'note')?.body ?? '');
    const [transcriptPart = '', detailsPart = ''] = note.split('\n\n');
    const transcript = transcriptPart
      .split('\n')
      .slice(1)
      .map((line) => ({ role: line.slice(0, line.indexOf(': ')), text: line.slice(line.indexOf(': ') + 2) }));
    const metadata = detailsPart.startsWith('Details:')
      ? Object.fromEntries(
          detailsPart
            .split('\n')
            .slice(1)
            .map((line) => [line.slice(0, line.indexOf(': ')), line.slice(line.indexOf(': ') + 2)]),
        )
      : {};
    out.push({ kind: 'handover.requested', transcript, metadata });
  }
  for (const part of conversation.parts) if (part.part_type === 'comment' && part.author.type === 'user') out.push({ kind: 'message', text: part.body ?? '' });
  if (conversation.parts.some((p) => p.part_type === 'close' && byBot(p))) out.push({ kind: 'ended' });
  return out;
}

runConnectorContract({
  name: 'intercom',
  capabilities: { userTyping: false, agentTyping: false, transfer: true, explicitJoin: true },
  async start() {
    const fake = await startFakeIntercom();
    const conversationOf = (handoverId: string) => {
      const conversation = fake.conversationForHandover(handoverId);
      if (!conversation) throw new Error(`no Intercom conversation for ${handoverId}`);
      return conversation.id;
    };
    return {
      type: 'intercom',
      config: {
        baseUrl: fake.url,
        accessToken: fake.accessToken,
        clientSecret: fake.clientSecret,
        adminId: fake.botAdminId,
        teamId: '501',
        teams: { billing: '502' },
      },
      secrets: [fake.accessToken, fake.clientSecret],
      connected(connector) {
        fake.webhookTarget = connector.inboundUrl;
      },
      received: (handoverId) => received(fake, handoverId),
      agent: {
        join: (handoverId, agent) => {
          const admin = { id: '7010', name: agent.name, email: 'agent@acme.test', away_mode_enabled: false, has_inbox_seat: true };
          if (!fake.admins.some((a) => a.id === admin.id)) fake.admins.push(admin);
          return fake.assign(conversationOf(handoverId), admin);
        },
        send: (handoverId, message) => fake.agentReply(conversationOf(handoverId), message.text),
        typing: async () => ({ status: 200, body: null }),
        transfer: (handoverId) => fake.moveToTeam(conversationOf(handoverId), '502'),
        end: (handoverId) => fake.closeConversation(conversationOf(handoverId)),
        resendLast: () => fake.resend([...fake.deliveries].reverse().find((d) => d.notification.topic === 'conversation.admin.replied')!.notification),
        forge: async (handoverId) => {
          const body = JSON.stringify({
            type: 'notification_event',
            id: 'notif_forged',
            topic: 'conversation.admin.replied',
            data: {
              item: {
                id: conversationOf(handoverId),
                conversation_parts: {
                  conversation_parts: [{ id: '99999', part_type: 'comment', body: '<p>forged</p>', author: { type: 'admin', id: '7002', name: 'Mallory' } }],
                },
              },
            },
          });
          return fake.post(body, fake.sign(body, 'not-the-client-secret'));
        },
      },
      problems: () => fake.refused.filter((r) => r.status !== 503).map((r) => `${r.method} ${r.path}: ${r.status} ${r.reason}`),
      setDown(down) {
        fake.down = down;
      },
      setAgentsOnline(agentsOnline) {
        const agents = Array.from({ length: agentsOnline }, (_, i) => ({
          id: String(7100 + i),
          name: `Agent ${i + 1}`,
          email: `agent${i}@acme.test`,
          away_mode_enabled: false,
          has_inbox_seat: true,
        }));
        fake.admins = [fake.admins[0]!, ...agents, { id: '7199', name: 'Away', email: 'away@acme.test', away_mode_enabled: true, has_inbox_seat: true }];
        fake.teams.get('501')!.admin_ids = [...agents.map((a) => Number(a.id)), 7199];
      },
      close: () => fake.close(),
    };
  },
});
