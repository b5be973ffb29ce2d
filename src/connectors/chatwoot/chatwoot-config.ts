import { Type, type Static } from '@sinclair/typebox';

const id = Type.Integer({ minimum: 1 });

export const chatwootConfigSchema = Type.Object(
  {
    baseUrl: Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: 'The Chatwoot installation, e.g. `https://app.chatwoot.com`.' }),
    accountId: id,
    inboxId: Type.Integer({ minimum: 1, description: 'The API-channel inbox conversations are opened in.' }),
    userToken: Type.String({ minLength: 1, maxLength: 512, description: "An agent or administrator's access token: contacts and the agents list." }),
    botToken: Type.String({ minLength: 1, maxLength: 512, description: "The agent bot's access token: conversations, messages, status changes." }),
    webhookSecret: Type.String({ minLength: 8, maxLength: 512, description: "The webhook's secret: it signs `X-Chatwoot-Signature`." }),
    teamId: Type.Optional(Type.Integer({ minimum: 1, description: 'Team for every handover unless the queue or metadata says otherwise.' })),
    teams: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), id, { description: 'Queue name → team id.' })),
  },
  { additionalProperties: false },
);

export type ChatwootConfig = Static<typeof chatwootConfigSchema>;
