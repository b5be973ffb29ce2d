import type { ErrorCode } from '../../resilience/errors.js';
import { createConnectorBody } from './connector-configs.js';
import { GenericInboundEvent } from './event-schemas.js';

/**
 * The operation catalogue of the OpenAPI document: for every documented route, its operationId and the
 * errors its own logic can answer. The errors every route of a kind can answer (authentication, body
 * parsing, admission, the database) are added by `operation-responses.ts` from the route's facts, so
 * only what is particular to an operation is listed here.
 *
 * To add a route: add its entry here (without one the document names it under x-document-problems, and lint fails) and run
 * test/e2e/openapi-contract.test.ts, which fails on any status or error code it answers that is not
 * documented.
 */
export interface OperationDoc {
  operationId: string;
  /** A one-line summary when the route has none of its own. */
  summary?: string;
  /** Error codes this operation's own logic can answer (beyond the ones every such route can). */
  errors?: readonly ErrorCode[];
  /** The success answer carries `Location` (the new resource's URL). */
  location?: true;
  /** The success answer sets (or clears) the desk session cookie. */
  setsCookie?: true;
  /** The request body, when the route reads it without a schema or with a looser one than what it takes (documented here instead). */
  requestBody?: { schema: unknown; required: boolean; description?: string };
  /** The route's body may be left out (or be `null`): it is not required. */
  optionalBody?: boolean;
  /** The body is a file's bytes, of any type (described by this text), not JSON. */
  fileUpload?: string;
  /** The success answer is a file's bytes, of its own type (described by this text). */
  fileAnswer?: string;
  /** Examples: of the request body and of the success answer. */
  requestExample?: unknown;
  responseExample?: unknown;
}

const handover = ['handover_not_found'] as const;

export const operations: Record<string, OperationDoc> = {
  // Operations
  'GET /healthz': { operationId: 'getLiveness', summary: 'Liveness: the process answers' },
  'GET /readyz': {
    operationId: 'getReadiness',
    summary: 'Readiness: migrations applied, database reachable, admission healthy, not shutting down',
    errors: ['admission_stuck', 'database_unavailable', 'shutting_down'],
  },

  // Bot API
  'GET /v1/availability': {
    operationId: 'getAvailability',
    errors: ['queue_not_found'],
    responseExample: { available: true, agentsOnline: 3, queueLength: 1, estimatedWaitSeconds: 45, nextOpenAt: null },
  },
  'POST /v1/handovers': {
    operationId: 'createHandover',
    location: true,
    errors: ['queue_not_found', 'idempotency_conflict', 'queue_closed', 'no_agents_available', 'queue_full', 'connector_degraded', 'url_not_allowed'],
    requestExample: {
      conversationId: 'c-1041',
      queue: 'support',
      user: { id: 'u-88', name: 'Uma', locale: 'en' },
      transcript: [
        { role: 'user', text: 'My parcel has not arrived.' },
        { role: 'bot', text: 'Let me find someone who can help.' },
      ],
      metadata: { orderId: 'A-1001' },
    },
    responseExample: {
      id: 'ho_01jd5x9k2m3n4p5q6r7s8t9v0w',
      conversationId: 'c-1041',
      queueId: 'q_01jd5x9k2m3n4p5q6r7s8t9v0w',
      state: 'queued',
      user: { id: 'u-88', name: 'Uma', locale: 'en' },
      metadata: { orderId: 'A-1001' },
      agent: null,
      endReason: null,
      position: 1,
      estimatedWaitSeconds: 45,
      createdAt: '2026-11-23T10:15:02.123Z',
      acceptedAt: null,
      endedAt: null,
    },
  },
  'GET /v1/handovers/{id}': { operationId: 'getHandover', errors: handover },
  'POST /v1/handovers/{id}/messages': {
    operationId: 'sendUserMessage',
    errors: [...handover, 'handover_ended', 'attachment_not_found', 'attachments_off'],
    requestExample: { id: 'turn-17', text: 'It was order A-1001.' },
    responseExample: { id: 'msg_01jd5x9k2m3n4p5q6r7s8t9v0w' },
  },
  'POST /v1/handovers/{id}/typing': { operationId: 'sendUserTyping', errors: [...handover, 'handover_ended'], requestExample: { typing: true } },
  'POST /v1/handovers/{id}/end': { operationId: 'endHandover', errors: handover, optionalBody: true, requestExample: { reason: 'user_ended' } },
  'POST /v1/handovers/{id}/rating': {
    operationId: 'rateHandover',
    errors: [...handover, 'handover_not_ended', 'rating_conflict'],
    requestExample: { score: 5, comment: 'Quick and friendly, thank you!' },
    responseExample: {
      handoverId: 'ho_01jd5x9k2m3n4p5q6r7s8t9v0w',
      score: 5,
      comment: 'Quick and friendly, thank you!',
      createdAt: '2026-11-23T10:31:40.000Z',
    },
  },
  'POST /v1/handovers/{id}/attachments': {
    operationId: 'uploadUserAttachment',
    errors: [
      ...handover,
      'handover_ended',
      'attachment_empty',
      'attachment_type_not_allowed',
      'attachment_type_mismatch',
      'attachments_off',
      'attachment_store_unavailable',
    ],
    fileUpload:
      "The file's bytes, with its type as `Content-Type` (or `application/octet-stream`): its real type is read from the bytes and must be in HANDOVER_ATTACHMENT_TYPES; at most HANDOVER_ATTACHMENT_MAX_BYTES. Then send it in a message by its `id`.",
    responseExample: {
      id: 'att_01jd5x9k2m3n4p5q6r7s8t9v0w',
      name: 'brake.jpg',
      contentType: 'image/jpeg',
      size: 48213,
      url: 'https://handover.example.com/v1/attachments/att_01jd5x9k2m3n4p5q6r7s8t9v0w?expires=1795432800&sig=…',
      expiresAt: '2026-11-23T10:30:00.000Z',
    },
  },
  'GET /v1/handovers/{id}/attachments/{attachmentId}': {
    operationId: 'getHandoverAttachment',
    errors: [...handover, 'attachment_not_found', 'attachments_off', 'attachment_store_unavailable'],
    fileAnswer: 'The file, as it is served through its signed link (its own type, `nosniff`, a download unless a plain image).',
  },
  'GET /v1/attachments/{id}': {
    operationId: 'getAttachment',
    errors: ['attachment_link_invalid', 'attachment_link_expired', 'attachment_not_found', 'attachments_off', 'attachment_store_unavailable'],
    fileAnswer:
      'The file, of the type its bytes showed, with `X-Content-Type-Options: nosniff`, a Content-Security-Policy that loads nothing and sandboxes it, and `Content-Disposition: attachment` unless it is a PNG, JPEG, GIF or WebP image.',
  },
  'POST /v1/desk/handovers/{id}/attachments': {
    operationId: 'uploadAgentAttachment',
    errors: [
      ...handover,
      'handover_ended',
      'handover_not_active',
      'handover_not_yours',
      'attachment_empty',
      'attachment_type_not_allowed',
      'attachment_type_mismatch',
      'attachments_off',
      'attachment_store_unavailable',
    ],
    fileUpload:
      "The file's bytes, with its type as `Content-Type` (or `application/octet-stream`): its real type is read from the bytes and must be in HANDOVER_ATTACHMENT_TYPES; at most HANDOVER_ATTACHMENT_MAX_BYTES. Then send it in a message by its `id`.",
  },
  'GET /v1/handovers/{id}/events': { operationId: 'listHandoverEvents', errors: [...handover, 'invalid_cursor'] },
  'GET /v1/events': { operationId: 'streamEvents', errors: ['invalid_cursor', 'too_many_streams'] },
  'GET /v1/users/{userId}/export': { operationId: 'exportUser' },
  'DELETE /v1/users/{userId}': { operationId: 'eraseUser', errors: ['user_has_live_handover'] },

  // Connector inbound
  'POST /v1/connectors/{connectorId}/events': {
    operationId: 'receiveConnectorEvent',
    requestBody: {
      required: true,
      description:
        "A generic-webhook connector takes the events below, signed with Standard Webhooks (docs/generic-webhook.md). Zendesk, Chatwoot, Intercom and Freshchat connectors take their vendor's own webhook body and signature (docs/connectors; Intercom: `X-Hub-Signature`, Freshchat: `X-Freshchat-Signature`); a Salesforce connector takes none (it reads its conversation's stream).",
      schema: { anyOf: [GenericInboundEvent, { type: 'object', title: 'VendorWebhookBody', description: "Another connector type's own webhook body." }] },
    },
    errors: [
      'connector_not_found',
      'handover_not_found',
      'handover_ended',
      'invalid_signature',
      'stale_timestamp',
      'inbound_rate_limited',
      'inbound_unverified_rate_limited',
    ],
    requestExample: { type: 'message.created', handoverId: 'ho_01jd5x9k2m3n4p5q6r7s8t9v0w', data: { message: { id: 'your-msg-17', text: "Hi, I'm Sam." } } },
    responseExample: { ok: true, duplicate: false },
  },

  // Desk API
  'POST /v1/desk/login': {
    operationId: 'deskLogin',
    setsCookie: true,
    errors: ['invalid_credentials', 'ambiguous_login', 'too_many_login_attempts'],
    requestExample: { email: 'ada@acme.test', password: 'correct horse battery' },
  },
  'POST /v1/desk/logout': { operationId: 'deskLogout', setsCookie: true, summary: 'Sign out: the session ends and its cookie is cleared' },
  'GET /v1/desk/session': { operationId: 'getDeskSession' },
  'GET /v1/desk/me': { operationId: 'getDeskAgent', summary: 'The signed-in agent' },
  'PUT /v1/desk/presence': { operationId: 'setDeskPresence', requestExample: { presence: 'available' } },
  'GET /v1/desk/queues': { operationId: 'listDeskQueues', summary: 'The desk queues this agent serves, with how many wait in each' },
  'GET /v1/desk/handovers': { operationId: 'listDeskHandovers' },
  'GET /v1/desk/handovers/{id}/messages': { operationId: 'listDeskMessages', summary: "A chat's messages, oldest first", errors: handover },
  'POST /v1/desk/handovers/{id}/accept': {
    operationId: 'acceptHandover',
    summary: 'Take a waiting handover',
    errors: [...handover, 'handover_not_waiting', 'agent_at_capacity', 'agent_away'],
  },
  'POST /v1/desk/accept-next': { operationId: 'acceptNextHandover', errors: ['queue_not_found', 'agent_at_capacity', 'agent_away'] },
  'POST /v1/desk/handovers/{id}/messages': {
    operationId: 'sendAgentMessage',
    summary: "Send the agent's message to the user",
    errors: [...handover, 'handover_ended', 'handover_not_active', 'handover_not_yours', 'attachment_not_found', 'attachments_off'],
  },
  'POST /v1/desk/handovers/{id}/typing': {
    operationId: 'sendAgentTyping',
    summary: 'The agent is typing (or stopped)',
    errors: [...handover, 'handover_ended', 'handover_not_active', 'handover_not_yours'],
  },
  'POST /v1/desk/handovers/{id}/transfer': {
    operationId: 'transferHandover',
    summary: 'Move a chat to another desk queue (it waits there again), with an internal note for the next agent if you like',
    errors: [...handover, 'queue_not_found', 'handover_ended', 'handover_not_active', 'handover_not_yours'],
    requestExample: { queue: 'billing', note: 'Charged twice on order A-1001; the user has the bank statement.' },
  },
  'POST /v1/desk/handovers/{id}/end': {
    optionalBody: true,
    operationId: 'endDeskHandover',
    summary: 'End a chat from the desk',
    errors: [...handover, 'handover_not_active', 'handover_not_yours'],
  },
  'GET /v1/desk/team': { operationId: 'getDeskTeam', errors: ['forbidden_role'] },
  'GET /v1/desk/supervisor/overview': {
    operationId: 'getDeskOverview',
    summary: 'Supervisors: per queue the users waiting, the longest wait, the chats held and the agents online; every agent with their chats; every live chat',
    errors: ['forbidden_role'],
  },
  'POST /v1/desk/handovers/{id}/take': {
    operationId: 'takeHandover',
    summary: 'Supervisors: take a live chat, waiting or held by another agent (the bot is told you joined)',
    errors: ['forbidden_role', ...handover, 'handover_ended'],
  },
  'PUT /v1/desk/agents/{agentId}/presence': { operationId: 'setAgentAway', errors: ['forbidden_role', 'agent_not_found'] },
  'POST /v1/desk/agents/{agentId}/sign-out': { operationId: 'signOutAgent', errors: ['forbidden_role', 'agent_not_found'] },
  'GET /v1/desk/events': { operationId: 'streamDeskEvents', errors: ['too_many_streams'] },
  'GET /v1/desk/canned-responses': {
    operationId: 'searchCannedResponses',
    summary: "Canned responses you may use (the tenant's and your own), searched by shortcut and text",
    errors: handover,
    responseExample: {
      cannedResponses: [
        {
          id: 'can_01jd5x9k2m3n4p5q6r7s8t9v0w',
          scope: 'tenant',
          shortcut: 'hello',
          text: 'Hi {{user.name}}, {{agent.name}} here.',
          rendered: 'Hi Uma, Ada here.',
          updatedAt: '2026-11-23T10:15:02.123Z',
        },
      ],
    },
  },
  'POST /v1/desk/canned-responses': {
    operationId: 'createCannedResponse',
    summary: 'Add a canned response: your own, or (supervisors) one for the whole tenant',
    errors: ['forbidden_role', 'already_exists'],
    requestExample: { shortcut: 'refund', text: 'Hi {{user.name}}, your refund is on its way.', scope: 'personal' },
  },
  'PATCH /v1/desk/canned-responses/{cannedId}': {
    operationId: 'updateCannedResponse',
    summary: "Change a canned response (the tenant's: supervisors only)",
    errors: ['canned_response_not_found', 'forbidden_role', 'already_exists'],
  },
  'GET /v1/desk/handovers/{id}/notes': { operationId: 'listNotes', summary: "A chat's internal notes, oldest first (its latest 500)", errors: handover },
  'POST /v1/desk/handovers/{id}/notes': {
    operationId: 'addNote',
    summary: 'Add an internal note to a chat you can read: for agents only, never sent to the user, the bot or a helpdesk',
    errors: handover,
    requestExample: { text: 'Refund already approved by billing; only the tracking number is missing.' },
  },
  'GET /v1/desk/history': {
    operationId: 'searchDeskHistory',
    summary: "Closed chats, yours or your team's, newest first, searched by user, text and date; a page at a time",
    responseExample: {
      handovers: [
        {
          id: 'ho_01jd5x9k2m3n4p5q6r7s8t9v0w',
          conversationId: 'c-1041',
          user: { id: 'u-88', name: 'Uma' },
          queue: 'support',
          agent: { id: 'agt_01jd5x9k2m3n4p5q6r7s8t9v0w', name: 'Ada' },
          endReason: 'agent_ended',
          createdAt: '2026-11-23T10:15:02.123Z',
          endedAt: '2026-11-23T10:24:41.512Z',
          preview: 'Your parcel left the warehouse this morning.',
          rating: { score: 5, comment: 'Quick and friendly' },
        },
      ],
      next: null,
    },
  },
  'GET /v1/desk/handovers/{id}': {
    operationId: 'getDeskHandover',
    summary: 'One chat you can read, live or closed, with its conversation with the bot',
    errors: handover,
  },
  'GET /v1/desk/handovers/{id}/earlier': {
    operationId: 'listEarlierHandovers',
    summary: "The same user's earlier closed chats (the latest 10), newest first",
    errors: handover,
  },
  'DELETE /v1/desk/canned-responses/{cannedId}': {
    operationId: 'deleteCannedResponse',
    summary: "Delete a canned response (the tenant's: supervisors only)",
    errors: ['canned_response_not_found', 'forbidden_role'],
  },

  // Admin API
  'GET /v1/admin/tokens': { operationId: 'listAdminTokens' },
  'POST /v1/admin/keys/rotate': { operationId: 'rotateSecretKeys' },
  'GET /v1/admin/audit-log': { operationId: 'listAuditLog' },
  'POST /v1/admin/tenants': {
    operationId: 'createTenant',
    errors: ['url_not_allowed'],
    requestExample: { name: 'Acme', webhookUrl: 'https://bot.acme.test/handover-events' },
  },
  'GET /v1/admin/tenants': { operationId: 'listTenants', summary: 'Every tenant' },
  'PATCH /v1/admin/tenants/{tenantId}': { operationId: 'updateTenant', errors: ['tenant_not_found', 'url_not_allowed'] },
  'DELETE /v1/admin/tenants/{tenantId}': { operationId: 'deleteTenant', errors: ['tenant_not_found'] },
  'POST /v1/admin/tenants/{tenantId}/api-keys': {
    operationId: 'createApiKey',
    errors: ['tenant_not_found'],
    requestBody: {
      required: false,
      description: 'Optional; without one, a bot key.',
      schema: {
        type: 'object',
        additionalProperties: false,
        properties: { scope: { type: 'string', enum: ['bot', 'read'], description: '`read`: may only read (GET); `bot`: the whole bot API.' } },
      },
    },
    requestExample: { scope: 'read' },
  },
  'GET /v1/admin/tenants/{tenantId}/api-keys': { operationId: 'listApiKeys', errors: ['tenant_not_found'] },
  'DELETE /v1/admin/tenants/{tenantId}/api-keys/{keyId}': { operationId: 'revokeApiKey', errors: ['tenant_not_found', 'api_key_not_found'] },
  'POST /v1/admin/tenants/{tenantId}/connectors': {
    operationId: 'createConnector',
    errors: ['tenant_not_found', 'unknown_connector_type', 'invalid_connector_config', 'already_exists', 'url_not_allowed'],
    requestBody: { required: true, description: 'The connector type, a name, and the settings of that type.', schema: createConnectorBody },
    requestExample: {
      type: 'webhook',
      name: 'my-helpdesk',
      config: { url: 'https://helpdesk.acme.test/handover/events', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
    },
  },
  'PATCH /v1/admin/tenants/{tenantId}/connectors/{connectorId}': {
    operationId: 'updateConnector',
    errors: ['tenant_not_found', 'connector_not_found', 'unknown_connector_type', 'invalid_connector_config', 'already_exists', 'url_not_allowed'],
  },
  'GET /v1/admin/tenants/{tenantId}/connectors': { operationId: 'listConnectors', summary: "A tenant's connectors", errors: ['tenant_not_found'] },
  'GET /v1/admin/tenants/{tenantId}/connector-checks': {
    operationId: 'listConnectorChecks',
    summary: "Each connector's last setup check: ok, failing with a named problem, or not checkable",
    errors: ['tenant_not_found'],
    responseExample: {
      checks: [
        {
          connectorId: 'con_01jd5x9k2m3n4p5q6r7s8t9v0w',
          name: 'support',
          type: 'zendesk',
          verdict: 'failing',
          problem: 'credentials_rejected',
          reason:
            'the app app_1 (GET /v2/apps/{appId}) failed: GET /v2/apps/app_1 on acme.zendesk.com answered 401 — keyId/keySecret refused: create an API key for this app in Admin Center → Apps and integrations → Conversations API',
          checkedAt: '2026-12-03T08:40:12.345Z',
        },
      ],
    },
  },
  'POST /v1/admin/tenants/{tenantId}/connectors/{connectorId}/setup': {
    operationId: 'setUpConnector',
    summary:
      "Runs a connector's check and reads the vendor settings a deployment needs; with `apply`, sets what the system's API allows (`handover connectors setup`)",
    errors: ['tenant_not_found', 'connector_not_found'],
    requestExample: { apply: true },
    responseExample: {
      connectorId: 'con_01jd5x9k2m3n4p5q6r7s8t9v0w',
      name: 'support',
      type: 'zendesk',
      inboundUrl: 'https://handover.example.com/v1/connectors/con_01jd5x9k2m3n4p5q6r7s8t9v0w/events',
      applied: true,
      check: { verdict: 'ok', problem: null, reason: 'the app 5f1a (GET /v2/apps/{appId}) answered' },
      items: [
        {
          setting: 'app settings.multiConvoEnabled',
          state: 'missing',
          detail: 'false: a user gets one conversation for all handovers; it cannot be turned off once on, so it is set only with --irreversible',
        },
        { setting: 'webhook triggers', state: 'changed', detail: 'added switchboard:passControl' },
        { setting: 'switchboard integration deliverStandbyEvents', state: 'ok', detail: 'true' },
      ],
      failure: null,
    },
  },
  'POST /v1/admin/tenants/{tenantId}/queues': {
    operationId: 'createQueue',
    errors: ['tenant_not_found', 'connector_not_found', 'already_exists'],
    requestExample: {
      name: 'billing',
      timeZone: 'Europe/Paris',
      openingHours: { mon: [{ from: '09:00', to: '17:30' }], tue: [{ from: '09:00', to: '17:30' }] },
    },
  },
  'GET /v1/admin/tenants/{tenantId}/queues': { operationId: 'listQueues', summary: "A tenant's queues", errors: ['tenant_not_found'] },
  'POST /v1/admin/tenants/{tenantId}/agents': {
    operationId: 'createAgent',
    errors: ['tenant_not_found', 'already_exists', 'queue_not_found'],
    requestExample: { email: 'ada@acme.test', name: 'Ada', password: 'correct horse battery', queues: ['support'], maxChats: 3 },
  },
  'GET /v1/admin/tenants/{tenantId}/agents': { operationId: 'listAgents', summary: "A tenant's desk agents", errors: ['tenant_not_found'] },
  'PATCH /v1/admin/tenants/{tenantId}/agents/{agentId}': { operationId: 'updateAgent', errors: ['tenant_not_found', 'agent_not_found', 'queue_not_found'] },
  'DELETE /v1/admin/tenants/{tenantId}/agents/{agentId}/sessions': { operationId: 'endAgentSessions', errors: ['tenant_not_found', 'agent_not_found'] },
};
