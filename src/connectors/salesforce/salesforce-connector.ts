import { createHash, randomUUID } from 'node:crypto';
import { checkCall } from '../check-call.js';
import type { Agent } from 'undici';
import { DeliveryError, type Connector, type ConnectorDefinition, type ConnectorSession, type OpenWork } from '../connector.js';
import { attachmentLine, readKeptFiles } from '../connector-helpers.js';
import { SalesforceApi } from './salesforce-api.js';
import { salesforceConfigSchema, type SalesforceConfig } from './salesforce-config.js';
import { LOST_TOKEN, noteRenewal, renewalDueAt } from './salesforce-auth.js';
import { readStream } from './salesforce-stream.js';
import { createStreamAgent, type OutboundPolicy } from '../../outbound/index.js';

/**
 * Salesforce Messaging for In-App and Web (docs/connectors/salesforce.md). We act as the end user's
 * client: one unauthenticated access token per handover (its own subject), a conversation created
 * with routing attributes, the user's messages and typing sent as entries, and everything from the
 * agent side read from the conversation's event stream (a pull stream held by one instance). A transfer
 * inside Salesforce shows as the next agent joining (`agent.joined`), never as `handover.transferred`.
 */
export function salesforceConnectorDefinition(dispatcher: Agent, policy: OutboundPolicy): ConnectorDefinition<SalesforceConfig> {
  // Streams stay open for the whole handover: they get a pool of their own, so they never take the
  // connections deliveries need. Connects are bounded (and guarded); the idle bound is set per stream.
  let streams: Agent | null = null;
  const streamDispatcher = () => (streams ??= createStreamAgent(policy));
  return {
    type: 'salesforce',
    configSchema: salesforceConfigSchema,
    // No credential in the config: the per-conversation tokens are secrets, kept in connector_sessions.
    secretFields: [],
    urlFields: ['baseUrl'],
    create(config, deps): Connector {
      const api = new SalesforceApi(config, dispatcher, streamDispatcher);
      const sessions = deps.sessions;
      if (!sessions) throw new Error('the salesforce connector needs connector sessions');

      /**
       * Runs a call with the handover's token, renewed first when its expiry is near; on 401 renews it
       * once (same subject) and retries.
       */
      async function withToken(handoverId: string, signal: AbortSignal, call: (token: string, conversationId: string) => Promise<void>): Promise<void> {
        const session = await sessions!.load(handoverId);
        if (!session?.credential) throw new DeliveryError('no Salesforce conversation was opened for this handover', { retryable: false });
        const due = renewalDueAt(session.credential);
        if (due !== null && Date.now() >= due) {
          session.credential = await renew(session, signal);
          await sessions!.save(handoverId, { credential: session.credential });
        }
        try {
          await call(session.credential, session.externalId);
        } catch (err) {
          if (!(err instanceof DeliveryError) || err.statusCode !== 401) throw err;
          const renewed = await renew(session, signal);
          await sessions!.save(handoverId, { credential: renewed });
          await call(renewed, session.externalId);
        }
      }

      async function renew(session: ConnectorSession, signal: AbortSignal): Promise<string> {
        try {
          const renewed = (await api.continuationToken(session.credential ?? '', signal)).accessToken;
          noteRenewal(session.credential ?? '', renewed);
          return renewed;
        } catch (err) {
          if (err instanceof DeliveryError && (err.statusCode === 401 || err.statusCode === 403)) {
            deps.log.warn({ status: err.statusCode }, 'Salesforce refused to renew a conversation token');
            throw new DeliveryError(LOST_TOKEN, { retryable: false, statusCode: err.statusCode, cause: err });
          }
          throw err;
        }
      }

      async function open(work: OpenWork, signal: AbortSignal): Promise<{ externalRef: string }> {
        // The token and the conversation id are stored before the create, so a retry after a lost
        // answer reuses them instead of opening a second conversation.
        let session = await sessions!.load(work.handoverId);
        if (!session?.credential) {
          const token = await api.accessToken(signal);
          session = { externalId: randomUUID(), credential: token.accessToken, position: token.lastEventId };
          await sessions!.save(work.handoverId, session);
        }
        const conversationId = session.externalId;
        try {
          await withToken(work.handoverId, signal, (token) => api.createConversation(token, conversationId, routingAttributesOf(config, work), signal));
        } catch (err) {
          // A retry of a create that went through: the conversation is there already.
          if (!(err instanceof DeliveryError && err.statusCode === 409)) throw err;
        }
        const transcript = transcriptText(work.transcript);
        if (transcript)
          await withToken(work.handoverId, signal, (token, id) => api.sendMessage(token, id, uuidFrom(`${work.eventId}:transcript`), transcript, signal));
        await sessions!.save(work.handoverId, { openStream: true });
        return { externalRef: conversationId };
      }

      return {
        open: (work, context) => open(work, context.signal),
        async sendMessage(work, context) {
          // Files this service keeps go as file entries (the first carries the text); links given
          // as such, and a file no longer kept, as lines of the text.
          const { files, links } = await readKeptFiles(work.message.attachments, context);
          const text = [work.message.text, ...links.map(attachmentLine)].filter((t) => t !== '').join('\n');
          if (files.length === 0) {
            await withToken(work.handoverId, context.signal, (token, id) => api.sendMessage(token, id, uuidFrom(work.message.id), text, context.signal));
            return;
          }
          for (const [i, file] of files.entries()) {
            // Ids derived from the message's own, so a retried delivery sends the same entries.
            const entry = {
              messageId: uuidFrom(i === 0 ? work.message.id : `${work.message.id}:file:${i}`),
              fileId: uuidFrom(`${work.message.id}:fileId:${i}`),
              text: i === 0 ? text : '',
            };
            await withToken(work.handoverId, context.signal, (token, id) => api.sendFile(token, id, entry, file, context.signal));
          }
        },
        async sendTyping(work, context) {
          await withToken(work.handoverId, context.signal, (token, id) => api.sendTyping(token, id, uuidFrom(work.eventId), work.typing, context.signal));
        },
        async end(work, context) {
          try {
            await withToken(work.handoverId, context.signal, (token, id) => api.endConversation(token, id, context.signal));
          } catch (err) {
            // Already closed on the Salesforce side, or never opened: nothing left to end.
            if (err instanceof DeliveryError && (err.statusCode === 404 || err.statusCode === 410 || !err.retryable)) return;
            throw err;
          }
        },
        pullStream: {
          read: (context) => readStream(api, config, deps, context),
        },
        // The token exchange every handover starts with: it names the org and the deployment.
        check: (signal) =>
          checkCall(
            `the token exchange for deployment ${config.esDeveloperName} (POST …/authorization/unauthenticated/access-token)`,
            () => api.accessToken(signal),
            {
              credentials_rejected: 'the org refused the deployment: check orgId and that the deployment is published for unauthenticated users',
              not_found: 'no such endpoint: baseUrl must be the SCRT URL of the org (Setup → Embedded Service Deployments → code snippet)',
              misconfigured: "the org refused orgId or esDeveloperName: copy both from the deployment's code snippet",
            },
          ),
      };
    },
  };
}

function routingAttributesOf(config: SalesforceConfig, work: OpenWork): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, source] of Object.entries(config.routingAttributes ?? {})) {
    let value: unknown;
    if (source.startsWith('metadata.')) value = work.metadata[source.slice('metadata.'.length)];
    else if (source.startsWith('user.')) value = work.user[source.slice('user.'.length) as keyof typeof work.user];
    else if (source === 'conversationId') value = work.conversationId;
    else if (source === 'handoverId') value = work.handoverId;
    else if (source === 'queue') value = work.queue;
    if (value === undefined || value === null) continue;
    out[name] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return out;
}

function transcriptText(transcript: Array<{ role: string; text: string }>): string {
  if (transcript.length === 0) return '';
  return ['Conversation with the bot so far:', ...transcript.map((t) => `${t.role === 'bot' ? 'Bot' : 'User'}: ${t.text}`)].join('\n');
}

/**
 * A stable lowercase UUID (version 4 layout) derived from one of our ids, so a retried call carries the
 * same entry id as the first try.
 */
export function uuidFrom(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  h[6] = (h[6]! & 0x0f) | 0x40;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
