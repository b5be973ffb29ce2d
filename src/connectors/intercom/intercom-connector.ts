import type { Agent } from 'undici';
import { checkCall } from '../check-call.js';
import type { Connector, ConnectorDefinition, ConnectorSessions, OpenWork } from '../connector.js';
import { DeliveryError } from '../connector.js';
import { requireRef } from '../connector-helpers.js';
import { contactFor, intercomCall, type IntercomCall } from './intercom-api.js';
import { DEFAULT_OPENING_TEXT, intercomConfigSchema, type IntercomConfig } from './intercom-config.js';
import { transcriptNote, userReply } from './intercom-content.js';
import { reconcileConversation } from './intercom-stream.js';
import { setUpIntercom } from './intercom-setup.js';
import { handleIntercomInbound } from './intercom-webhook.js';

/** How far a start got, kept as the session's position so a retry goes on from there. */
type StartStep = 'opened' | 'noted' | 'assigned';

/**
 * Intercom through its Conversations API (docs/connectors/intercom.md). A handover finds or creates the
 * user's contact, opens a conversation as that contact, leaves the transcript as a note and assigns the
 * conversation to a team inbox, where agents take it. The user's messages are the contact's replies;
 * the user ending closes the conversation. Agents' replies, assignments and closing come back as
 * webhook notifications (intercom-webhook.ts).
 *
 * The conversation and the contact are kept in the handover's session as soon as the conversation
 * exists, with how far the start got: a retried start goes on in the same conversation. With
 * `reconcileIntervalMs`, each open conversation is also read for what notifications missed
 * (intercom-stream.ts).
 */
export function intercomConnectorDefinition(dispatcher: Agent): ConnectorDefinition<IntercomConfig> {
  return {
    type: 'intercom',
    configSchema: intercomConfigSchema,
    secretFields: ['accessToken', 'clientSecret'],
    urlFields: ['baseUrl'],
    create(config, deps): Connector {
      const call = intercomCall(dispatcher, config);
      const sessions = deps.sessions;
      const asAdmin = { type: 'admin', admin_id: config.adminId };
      const reconcileMs = sessions ? config.reconcileIntervalMs : undefined;
      const connector: Connector = {
        // No sendTyping: Intercom's API has no typing indicator, either way.
        async open(work, context) {
          const externalRef = await start(call, config, sessions, work, context.signal);
          // Read the conversation for what notifications miss, once it is with its team.
          if (reconcileMs !== undefined) await sessions?.save(work.handoverId, { openStream: true });
          return { externalRef };
        },
        async sendMessage(work, context) {
          const conversationId = requireRef(context, 'Intercom');
          const contactId = await contactOf(call, sessions, work.handoverId, conversationId, context.signal);
          const reply = userReply(work.message.text, work.message.attachments);
          await call(
            'POST',
            `/conversations/${encodeURIComponent(conversationId)}/reply`,
            { message_type: 'comment', type: 'user', intercom_user_id: contactId, ...reply },
            context.signal,
            { label: 'POST /conversations/:id/reply' },
          );
        },
        async end(_work, context) {
          await call(
            'POST',
            `/conversations/${encodeURIComponent(requireRef(context, 'Intercom'))}/parts`,
            { message_type: 'close', ...asAdmin },
            context.signal,
            {
              label: 'POST /conversations/:id/parts',
            },
          );
        },
        handleInbound(request) {
          return handleIntercomInbound(config, request);
        },
        check: (signal) =>
          checkCall("the app's admin (GET /me)", () => call('GET', '/me', undefined, signal), {
            credentials_rejected: 'accessToken refused: copy the access token from Developer Hub → your app → Authentication',
          }),
        setup: (context, signal) => setUpIntercom(call, config, context, signal),
        async availability(signal) {
          // Admins not away, in the team of the queue (`teams`, else `teamId`); without a team, all of them.
          const admins = await call<{ admins?: Array<{ id?: string; away_mode_enabled?: boolean; has_inbox_seat?: boolean }> }>(
            'GET',
            '/admins',
            undefined,
            signal,
          );
          if (!Array.isArray(admins.body?.admins)) throw new Error('the admins list is not an array');
          const online = new Set(
            admins.body.admins
              .filter((a) => a.id !== undefined && !a.away_mode_enabled && a.has_inbox_seat !== false && String(a.id) !== config.adminId)
              .map((a) => String(a.id)),
          );
          const byTeam = new Map<string, number>();
          const teamOnline = async (teamId: string) => {
            if (!byTeam.has(teamId)) {
              const team = await call<{ admin_ids?: Array<number | string> }>('GET', `/teams/${encodeURIComponent(teamId)}`, undefined, signal);
              byTeam.set(teamId, (team.body?.admin_ids ?? []).filter((a) => online.has(String(a))).length);
            }
            return byTeam.get(teamId)!;
          };
          const agentsOnline = config.teamId !== undefined ? await teamOnline(config.teamId) : online.size;
          const byQueue: Record<string, number> = {};
          for (const [queue, teamId] of Object.entries(config.teams ?? {})) byQueue[queue] = await teamOnline(teamId);
          return Object.keys(byQueue).length > 0 ? { agentsOnline, byQueue } : { agentsOnline };
        },
      };
      if (reconcileMs !== undefined) connector.pullStream = { read: (context) => reconcileConversation(call, config.adminId, context, reconcileMs) };
      return connector;
    },
  };
}

/** Opens the conversation (or goes on with the one an earlier try opened) and hands it to the team. */
async function start(
  call: IntercomCall,
  config: IntercomConfig,
  sessions: ConnectorSessions | undefined,
  work: OpenWork,
  signal: AbortSignal,
): Promise<string> {
  const earlier = await sessions?.load(work.handoverId);
  let conversationId = earlier?.externalId;
  let step = (earlier?.position ?? undefined) as StartStep | undefined;
  if (!conversationId) {
    const contactId = await contactFor(call, work.user, signal);
    const created = await call<{ conversation_id?: string | number }>(
      'POST',
      '/conversations',
      { from: { type: 'user', id: contactId }, body: config.openingText ?? DEFAULT_OPENING_TEXT },
      signal,
    );
    if (created.body?.conversation_id === undefined) throw new DeliveryError('Intercom returned no conversation_id', { retryable: true });
    conversationId = String(created.body.conversation_id);
    step = 'opened';
    await sessions?.save(work.handoverId, { externalId: conversationId, credential: contactId, position: step });
  }
  const path = `/conversations/${encodeURIComponent(conversationId)}`;
  const advance = async (next: StartStep) => {
    step = next;
    await sessions?.save(work.handoverId, { position: next });
  };
  if (step === 'opened') {
    await call(
      'POST',
      `${path}/reply`,
      { message_type: 'note', type: 'admin', admin_id: config.adminId, body: transcriptNote(work.handoverId, work.transcript, work.metadata) },
      signal,
      { label: 'POST /conversations/:id/reply' },
    );
    await advance('noted');
  }
  if (step === 'noted') {
    const teamId = teamFor(config, work);
    if (teamId !== undefined)
      await call('POST', `${path}/parts`, { message_type: 'assignment', type: 'team', admin_id: config.adminId, assignee_id: teamId }, signal, {
        label: 'POST /conversations/:id/parts',
      });
    await advance('assigned');
  }
  return conversationId;
}

/** Routing: `metadata.intercomTeamId` beats the queue's team (`teams`), which beats `teamId`. */
function teamFor(config: IntercomConfig, work: OpenWork): string | undefined {
  const fromMetadata = work.metadata.intercomTeamId;
  if ((typeof fromMetadata === 'string' || typeof fromMetadata === 'number') && /^[0-9]{1,20}$/.test(String(fromMetadata))) return String(fromMetadata);
  return config.teams?.[work.queue] ?? config.teamId;
}

/** The contact the conversation was opened for: from the session, else read from the conversation. */
async function contactOf(
  call: IntercomCall,
  sessions: ConnectorSessions | undefined,
  handoverId: string,
  conversationId: string,
  signal: AbortSignal,
): Promise<string> {
  const kept = (await sessions?.load(handoverId))?.credential;
  if (kept) return kept;
  const shown = await call<{ contacts?: { contacts?: Array<{ id?: string }> } }>(
    'GET',
    `/conversations/${encodeURIComponent(conversationId)}`,
    undefined,
    signal,
    { label: 'GET /conversations/:id' },
  );
  const contactId = shown.body?.contacts?.contacts?.[0]?.id;
  if (!contactId) throw new DeliveryError('the Intercom conversation names no contact', { retryable: false });
  return contactId;
}
