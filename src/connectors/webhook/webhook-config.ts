import { Type, type Static } from '@sinclair/typebox';

/** Batch mode's defaults (docs/generic-webhook.md, "Batch mode"). */
export const batchDefaults = {
  maxEvents: 100,
  maxWaitMs: 0,
  maxBytes: 1024 * 1024,
} as const;

const batchSchema = Type.Object(
  {
    maxEvents: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: batchDefaults.maxEvents, description: 'Most events in one call.' })),
    maxWaitMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 50,
        default: batchDefaults.maxWaitMs,
        description: 'How long a call waits for more events; 0: until the end of the event-loop turn (no added latency).',
      }),
    ),
    maxBytes: Type.Optional(
      Type.Integer({
        minimum: 16 * 1024,
        maximum: 16 * 1024 * 1024,
        default: batchDefaults.maxBytes,
        description: 'Most bytes of events in one call body (an event larger than this goes alone).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const webhookConfigSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'Where the helpdesk receives our events.' }),
    // A `whsec_` secret's key is its base64 part: characters outside base64 would be dropped silently
    // on decoding, and the helpdesk's own library, decoding strictly, would never sign with the same key.
    secret: Type.String({
      minLength: 16,
      pattern: '^(?:whsec_(?:[A-Za-z0-9+/]{4}){4,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?|(?!whsec_).+)$',
      description:
        'Standard Webhooks secret (`whsec_` and the base64 of its key), used both ways; any other text of at least 16 characters is used as UTF-8 bytes.',
    }),
    availabilityUrl: Type.Optional(
      Type.String({
        pattern: '^https?://[^\\s]+$',
        maxLength: 2048,
        description: 'Optional: answers a signed GET with `{"agentsOnline": n}`; polled in the background.',
      }),
    ),
    batch: Type.Optional(batchSchema),
  },
  { additionalProperties: false },
);

export type WebhookConfig = Static<typeof webhookConfigSchema>;

export interface BatchSettings {
  maxEvents: number;
  maxWaitMs: number;
  maxBytes: number;
}

/** Batch mode's settings with defaults filled in; null when the connector sends one event per call. */
export function batchSettings(config: WebhookConfig): BatchSettings | null {
  if (!config.batch) return null;
  return {
    maxEvents: config.batch.maxEvents ?? batchDefaults.maxEvents,
    maxWaitMs: config.batch.maxWaitMs ?? batchDefaults.maxWaitMs,
    maxBytes: config.batch.maxBytes ?? batchDefaults.maxBytes,
  };
}
