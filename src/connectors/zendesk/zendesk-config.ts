import { Type, type Static } from '@sinclair/typebox';

export const zendeskConfigSchema = Type.Object(
  {
    baseUrl: Type.String({
      pattern: '^https?://[^\\s]+$',
      maxLength: 2048,
      description: 'Sunshine Conversations API base, e.g. `https://acme.zendesk.com/sc` (or `https://api.smooch.io` for legacy accounts).',
    }),
    appId: Type.String({ minLength: 1, maxLength: 128, description: 'The Sunshine Conversations app id.' }),
    keyId: Type.String({ minLength: 1, maxLength: 128, description: 'Id of an app-scoped API key (Basic auth user).' }),
    keySecret: Type.String({ minLength: 1, maxLength: 512, description: 'Secret of that API key (Basic auth password).' }),
    webhookSecret: Type.String({ minLength: 8, maxLength: 512, description: "The webhook's secret: Zendesk sends it in `X-API-Key` with every event." }),
    switchboardIntegration: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 128,
        description:
          'Where control is passed for a human: a switchboard integration id, name or integration type, or `next`. Default `zd:agentWorkspace` (the agent workspace, wherever the switchboard orders it).',
      }),
    ),
    endedByUserText: Type.Optional(Type.String({ minLength: 1, maxLength: 1000, description: 'Posted as the user when the user or bot ends the chat.' })),
  },
  { additionalProperties: false },
);

export type ZendeskConfig = Static<typeof zendeskConfigSchema>;
