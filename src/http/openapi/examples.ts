/**
 * Examples of the document's named schemas, shown wherever they are used (the schema's `examples`).
 * test/e2e/openapi-contract.test.ts checks each against its schema.
 */
const at = '2026-11-23T10:15:02.123Z';
const handoverId = 'ho_01jd5x9k2m3n4p5q6r7s8t9v0w';
const agent = { id: 'agt_01jd5x9k2m3n4p5q6r7s8t9v0a', name: 'Ada' };
const envelope = { id: 'evt_01jd5x9k2m3n4p5q6r7s8t9v0e', handoverId, conversationId: 'c-1041', createdAt: at };

export const schemaExamples: Record<string, unknown> = {
  Handover: {
    id: handoverId,
    conversationId: 'c-1041',
    queueId: 'q_01jd5x9k2m3n4p5q6r7s8t9v0q',
    state: 'active',
    user: { id: 'u-88', name: 'Uma' },
    metadata: { orderId: 'A-1001' },
    agent,
    endReason: null,
    position: null,
    estimatedWaitSeconds: null,
    createdAt: at,
    acceptedAt: '2026-11-23T10:15:40.000Z',
    endedAt: null,
  },
  Availability: { available: false, reason: 'closed', agentsOnline: 0, queueLength: 0, estimatedWaitSeconds: null, nextOpenAt: '2026-11-24T08:00:00.000Z' },
  Message: {
    id: 'msg_01jd5x9k2m3n4p5q6r7s8t9v0m',
    seq: 3,
    direction: 'to_agent',
    sender: { type: 'user', id: 'u-88', name: 'Uma' },
    text: 'It was order A-1001.',
    attachments: [],
    createdAt: at,
  },
  Queue: {
    id: 'q_01jd5x9k2m3n4p5q6r7s8t9v0q',
    name: 'billing',
    connectorId: null,
    openingHours: { mon: [{ from: '09:00', to: '17:30' }], tue: [{ from: '09:00', to: '17:30' }] },
    timeZone: 'Europe/Paris',
    closedDates: ['2026-12-25'],
    noAnswerTimeoutSeconds: 300,
    maxWaiting: 50,
  },
  Tenant: { id: 'ten_01jd5x9k2m3n4p5q6r7s8t9v0t', name: 'Acme', webhookUrl: 'https://bot.acme.test/handover-events', retentionDays: 90 },
  Agent: { id: agent.id, email: 'ada@acme.test', name: 'Ada', role: 'agent', queueIds: null, maxChats: 3, presence: 'available', disabled: false },
  DeskAgent: {
    id: agent.id,
    tenantId: 'ten_01jd5x9k2m3n4p5q6r7s8t9v0t',
    email: 'ada@acme.test',
    name: 'Ada',
    role: 'agent',
    presence: 'available',
    maxChats: 3,
    queueIds: null,
  },
  HandoverQueuedEvent: { ...envelope, type: 'handover.queued', data: { queue: 'support', position: 2, estimatedWaitSeconds: 90 } },
  HandoverAcceptedEvent: { ...envelope, type: 'handover.accepted', data: { agent } },
  AgentMessageEvent: {
    ...envelope,
    type: 'message.created',
    data: { message: { id: 'msg_01jd5x9k2m3n4p5q6r7s8t9v0m', text: 'Hi, Ada here. Let me look.', attachments: [], createdAt: at }, agent },
  },
  AgentTypingEvent: { ...envelope, type: 'agent.typing', data: { typing: true } },
  QueueUpdatedEvent: { ...envelope, type: 'queue.updated', data: { position: 1, estimatedWaitSeconds: 45 } },
  HandoverTransferredEvent: { ...envelope, type: 'handover.transferred', data: { fromQueueId: 'q_01jd5x9k2m3n4p5q6r7s8t9v0q', queue: 'billing' } },
  HandoverEndedEvent: { ...envelope, type: 'handover.ended', data: { reason: 'agent_ended' } },
  HelpdeskHandoverRequested: {
    ...envelope,
    type: 'handover.requested',
    data: {
      queue: 'support',
      user: { id: 'u-88', name: 'Uma' },
      transcript: [{ role: 'user', text: 'My parcel has not arrived.' }],
      metadata: { orderId: 'A-1001' },
    },
  },
  HelpdeskUserMessage: {
    ...envelope,
    type: 'message.created',
    data: { message: { id: 'msg_01jd5x9k2m3n4p5q6r7s8t9v0m', text: 'It was order A-1001.', attachments: [], createdAt: at } },
  },
  HelpdeskUserTyping: { ...envelope, type: 'user.typing', data: { typing: false } },
  HelpdeskHandoverEnded: { ...envelope, type: 'handover.ended', data: { reason: 'user_ended' } },
  HelpdeskBatchAnswer: {
    results: [
      { id: 'evt_01jd5x9k2m3n4p5q6r7s8t9v0e', status: 'ok' },
      { id: 'evt_01jd5x9k2m3n4p5q6r7s8t9v0f', status: 'retry', error: 'try again' },
    ],
  },
};
