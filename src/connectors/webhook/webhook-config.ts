import { Type, type Static } from '@sinclair/typebox';

export const webhookConfigSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'Where the helpdesk receives our events.' }),
    secret: Type.String({ minLength: 16, description: 'Standard Webhooks secret (`whsec_…`), used both ways.' }),
    availabilityUrl: Type.Optional(
      Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'Optional: answers a signed GET with `{"agentsOnline": n}`; polled in the background.' }),
    ),
  },
  { additionalProperties: false },
);

export type WebhookConfig = Static<typeof webhookConfigSchema>;
