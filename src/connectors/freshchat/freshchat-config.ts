import { Type, type Static } from '@sinclair/typebox';

const id = (description: string) => Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description });

export const freshchatConfigSchema = Type.Object(
  {
    baseUrl: Type.String({
      pattern: '^https?://[^\\s]+$',
      maxLength: 2048,
      description: 'The account\'s API URL as Settings → API Tokens shows it ("Your chat URL"), e.g. `https://acme.freshchat.com/v2`.',
    }),
    apiToken: Type.String({ minLength: 1, maxLength: 4096, description: 'An API token (Settings → API Tokens).' }),
    webhookPublicKey: Type.String({
      minLength: 64,
      maxLength: 8192,
      pattern: '^[\\sA-Za-z0-9+/=-]+$',
      description: 'The RSA public key of the webhook (Settings → Webhooks), PEM or its base64 body: it verifies `X-Freshchat-Signature`.',
    }),
    appId: id("The account's app id (Settings → Mobile SDK): conversations are created in it."),
    channelId: id('The topic (channel) conversations are opened in.'),
    agentId: id('The agent the connector writes the transcript note as (best a dedicated one).'),
    groupId: Type.Optional(id('Group for every handover unless the queue or metadata says otherwise.')),
    groups: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), id('A group id.'), { description: 'Queue name → group id.' })),
    openingText: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: "The conversation's first message, written as the user (Freshchat opens a conversation with one); default `Handed over by the bot.`",
      }),
    ),
  },
  { additionalProperties: false },
);

export type FreshchatConfig = Static<typeof freshchatConfigSchema>;

export const DEFAULT_OPENING_TEXT = 'Handed over by the bot.';
