import { randomUUID } from 'node:crypto';
import {
  ActivityTypes,
  TurnContext,
  type Activity,
  type Attachment,
  type BotAdapter,
  type ConversationReference,
  type Middleware,
  type ResourceResponse,
} from 'botbuilder';
import type { BotEvent, EndReason, EventsOptions, HandoverClient } from 'handover-client';
import { HANDOFF_INITIATE, HANDOFF_STATUS, conversationKey, handoverRequest, type HandoffState } from './handoff-request.js';
import { MemoryHandoffStore, type HandoffStore, type LiveHandoff } from './handoff-store.js';

export interface HandoffMiddlewareOptions {
  /** The bot's handover client (its base URL, API key and retry policy). */
  client: HandoverClient;
  /** The adapter the middleware is used on: agent messages and `handoff.status` are sent through it, proactively. */
  adapter: BotAdapter;
  /** The bot: it receives each `handoff.status` as an incoming event activity, through `run`. An `ActivityHandler` is one. */
  bot: { run(context: TurnContext): Promise<void> };
  /** The bot's app id, for `continueConversationAsync` ('' for a bot without one, as under the Emulator). */
  botAppId?: string;
  /** The queue when the handoff context names none (`queue` or `skill`). Default `support`. */
  defaultQueue?: string;
  store?: HandoffStore;
  /**
   * How to run a proactive turn in a conversation. Default: `adapter.continueConversationAsync(botAppId, reference, logic)`,
   * which CloudAdapter implements; give your own for an adapter that continues conversations another way.
   */
  continueConversation?: (reference: Partial<ConversationReference>, logic: (context: TurnContext) => Promise<void>) => Promise<void>;
  /** Told of what the middleware could not do (an agent message it could not deliver, a relay refused). Default: console.error. */
  onError?: (error: unknown, what: string) => void;
}

/** Why a handover ended without a person having joined: `handoff.status` `failed` with this reason as its message. */
const ENDED_BY_PEOPLE: ReadonlySet<EndReason> = new Set(['agent_ended', 'bot_ended', 'user_ended']);

/**
 * Hands Bot Framework conversations over to people through the handover service, speaking the Bot
 * Framework handoff protocol with the bot:
 *
 * - the bot sends a `handoff.initiate` event (`EventFactory.createHandoffInitiation(context, { queue }, transcript)`):
 *   the middleware keeps it from the channel and asks for a handover with the transcript and context;
 * - while the handover is live, the user's messages and typing go to the agent, not to the bot;
 * - the agent's messages and typing are sent into the conversation, proactively;
 * - the bot receives `handoff.status` events: `accepted` when an agent joins, `failed` (with the reason
 *   as `message`) when nobody can take it, `completed` when it ends — and from then on it answers again.
 *
 * The agent's side arrives as the client's events: call `listen()` (the event stream), or pass each
 * verified webhook to `handleEvent()`.
 */
export class HandoffMiddleware implements Middleware {
  readonly #client: HandoverClient;
  readonly #bot: HandoffMiddlewareOptions['bot'];
  readonly #defaultQueue: string;
  readonly #store: HandoffStore;
  readonly #continue: NonNullable<HandoffMiddlewareOptions['continueConversation']>;
  readonly #onError: NonNullable<HandoffMiddlewareOptions['onError']>;

  constructor(options: HandoffMiddlewareOptions) {
    this.#client = options.client;
    this.#bot = options.bot;
    this.#defaultQueue = options.defaultQueue ?? 'support';
    this.#store = options.store ?? new MemoryHandoffStore();
    const adapter = options.adapter;
    const appId = options.botAppId ?? '';
    this.#continue = options.continueConversation ?? ((reference, logic) => adapter.continueConversationAsync(appId, reference, logic));
    this.#onError = options.onError ?? ((error, what) => console.error(`handoff: ${what}:`, error));
  }

  async onTurn(context: TurnContext, next: () => Promise<void>): Promise<void> {
    const activity = context.activity;
    const reference = TurnContext.getConversationReference(activity);
    const key = conversationKey(reference);
    const live = await this.#store.get(key);
    if (live?.handoverId && (await this.#relayFromUser(context, live))) return;

    // A handoff.initiate the bot sends is for the middleware, not for the channel.
    const refusals: string[] = [];
    context.onSendActivities(async (_context, activities, sendRest) => {
      const initiates = activities.map((a, i) => ({ a, i })).filter(({ a }) => a.type === ActivityTypes.Event && a.name === HANDOFF_INITIATE);
      if (initiates.length === 0) return sendRest();
      const rest = activities.filter((a) => !(a.type === ActivityTypes.Event && a.name === HANDOFF_INITIATE));
      const answers = new Map<number, ResourceResponse>();
      for (const { a, i } of initiates) answers.set(i, await this.#initiate(reference, a, refusals));
      // The array is the turn's own: the activities left in it are the ones sent (and given their ids).
      activities.splice(0, activities.length, ...rest);
      const sent = rest.length > 0 ? await sendRest() : [];
      let s = 0;
      return Array.from({ length: initiates.length + rest.length }, (_, i) => answers.get(i) ?? sent[s++] ?? { id: '' });
    });
    await next();
    // Told once the bot's turn is over, like any event from outside.
    for (const reason of refusals) await this.#sendStatus(reference, 'failed', { message: reason });
  }

  /** Follows the tenant's event stream and handles each event, until `signal` aborts (or the key stops working). */
  async listen(options: Pick<EventsOptions, 'signal' | 'positionStore' | 'onOpen' | 'reconnect' | 'after'> = {}): Promise<void> {
    for await (const event of this.#client.events(options)) {
      try {
        await this.handleEvent(event);
      } catch (error) {
        this.#onError(error, `event ${event.id} (${event.type})`);
      }
    }
  }

  /**
   * Handles one event from the agent's side (from the stream, a verified webhook or a poll). Answers
   * whether it was for a conversation this bot handed over. Throws when it could not be delivered: a
   * webhook route answers 5xx then, and the service sends it again.
   */
  async handleEvent(event: BotEvent): Promise<boolean> {
    const live = await this.#store.get(event.conversationId);
    if (!live || (live.handoverId && live.handoverId !== event.handoverId)) return false;
    switch (event.type) {
      case 'handover.accepted':
        if (live.accepted) return true; // a repeat
        await this.#store.set({ ...live, handoverId: event.handoverId, accepted: true });
        await this.#sendStatus(live.reference, 'accepted', { agent: event.data.agent });
        return true;
      case 'message.created': {
        // Web links only: the service passes no other on, and a chat client must never be handed a script link.
        const attachments = event.data.message.attachments
          .filter((a) => /^https?:\/\//i.test(a.url))
          .map((a) => ({
            contentType: a.contentType ?? 'application/octet-stream',
            contentUrl: a.url,
            ...(a.name ? { name: a.name } : {}),
          }));
        await this.#continue(live.reference, (context) =>
          sendIntoConversation(context, { type: ActivityTypes.Message, text: event.data.message.text, ...(attachments.length > 0 ? { attachments } : {}) }),
        );
        return true;
      }
      case 'agent.typing':
        if (event.data.typing) await this.#continue(live.reference, (context) => sendIntoConversation(context, { type: ActivityTypes.Typing }));
        return true;
      case 'handover.ended': {
        await this.#store.delete(live.conversationId);
        const reason = event.data.reason;
        if (live.accepted || ENDED_BY_PEOPLE.has(reason)) await this.#sendStatus(live.reference, 'completed', { message: reason });
        else await this.#sendStatus(live.reference, 'failed', { message: reason });
        return true;
      }
      default:
        // handover.queued, queue.updated, handover.transferred: nothing the protocol has a status for.
        return true;
    }
  }

  /** Whether the conversation is with a person now (asked for, waiting, or with an agent). */
  async isHandedOver(context: TurnContext): Promise<boolean> {
    return (await this.#store.get(conversationKey(TurnContext.getConversationReference(context.activity)))) !== undefined;
  }

  async #initiate(reference: Partial<ConversationReference>, initiate: Partial<Activity>, refusals: string[]): Promise<ResourceResponse> {
    const key = conversationKey(reference);
    const request = handoverRequest(initiate, reference, this.#defaultQueue);
    // Known before the service answers: an agent may accept before createHandover returns.
    await this.#store.set({ conversationId: key, handoverId: '', reference, accepted: false });
    try {
      const { handover } = await this.#client.createHandover(request);
      const now = await this.#store.get(key);
      if (now) await this.#store.set({ ...now, handoverId: handover.id });
      return { id: handover.id };
    } catch (error) {
      await this.#store.delete(key);
      // A refusal (409 queue_closed, no_agents_available, queue_full, …) is the protocol's `failed`.
      if (isServiceError(error)) refusals.push(error.code);
      else throw error;
      return { id: '' };
    }
  }

  /** The user's side while a person has the conversation: relayed, and the bot does not see it. */
  async #relayFromUser(context: TurnContext, live: LiveHandoff): Promise<boolean> {
    const activity = context.activity;
    if (activity.from?.id !== live.reference.user?.id && activity.from?.role !== 'user') return false;
    try {
      if (activity.type === ActivityTypes.Message) {
        const attachments = (activity.attachments ?? []).flatMap(userAttachment);
        await this.#client.sendMessage(live.handoverId, {
          ...(activity.id ? { id: activity.id.slice(0, 256) } : {}),
          text: activity.text ?? '',
          ...(attachments.length > 0 ? { attachments } : {}),
        });
        return true;
      }
      if (activity.type === ActivityTypes.Typing) {
        await this.#client.sendTyping(live.handoverId, true);
        return true;
      }
      if (activity.type === ActivityTypes.EndOfConversation) {
        // The user left: the handover ends, and handover.ended brings `completed`.
        await this.#client.endHandover(live.handoverId, 'user_ended');
        return true;
      }
      return false;
    } catch (error) {
      if (!isServiceError(error) || (error.status !== 409 && error.status !== 404)) throw error;
      // The handover is over and its ending was missed (say, a bot restarted without a stored stream position): the bot answers again.
      this.#onError(error, `relaying to ${live.handoverId}`);
      await this.#store.delete(live.conversationId);
      return false;
    }
  }

  async #sendStatus(reference: Partial<ConversationReference>, state: HandoffState, extra: { message?: string; agent?: unknown }): Promise<void> {
    const status = TurnContext.applyConversationReference(
      { type: ActivityTypes.Event, name: HANDOFF_STATUS, timestamp: new Date(), value: { state, ...extra } },
      reference,
      true,
    );
    // An id of its own: applied as incoming, the reference gave it the id of the user's message that
    // asked for the handoff, and a bot that drops activities it has seen by id would drop every status.
    status.id = randomUUID();
    await this.#continue(reference, async (context) => {
      // The bot's turn for the status: in the proactive turn's context (its connector client, its state cache).
      const statusContext = new TurnContext(context.adapter, status);
      for (const [key, value] of context.turnState) statusContext.turnState.set(key, value);
      // What the bot says in this turn goes into the conversation as new activities: the status event's
      // id is one the channel never saw, so it must not become their replyToId.
      asNewActivities(statusContext);
      await this.#bot.run(statusContext);
      for (const [key, value] of statusContext.turnState) context.turnState.set(key, value);
    });
  }
}

/** A HandoverError from the client (checked by shape: the bot and this package may load different copies of the client). */
function isServiceError(error: unknown): error is Error & { code: string; status: number } {
  return (
    error instanceof Error &&
    error.name === 'HandoverError' &&
    typeof (error as { code?: unknown }).code === 'string' &&
    typeof (error as { status?: unknown }).status === 'number'
  );
}

/**
 * Sends an activity into the conversation of a proactive turn as a new activity, not as a reply. The
 * turn's own activity is the adapter's continuation event, whose id (a random one, on CloudAdapter)
 * `sendActivity` would make the `replyToId`, and the Bot Connector would be asked to reply to an
 * activity the conversation never had (`POST /v3/conversations/{id}/activities/{replyToId}`), which a
 * channel may refuse. Without it the adapter sends to the conversation (`POST …/activities`).
 */
async function sendIntoConversation(context: TurnContext, activity: Partial<Activity>): Promise<void> {
  asNewActivities(context);
  await context.sendActivity(activity);
}

/** Everything the turn sends goes as new activities of the conversation (no `replyToId`). */
function asNewActivities(context: TurnContext): void {
  context.onSendActivities(async (_context, activities, next) => {
    for (const sent of activities) delete sent.replyToId;
    return next();
  });
}

/** A Teams file sent in a personal chat: its `contentUrl` is the file's SharePoint page, which needs a sign-in. */
const TEAMS_FILE_DOWNLOAD = 'application/vnd.microsoft.teams.file.download.info';

/**
 * A file the user sent, as the agent can open it: its `contentUrl`, or for a Teams file its
 * `content.downloadUrl` (pre-authorised, short-lived). Only http(s) links are relayed.
 */
function userAttachment(a: Attachment): Array<{ url: string; name?: string; contentType?: string }> {
  if (a.contentType === TEAMS_FILE_DOWNLOAD) {
    const downloadUrl = (a.content as { downloadUrl?: unknown } | undefined)?.downloadUrl;
    if (typeof downloadUrl !== 'string' || !/^https?:/.test(downloadUrl)) return [];
    return [{ url: downloadUrl, ...(a.name ? { name: a.name } : {}) }];
  }
  if (typeof a.contentUrl !== 'string' || !/^https?:/.test(a.contentUrl)) return [];
  return [{ url: a.contentUrl, ...(a.name ? { name: a.name } : {}), ...(a.contentType ? { contentType: a.contentType } : {}) }];
}
