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
    inboxIdentifier: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9_-]{1,128}$',
        description: "The API inbox's identifier (inbox settings): with it the user's typing is shown to agents through the inbox's public API.",
      }),
    ),
    reconcileIntervalMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 3_600_000,
        description: 'How often each open conversation is read for what its webhooks did not bring (Chatwoot does not retry them); default 60000.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type ChatwootConfig = Static<typeof chatwootConfigSchema>;
