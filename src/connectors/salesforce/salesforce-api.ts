import type { Agent } from 'undici';
import { DeliveryError } from '../connector.js';
import { openStream, parseJson, send, STATUS_POLICIES, type OpenedStream } from '../../outbound/index.js';
import { multipartForm } from '../../outbound/multipart.js';
import type { SalesforceConfig } from './salesforce-config.js';

/** Responses we read at most this much of. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export interface AccessToken {
  accessToken: string;
  lastEventId: string | null;
}

/**
 * The Messaging for In-App and Web REST calls we make as the end user's client, through the one
 * outbound client (span, `traceparent`, Retry-After, bounded read) under the Salesforce status policy
 * (403 final, 401 renewed by the connector and retried). Every call carries the caller's deadline
 * (AbortSignal). Failures are DeliveryErrors with the status; the token is never part of an error message.
 */
export class SalesforceApi {
  private readonly base: string;
  /** The 15-character org id: the 18-character form is the same id with a 3-character checksum. */
  private readonly orgId: string;
  constructor(
    private readonly config: SalesforceConfig,
    private readonly dispatcher: Agent,
    private readonly streamDispatcher: () => Agent,
  ) {
    this.base = config.baseUrl.replace(/\/$/, '');
    this.orgId = config.orgId.slice(0, 15);
  }

  /** A new unauthenticated end-user token: a new subject, so only for a new conversation. */
  async accessToken(signal: AbortSignal): Promise<AccessToken> {
    const body = await this.call('POST', '/iamessage/api/v2/authorization/unauthenticated/access-token', {
      signal,
      body: { orgId: this.orgId, esDeveloperName: this.config.esDeveloperName, capabilitiesVersion: '1', platform: this.config.platform ?? 'Web' },
    });
    return readToken(body, 'access token');
  }

  /** Renews a token for the same subject (and so the same conversation). */
  async continuationToken(token: string, signal: AbortSignal): Promise<AccessToken> {
    const body = await this.call('GET', '/iamessage/api/v2/authorization/continuation-access-token', { signal, token });
    return readToken(body, 'continuation token');
  }

  async createConversation(token: string, conversationId: string, routingAttributes: Record<string, string>, signal: AbortSignal): Promise<void> {
    await this.call('POST', '/iamessage/api/v2/conversation', {
      signal,
      token,
      body: { conversationId, esDeveloperName: this.config.esDeveloperName, ...(Object.keys(routingAttributes).length > 0 ? { routingAttributes } : {}) },
    });
  }

  async sendMessage(token: string, conversationId: string, messageId: string, text: string, signal: AbortSignal): Promise<void> {
    await this.call('POST', `/iamessage/api/v2/conversation/${conversationId}/message`, {
      signal,
      token,
      body: {
        message: { id: messageId, messageType: 'StaticContentMessage', staticContent: { formatType: 'Text', text } },
        esDeveloperName: this.config.esDeveloperName,
      },
    });
  }

  /**
   * A file entry from the end user (the API reference's file upload): `multipart/form-data` with a
   * `messageEntry` JSON part (`esDeveloperName`, `message: {id, fileId, text?}`) and the file as `fileData`.
   */
  async sendFile(
    token: string,
    conversationId: string,
    entry: { messageId: string; fileId: string; text: string },
    file: { name: string; contentType: string; bytes: Buffer },
    signal: AbortSignal,
  ): Promise<void> {
    const messageEntry = {
      esDeveloperName: this.config.esDeveloperName,
      message: { id: entry.messageId, fileId: entry.fileId, ...(entry.text ? { text: entry.text } : {}) },
    };
    const form = multipartForm(
      [['messageEntry', JSON.stringify(messageEntry), 'application/json']],
      [{ field: 'fileData', name: file.name, contentType: file.contentType, bytes: file.bytes }],
    );
    const path = `/iamessage/api/v2/conversation/${conversationId}/file`;
    await send(this.dispatcher, {
      method: 'POST',
      url: `${this.base}${path}`,
      signal,
      policy: STATUS_POLICIES.salesforce,
      maxBytes: MAX_RESPONSE_BYTES,
      headers: { authorization: `Bearer ${token}` },
      body: form.body,
      contentType: form.contentType,
      describe: `POST ${path} on Salesforce`,
    });
  }

  async sendTyping(token: string, conversationId: string, entryId: string, typing: boolean, signal: AbortSignal): Promise<void> {
    await this.call('POST', `/iamessage/api/v2/conversation/${conversationId}/entry`, {
      signal,
      token,
      body: { entryType: typing ? 'TypingStartedIndicator' : 'TypingStoppedIndicator', id: entryId },
    });
  }

  async endConversation(token: string, conversationId: string, signal: AbortSignal): Promise<void> {
    await this.call('DELETE', `/iamessage/api/v2/conversation/${conversationId}?esDeveloperName=${encodeURIComponent(this.config.esDeveloperName)}`, {
      signal,
      token,
    });
  }

  /**
   * Opens the event stream. Headers must arrive within `timeoutMs`; after that the body may stay open
   * for as long as events (or pings) keep coming, each gap bounded by `idleTimeoutMs`.
   */
  async openStream(
    token: string,
    lastEventId: string | null,
    options: { timeoutMs: number; idleTimeoutMs: number; signal: AbortSignal },
  ): Promise<OpenedStream> {
    return openStream(this.streamDispatcher(), {
      url: `${this.base}/eventrouter/v1/sse`,
      signal: options.signal,
      headersTimeoutMs: options.timeoutMs,
      idleTimeoutMs: options.idleTimeoutMs,
      headers: { authorization: `Bearer ${token}`, 'x-org-id': this.orgId, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) },
      describe: 'Salesforce GET /eventrouter/v1/sse',
    });
  }

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, options: { signal: AbortSignal; token?: string; body?: unknown }): Promise<unknown> {
    const answer = await send(this.dispatcher, {
      method,
      url: `${this.base}${path}`,
      signal: options.signal,
      policy: STATUS_POLICIES.salesforce,
      maxBytes: MAX_RESPONSE_BYTES,
      ...(options.token ? { headers: { authorization: `Bearer ${options.token}` } } : {}),
      json: options.body,
      describe: `${method} ${pathOnly(path)} on Salesforce`,
    });
    return parseJson(answer.text) ?? null;
  }
}

function readToken(body: unknown, what: string): AccessToken {
  const b = body as { accessToken?: unknown; lastEventId?: unknown } | null;
  if (!b || typeof b.accessToken !== 'string' || b.accessToken === '')
    throw new DeliveryError(`Salesforce sent no accessToken with the ${what}`, { retryable: true });
  return { accessToken: b.accessToken, lastEventId: typeof b.lastEventId === 'string' && b.lastEventId !== '' ? b.lastEventId : null };
}

function pathOnly(path: string): string {
  return path.split('?')[0]!;
}
