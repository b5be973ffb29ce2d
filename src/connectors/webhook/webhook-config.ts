import { Type, type Static } from '@sinclair/typebox';

export const webhookConfigSchema = Type.Object(
  {
    url: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'Where the helpdesk receives our events.' }),
    secret: Type.String({ minLength: 16, description: 'Standard Webhooks secret (`whsec_…`), used both ways.' }),
  },
  { additionalProperties: false },
);

export type WebhookConfig = Static<typeof webhookConfigSchema>;
