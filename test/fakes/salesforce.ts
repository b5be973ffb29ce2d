import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A Salesforce Messaging for In-App and Web org, as far as a custom client sees it: the SCRT REST paths
 * (access token, continuation token, conversation, message, entry, close) and the SSE event stream
 * (`/eventrouter/v1/sse`) with event ids, the real event names and `data` shapes (`entryPayload` as a JSON
 * string), replay after `Last-Event-ID`, and the end user's own messages echoed back. Tokens look like
 * JWTs and are checked (signature, expiry, subject). A token past its `exp` is refused everywhere, the
 * continuation-token call included: renewing is only possible before expiry. `X-Org-Id` and the token
 * request take the 15-character org id. Written from the public API reference. The end user's place in
 * the queue is a conversation entry of its own, `entryType: "QueuePosition"` with `position` in its
 * payload, "emitted when the end user's position in the agent queue changes" (Salesforce's Messaging
 * for In-App SDK reference: ConversationEntryType.QueuePosition, EntryPayload.QueuePositionPayload);
 * the routing result's `estimatedWaitTime` carries only `estimatedWaitTimeInSeconds` and
 * `isEWTRequested`. The stream's name for the queue position event is not in the references read: it
 * is sent here as `CONVERSATION_QUEUE_POSITION`, after the other events' names, and the connector
 * reads the entry by its type.
 *
 * The end user's files: `POST …/conversation/{id}/file` as `multipart/form-data`, a `messageEntry` part
 * (JSON: `esDeveloperName`, `message: {id, fileId, text?}`, ids UUIDs) and the file as `fileData` (the
 * API reference's file upload; the part names as Salesforce's sample clients send them). Its echo on the
 * stream is a StaticContentMessage of `formatType: "Attachments"` with `attachments: [{id, name, mimeType,
 * url}]`, the shape agents' files arrive in.
 *
 * The test plays the agent with small methods (`agentJoins`, `agentSays`, ...) and reads what the org
 * received (`userMessages`, `typing`, `closed`, stream counts), so a contract suite can drive it.
 */
export interface FakeConversation {
  id: string;
  subject: string;
  esDeveloperName: string;
  routingAttributes: Record<string, unknown>;
  events: Array<{ id: number; event: string; data: string }>;
  /** Every message POST that was accepted, in arrival order (retries included). */
  messagesReceived: Array<{ id: string; text: string }>;
  /** Every file entry accepted (`…/conversation/{id}/file`), in arrival order (retries included). */
  filesReceived: Array<{ id: string; fileId: string; text: string; name: string; type: string; bytes: Buffer }>;
  typingReceived: boolean[];
  closed: boolean;
  deleteCalls: number;
  openStreams: Set<ServerResponse>;
  maxConcurrentStreams: number;
  /** The Last-Event-ID of every stream connect, in order. */
  connects: Array<string | null>;
}

export interface FakeSalesforce {
  url: string;
  orgId: string;
  esDeveloperName: string;
  conversations: Map<string, FakeConversation>;
  /** The conversation opened last (tests open one at a time). */
  latest(): FakeConversation | undefined;
  waitFor<T>(fn: () => T | undefined | null | false, what: string, timeoutMs?: number): Promise<T>;

  // Acting as the agent side.
  agentJoins(conversationId: string, agent?: { subject: string; name: string }): void;
  agentLeaves(conversationId: string, agent?: { subject: string; name: string }): void;
  agentSays(conversationId: string, text: string, agent?: { subject: string; name: string }): void;
  /** The agent sends a file: a StaticContentMessage of `formatType: "Attachments"` (its `{id, name, mimeType, url}`). */
  agentSendsFile(
    conversationId: string,
    file: { name: string; mimeType: string },
    text?: string,
    agent?: { subject: string; name: string },
  ): { id: string; name: string; mimeType: string; url: string };
  agentTyping(conversationId: string, typing: boolean): void;
  /** The agent ends the session: participant removed, then session status Ended by Agent. */
  agentEnds(conversationId: string): void;
  /**
   * A RoutingResult entry. Its documented wait field is `estimatedWaitTime: {estimatedWaitTimeInSeconds,
   * isEWTRequested}` (no queue position in it).
   */
  routingResult(
    conversationId: string,
    result: { failureType?: string; failureReason?: string; estimatedWaitTime?: { estimatedWaitTimeInSeconds: number | null; isEWTRequested: boolean } },
  ): void;
  /** A QueuePosition entry: the end user's place in the agent queue changed. */
  queuePosition(conversationId: string, position: number): void;
  /** An event type this client does not know (Salesforce adds new ones). */
  unknownEvent(conversationId: string): void;

  // Failures.
  /** Every token issued so far answers 401 from now on (continuation still works unless refused). */
  expireTokens(): void;
  /** Continuation-token calls answer 401 (the conversation is lost). */
  refuseRenewal: boolean;
  /** Cuts every open stream of the conversation mid-way (the client must reconnect). */
  dropStreams(conversationId: string): void;
  /** Sends the conversation's last event again, same id (as a stream resumed from an older id would). */
  replayLast(conversationId: string): void;
  /** While true every call answers 503 (an outage). */
  down: boolean;
  /** Every access token handed out (credentials that must never be stored in clear). */
  issuedTokens(): string[];
  /** Continuation tokens issued. */
  renewals: number;
  /** Requests answered 4xx, with why (must stay empty in a run that expects none). */
  refused: Array<{ method: string; path: string; status: number; why: string }>;

  // What the org received.
  /** Texts of the user's messages, each message id once, in order of first arrival. */
  userMessages(conversationId: string): string[];
  close(): Promise<void>;
}

const SIGNING_KEY = randomUUID();
const uuidV4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const defaultAgent = { subject: '005xx000001AgEnT', name: 'Ada Agent' };

function b64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

export async function startFakeSalesforce(
  options: {
    orgId?: string;
    esDeveloperName?: string;
    pingMs?: number;
    tokenTtlSeconds?: number;
    /** A continuation token expires when the token it continues does (a new `jti`, the same `exp`), not later. */
    continuationKeepsExpiry?: boolean;
  } = {},
): Promise<FakeSalesforce> {
  const tokenTtlSeconds = options.tokenTtlSeconds ?? 6 * 3600;
  const orgId = options.orgId ?? '00Dxx0000001gPL';
  const esDeveloperName = options.esDeveloperName ?? 'Handover_Custom_Client';
  const conversations = new Map<string, FakeConversation>();
  /** token → its subject and whether it still works */
  const tokens = new Map<string, { subject: string; expired: boolean; expiresAt: number }>();
  const sockets = new Set<Socket>();
  let nextEventId = 1;
  let latestId: string | undefined;

  function issueToken(subject: string, expiresAtSeconds?: number): string {
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const iat = Math.floor(Date.now() / 1000);
    const exp = expiresAtSeconds ?? iat + tokenTtlSeconds;
    const payload = b64url(JSON.stringify({ sub: subject, orgId, iat, exp, jti: randomUUID() }));
    const signature = b64url(createHmac('sha256', SIGNING_KEY).update(`${header}.${payload}`).digest());
    const token = `${header}.${payload}.${signature}`;
    tokens.set(token, { subject, expired: false, expiresAt: exp * 1000 });
    return token;
  }

  /**
   * The token's subject if the Authorization header carries a genuine token that has not reached its
   * `exp`; tokens marked expired by `expireTokens` only when allowed (the continuation call).
   */
  function authenticate(req: IncomingMessage, allowExpired = false): { subject: string } | { status: number; why: string } {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer (\S+)$/.exec(header);
    if (!match) return { status: 401, why: 'no bearer token' };
    const token = match[1]!;
    const parts = token.split('.');
    if (parts.length !== 3) return { status: 401, why: 'not a JWT' };
    const expected = createHmac('sha256', SIGNING_KEY).update(`${parts[0]}.${parts[1]}`).digest();
    const given = Buffer.from(parts[2]!, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { status: 401, why: 'bad signature' };
    const known = tokens.get(token);
    if (!known) return { status: 401, why: 'unknown token' };
    if (Date.now() >= known.expiresAt) return { status: 401, why: 'token past its exp' };
    if (known.expired && !allowExpired) return { status: 401, why: 'token expired' };
    return { subject: known.subject };
  }

  function addEvent(conversation: FakeConversation, event: string, data: Record<string, unknown>): void {
    const item = { id: nextEventId++, event, data: JSON.stringify(data) };
    conversation.events.push(item);
    for (const res of conversation.openStreams) res.write(frame(item));
  }

  function frame(item: { id: number; event: string; data: string }): string {
    return `id: ${item.id}\nevent: ${item.event}\ndata: ${item.data}\n\n`;
  }

  function entryData(
    conversation: FakeConversation,
    entry: { entryType: string; payload: Record<string, unknown>; sender: { role: string; subject: string; appType: string }; displayName: string },
  ): Record<string, unknown> {
    const identifier = randomUUID();
    return {
      channelPlatformKey: 'fake-platform-key',
      channelType: 'embedded_messaging',
      channelAddressIdentifier: '0Mjxx0000000001',
      conversationId: conversation.id,
      conversationEntry: {
        senderDisplayName: entry.displayName,
        identifier,
        entryType: entry.entryType,
        entryPayload: JSON.stringify({ entryType: entry.entryType, id: identifier, ...entry.payload }),
        sender: entry.sender,
        transcriptedTimestamp: Date.now(),
        clientTimestamp: Date.now(),
        clientDuration: 0,
        relatedRecords: [],
      },
    };
  }

  const agentSender = (a: { subject: string }) => ({ role: 'Agent', subject: a.subject, appType: 'agent' });

  function conversationOf(id: string): FakeConversation {
    const c = conversations.get(id);
    if (!c) throw new Error(`no conversation ${id}`);
    return c;
  }

  const fake: FakeSalesforce = {
    url: '',
    orgId,
    esDeveloperName,
    conversations,
    refuseRenewal: false,
    renewals: 0,
    refused: [],
    latest: () => (latestId ? conversations.get(latestId) : undefined),
    async waitFor(fn, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const value = fn();
        if (value) return value;
        if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    agentJoins(id, agent = defaultAgent) {
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_PARTICIPANT_CHANGED',
        entryData(c, {
          entryType: 'ParticipantChanged',
          displayName: agent.name,
          sender: agentSender(agent),
          payload: { entries: [{ operation: 'add', displayName: agent.name, participant: { subject: agent.subject, role: 'Agent', appType: 'agent' } }] },
        }),
      );
    },
    agentLeaves(id, agent = defaultAgent) {
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_PARTICIPANT_CHANGED',
        entryData(c, {
          entryType: 'ParticipantChanged',
          displayName: agent.name,
          sender: agentSender(agent),
          payload: { entries: [{ operation: 'remove', displayName: agent.name, participant: { subject: agent.subject, role: 'Agent', appType: 'agent' } }] },
        }),
      );
    },
    agentSays(id, text, agent = defaultAgent) {
      const c = conversationOf(id);
      const messageId = randomUUID();
      addEvent(
        c,
        'CONVERSATION_MESSAGE',
        entryData(c, {
          entryType: 'Message',
          displayName: agent.name,
          sender: agentSender(agent),
          payload: {
            abstractMessage: { messageType: 'StaticContentMessage', id: messageId, staticContent: { formatType: 'Text', text } },
            messageReason: null,
          },
        }),
      );
    },
    agentSendsFile(id, file, text = '', agent = defaultAgent) {
      const c = conversationOf(id);
      const messageId = randomUUID();
      const attachment = { id: randomUUID(), name: file.name, mimeType: file.mimeType, url: `${fake.url}/files/${encodeURIComponent(file.name)}` };
      addEvent(
        c,
        'CONVERSATION_MESSAGE',
        entryData(c, {
          entryType: 'Message',
          displayName: agent.name,
          sender: agentSender(agent),
          payload: {
            abstractMessage: {
              messageType: 'StaticContentMessage',
              id: messageId,
              staticContent: { formatType: 'Attachments', text, attachments: [attachment] },
            },
            messageReason: null,
          },
        }),
      );
      return attachment;
    },
    agentTyping(id, typing) {
      const c = conversationOf(id);
      const type = typing ? 'TypingStartedIndicator' : 'TypingStoppedIndicator';
      addEvent(
        c,
        typing ? 'CONVERSATION_TYPING_STARTED_INDICATOR' : 'CONVERSATION_TYPING_STOPPED_INDICATOR',
        entryData(c, { entryType: type, displayName: defaultAgent.name, sender: agentSender(defaultAgent), payload: { timestamp: Date.now() } }),
      );
    },
    agentEnds(id) {
      fake.agentLeaves(id);
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_SESSION_STATUS_CHANGED',
        entryData(c, {
          entryType: 'SessionStatusChanged',
          displayName: 'Automated Process',
          sender: { role: 'System', subject: 'system', appType: 'conversation' },
          payload: { sessionStatus: 'Ended', sessionEndedByRole: 'Agent' },
        }),
      );
    },
    routingResult(id, result) {
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_ROUTING_RESULT',
        entryData(c, {
          entryType: 'RoutingResult',
          displayName: 'Automated Process',
          sender: { role: 'System', subject: 'system', appType: 'conversation' },
          payload: { routingType: 'Initial', failureType: 'None', ...result },
        }),
      );
    },
    queuePosition(id, position) {
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_QUEUE_POSITION',
        entryData(c, {
          entryType: 'QueuePosition',
          displayName: 'Automated Process',
          sender: { role: 'System', subject: 'system', appType: 'conversation' },
          payload: { position },
        }),
      );
    },
    unknownEvent(id) {
      const c = conversationOf(id);
      addEvent(
        c,
        'CONVERSATION_SOMETHING_NEW',
        entryData(c, {
          entryType: 'SomethingNew',
          displayName: 'Automated Process',
          sender: { role: 'System', subject: 'system', appType: 'conversation' },
          payload: { text: 'not a message' },
        }),
      );
    },
    expireTokens() {
      for (const t of tokens.values()) t.expired = true;
    },
    dropStreams(id) {
      for (const res of conversationOf(id).openStreams) res.destroy();
    },
    replayLast(id) {
      const c = conversationOf(id);
      const last = c.events.at(-1);
      if (last) for (const res of c.openStreams) res.write(frame(last));
    },
    down: false,
    issuedTokens: () => [...tokens.keys()],
    userMessages(id) {
      const seen = new Set<string>();
      const texts: string[] = [];
      for (const m of conversationOf(id).messagesReceived) {
        if (seen.has(m.id)) continue;
        seen.add(m.id);
        texts.push(m.text);
      }
      return texts;
    },
    close: async () => {},
  };

  function refuse(req: IncomingMessage, res: ServerResponse, status: number, why: string): void {
    fake.refused.push({ method: req.method ?? '', path: req.url ?? '', status, why });
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code: status, message: why }));
  }

  function json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: string, upload?: FileUpload): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    let body: any = null;
    if (raw) {
      try {
        body = JSON.parse(raw);
      } catch {
        return refuse(req, res, 400, 'body is not JSON');
      }
    }

    if (req.method === 'POST' && path === '/iamessage/api/v2/authorization/unauthenticated/access-token') {
      if (
        body?.orgId !== orgId ||
        body?.esDeveloperName !== esDeveloperName ||
        typeof body?.capabilitiesVersion !== 'string' ||
        typeof body?.platform !== 'string'
      ) {
        return refuse(req, res, 400, 'orgId, esDeveloperName, capabilitiesVersion and platform are required and must match the deployment');
      }
      const token = issueToken(`v2/iamessage/UNAUTH/NA/uid:${randomUUID()}`);
      return json(res, 200, {
        accessToken: token,
        lastEventId: String(nextEventId - 1),
        context: { configuration: { embeddedServiceConfig: { name: esDeveloperName } } },
      });
    }
    if (req.method === 'GET' && path === '/iamessage/api/v2/authorization/continuation-access-token') {
      const auth = authenticate(req, true);
      if ('status' in auth) return refuse(req, res, auth.status, auth.why);
      if (fake.refuseRenewal) return refuse(req, res, 401, 'renewal refused');
      fake.renewals++;
      const continued = options.continuationKeepsExpiry
        ? Math.floor(tokens.get(/^Bearer (\S+)$/.exec(req.headers.authorization ?? '')![1]!)!.expiresAt / 1000)
        : undefined;
      return json(res, 200, { accessToken: issueToken(auth.subject, continued), lastEventId: String(nextEventId - 1) });
    }
    if (req.method === 'GET' && path === '/eventrouter/v1/sse') return openStream(req, res);

    const auth = authenticate(req);
    if ('status' in auth) return refuse(req, res, auth.status, auth.why);

    if (req.method === 'POST' && path === '/iamessage/api/v2/conversation') {
      if (typeof body?.conversationId !== 'string' || !uuidV4.test(body.conversationId))
        return refuse(req, res, 400, 'conversationId must be a lowercase UUID v4');
      if (body.esDeveloperName !== esDeveloperName) return refuse(req, res, 400, 'unknown esDeveloperName');
      const existing = conversations.get(body.conversationId);
      if (existing) return refuse(req, res, 409, 'conversation exists');
      conversations.set(body.conversationId, {
        id: body.conversationId,
        subject: auth.subject,
        esDeveloperName,
        routingAttributes: body.routingAttributes ?? {},
        events: [],
        messagesReceived: [],
        filesReceived: [],
        typingReceived: [],
        closed: false,
        deleteCalls: 0,
        openStreams: new Set(),
        maxConcurrentStreams: 0,
        connects: [],
      });
      latestId = body.conversationId;
      return json(res, 201, {});
    }
    const match = /^\/iamessage\/api\/v2\/conversation\/([^/]+)(\/message|\/entry|\/file)?$/.exec(path);
    const conversation = match ? conversations.get(match[1]!) : undefined;
    if (!match || !conversation) return refuse(req, res, 404, 'no such conversation');
    if (conversation.subject !== auth.subject) return refuse(req, res, 403, 'the token belongs to another end user');

    if (req.method === 'POST' && match[2] === '/message') {
      const m = body?.message;
      if (
        body?.esDeveloperName !== esDeveloperName ||
        typeof m?.id !== 'string' ||
        !uuidV4.test(m.id) ||
        m.messageType !== 'StaticContentMessage' ||
        m.staticContent?.formatType !== 'Text' ||
        typeof m.staticContent.text !== 'string'
      ) {
        return refuse(req, res, 400, 'not a StaticContentMessage with a uuid id');
      }
      if (conversation.closed) return refuse(req, res, 400, 'conversation closed');
      conversation.messagesReceived.push({ id: m.id, text: m.staticContent.text });
      // The end user's own message comes back on the stream.
      addEvent(
        conversation,
        'CONVERSATION_MESSAGE',
        entryData(conversation, {
          entryType: 'Message',
          displayName: 'Guest',
          sender: { role: 'EndUser', subject: conversation.subject, appType: 'iamessage' },
          payload: {
            abstractMessage: { messageType: 'StaticContentMessage', id: m.id, staticContent: { formatType: 'Text', text: m.staticContent.text } },
            messageReason: null,
          },
        }),
      );
      return json(res, 202, {});
    }
    if (req.method === 'POST' && match[2] === '/file') {
      const m = upload?.messageEntry?.message;
      if (
        !upload ||
        upload.messageEntry?.esDeveloperName !== esDeveloperName ||
        typeof m?.id !== 'string' ||
        !uuidV4.test(m.id) ||
        typeof m.fileId !== 'string' ||
        !uuidV4.test(m.fileId)
      ) {
        return refuse(req, res, 400, 'messageEntry needs esDeveloperName and message {id, fileId} (uuids), with the file as fileData');
      }
      if (conversation.closed) return refuse(req, res, 400, 'conversation closed');
      const text = typeof m.text === 'string' ? m.text : '';
      conversation.filesReceived.push({ id: m.id, fileId: m.fileId, text, name: upload.file.name, type: upload.file.type, bytes: upload.file.bytes });
      const attachment = { id: m.fileId, name: upload.file.name, mimeType: upload.file.type, url: `${fake.url}/files/${m.fileId}` };
      addEvent(
        conversation,
        'CONVERSATION_MESSAGE',
        entryData(conversation, {
          entryType: 'Message',
          displayName: 'Guest',
          sender: { role: 'EndUser', subject: conversation.subject, appType: 'iamessage' },
          payload: {
            abstractMessage: { messageType: 'StaticContentMessage', id: m.id, staticContent: { formatType: 'Attachments', text, attachments: [attachment] } },
            messageReason: null,
          },
        }),
      );
      return json(res, 202, {});
    }
    if (req.method === 'POST' && match[2] === '/entry') {
      if (body?.entryType !== 'TypingStartedIndicator' && body?.entryType !== 'TypingStoppedIndicator') return refuse(req, res, 400, 'unknown entryType');
      if (typeof body.id !== 'string') return refuse(req, res, 400, 'entry id required');
      conversation.typingReceived.push(body.entryType === 'TypingStartedIndicator');
      return json(res, 202, {});
    }
    if (req.method === 'DELETE' && !match[2]) {
      if (url.searchParams.get('esDeveloperName') !== esDeveloperName) return refuse(req, res, 400, 'esDeveloperName query parameter required');
      conversation.deleteCalls++;
      if (!conversation.closed) {
        conversation.closed = true;
        addEvent(conversation, 'CONVERSATION_CLOSE_CONVERSATION', { conversationId: conversation.id });
      }
      return json(res, 200, {});
    }
    return refuse(req, res, 404, 'no such route');
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    const auth = authenticate(req);
    if ('status' in auth) return refuse(req, res, auth.status, auth.why);
    if (req.headers['x-org-id'] !== orgId) return refuse(req, res, 400, 'X-Org-Id missing or wrong');
    if (!String(req.headers.accept ?? '').includes('text/event-stream')) return refuse(req, res, 406, 'Accept: text/event-stream required');
    const conversation = [...conversations.values()].find((c) => c.subject === auth.subject);
    if (!conversation) return refuse(req, res, 400, 'no conversation for this token yet');
    const lastEventId = (req.headers['last-event-id'] as string | undefined) ?? null;
    conversation.connects.push(lastEventId);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const after = lastEventId ? Number(lastEventId) : 0;
    for (const item of conversation.events) if (item.id > after) res.write(frame(item));
    conversation.openStreams.add(res);
    conversation.maxConcurrentStreams = Math.max(conversation.maxConcurrentStreams, conversation.openStreams.size);
    // pingMs 0: a silent stream, to test the client's idle bound.
    const pingMs = options.pingMs ?? 1000;
    const ping = pingMs > 0 ? setInterval(() => res.write(`event: ping\ndata: {"timestamp":${Date.now()}}\n\n`), pingMs) : undefined;
    const done = () => {
      clearInterval(ping);
      conversation.openStreams.delete(res);
    };
    res.on('close', done);
  }

  const server: Server = createServer((req, res) => {
    if (fake.down) {
      req.resume();
      res.writeHead(503, { 'content-type': 'application/json' }).end('[{"errorCode":"SERVER_UNAVAILABLE","message":"Service Unavailable"}]');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const type = String(req.headers['content-type'] ?? '');
      if (!type.startsWith('multipart/form-data')) return handle(req, res, raw.toString('utf8'));
      // A file entry: its `messageEntry` JSON part and its `fileData` file.
      void fileUpload(raw, type).then(
        (upload) => handle(req, res, '', upload),
        () => refuse(req, res, 400, 'not a multipart body with messageEntry and fileData'),
      );
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return fake;
}

/** How many streams of a conversation are open right now. */
export function openStreamCount(conversation: FakeConversation): number {
  return conversation.openStreams.size;
}

interface FileUpload {
  messageEntry: any;
  file: { name: string; type: string; bytes: Buffer };
}

/** A file entry's parts: `messageEntry` (JSON, as text or as a JSON blob) and `fileData`. */
async function fileUpload(raw: Buffer, contentType: string): Promise<FileUpload> {
  const form = await new Request('http://fake/', { method: 'POST', headers: { 'content-type': contentType }, body: raw }).formData();
  const entry = form.get('messageEntry');
  const file = form.get('fileData');
  if (entry === null || file === null || typeof file === 'string') throw new Error('missing parts');
  const messageEntry = JSON.parse(typeof entry === 'string' ? entry : await entry.text());
  return { messageEntry, file: { name: file.name, type: file.type, bytes: Buffer.from(await file.arrayBuffer()) } };
}
