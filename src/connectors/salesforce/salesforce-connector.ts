import { createHash, randomUUID } from 'node:crypto';
import { checkCall } from '../check-call.js';
import type { Agent } from 'undici';
import {
  DeliveryError,
  StreamLostError,
  type Connector,
  type ConnectorDefinition,
  type ConnectorDeps,
  type ConnectorSession,
  type OpenWork,
  type StreamContext,
} from '../connector.js';
import { attachmentLine, readKeptFiles } from '../connector-helpers.js';
import { SalesforceApi } from './salesforce-api.js';
import { salesforceConfigSchema, type SalesforceConfig } from './salesforce-config.js';
import { readServerSentEvents, toInboundEvents } from './salesforce-events.js';
import { renewalDueAt } from './salesforce-token.js';
import { createStreamAgent, type OutboundPolicy } from '../../outbound/index.js';

/** The longest delay setTimeout takes (longer ones fire at once). */
const MAX_TIMER_MS = 2_147_483_647;

const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

const LOST_TOKEN = 'Salesforce no longer accepts this conversation’s access token and refused to renew it; the conversation cannot be reached any more.';

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
          return (await api.continuationToken(session.credential ?? '', signal)).accessToken;
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

/**
 * One connection of the conversation's event stream: resume after the stored position, apply each
 * event (with its id as the new position) through the service, return when the connection ends.
 */
async function readStream(api: SalesforceApi, config: SalesforceConfig, deps: ConnectorDeps, context: StreamContext): Promise<void> {
  const idleTimeoutMs = config.streamIdleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const open = (token: string) => api.openStream(token, context.session.position, { timeoutMs: deps.timeoutMs, idleTimeoutMs, signal: context.signal });
  let token = context.session.credential;
  if (!token) throw new StreamLostError('No Salesforce access token is stored for this conversation.');
  const renewToken = async (current: string): Promise<string> => {
    let renewed: string;
    try {
      renewed = (await api.continuationToken(current, context.signal)).accessToken;
    } catch (err) {
      if (err instanceof DeliveryError && (err.statusCode === 401 || err.statusCode === 403)) throw new StreamLostError(LOST_TOKEN, { cause: err });
      throw err;
    }
    await context.saveCredential(renewed);
    return renewed;
  };
  const due = renewalDueAt(token);
  if (due !== null && Date.now() >= due) token = await renewToken(token);
  let response = await open(token);
  if (response.status === 401) {
    response.body.destroy();
    token = await renewToken(token);
    response = await open(token);
    if (response.status === 401) {
      response.body.destroy();
      throw new StreamLostError(LOST_TOKEN);
    }
  }
  if (response.status !== 200) {
    response.body.destroy();
    // The conversation is gone or no longer ours to read: retrying cannot bring it back.
    if (response.status === 403 || response.status === 404 || response.status === 410) {
      throw new StreamLostError(`Salesforce answered ${response.status} to the event stream request: the conversation can no longer be followed.`);
    }
    // Reconnected later, no sooner than the answer's Retry-After asks.
    throw new DeliveryError(`Salesforce answered ${response.status} to the event stream request`, {
      retryable: true,
      statusCode: response.status,
      retryAfterMs: response.retryAfterMs,
    });
  }
  let last = context.session.position;
  // While the stream is held, its holder renews the token ahead of expiry: a quiet conversation makes
  // no other call that would, and a token past its expiry cannot be continued.
  let renewal: NodeJS.Timeout | undefined;
  const scheduleRenewal = (current: string) => {
    const at = renewalDueAt(current);
    // setTimeout takes at most 2^31 - 1 ms (longer fires at once): a token valid longer is renewed when
    // the stream reconnects or a delivery finds it due.
    if (at === null || at - Date.now() > MAX_TIMER_MS) return;
    renewal = setTimeout(
      () => {
        renewToken(current).then(
          (renewed) => {
            token = renewed;
            if (!context.signal.aborted) scheduleRenewal(renewed);
          },
          (err: unknown) => {
            deps.log.warn(
              { err, handoverId: context.handoverId },
              'renewing the Salesforce token ahead of its expiry failed; the stream will renew it when it reconnects',
            );
            // Reconnecting renews (or finds the token lost and ends the handover with a reason); the stream
            // ends with this cause, not an anonymous "request aborted".
            response.body.destroy(new Error('renewing the Salesforce token ahead of its expiry failed', { cause: err }));
          },
        );
      },
      Math.max(0, at - Date.now()),
    );
    renewal.unref();
  };
  scheduleRenewal(token);
  try {
    for await (const sse of readServerSentEvents(response.body)) {
      if (!sse.id || sse.id === last) continue;
      await context.apply(sse.id, toInboundEvents(sse, context.handoverId, context.session.externalId));
      last = sse.id;
      context.session.position = sse.id;
    }
  } catch (err) {
    // Silent longer than the idle bound: reconnect, as after a drop.
    if ((err as { code?: string }).code === 'UND_ERR_BODY_TIMEOUT') {
      deps.log.debug({ handoverId: context.handoverId }, 'the Salesforce stream was idle too long; reconnecting');
      return;
    }
    throw err;
  } finally {
    clearTimeout(renewal);
    response.body.destroy();
  }
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
