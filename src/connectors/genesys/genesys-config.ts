import { Type, type Static } from '@sinclair/typebox';

const url = (description: string) => Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description });

export const genesysConfigSchema = Type.Object(
  {
    apiBaseUrl: url("The Platform API of the org's region, e.g. `https://api.mypurecloud.com` or `https://api.mypurecloud.de`."),
    loginBaseUrl: url('The login host of the same region, e.g. `https://login.mypurecloud.com`: the token is asked at `/oauth/token` there.'),
    clientId: Type.String({
      minLength: 1,
      maxLength: 200,
      description: 'An OAuth client with the Client Credentials grant (Admin → Integrations → OAuth) and a role allowing Open Messaging.',
    }),
    clientSecret: Type.String({ minLength: 1, maxLength: 512, description: "That OAuth client's secret." }),
    integrationId: Type.String({
      pattern: '^[0-9A-Za-z-]{1,64}$',
      description: "The Open Messaging integration's id (Admin → Message → Platforms → the integration).",
    }),
    webhookSecret: Type.String({
      minLength: 8,
      maxLength: 512,
      description: "The integration's Outbound Notification Webhook Signature Secret Token: it signs `X-Hub-Signature-256`.",
    }),
    endPollSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600,
        description:
          "How often each open conversation is read (`GET /api/v2/conversations/messages/{id}`) to learn that the agent ended it, which Open Messaging's webhook does not tell (default 30; 0: never, the bot is then not told). Each live handover costs one call per period of the OAuth client's rate limit.",
      }),
    ),
  },
  { additionalProperties: false },
);

export type GenesysConfig = Static<typeof genesysConfigSchema>;
