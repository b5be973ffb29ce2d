import { Type, type Static } from '@sinclair/typebox';

const id = (description = 'An Intercom id (digits).') => Type.String({ pattern: '^[0-9]{1,20}$', description });

export const intercomConfigSchema = Type.Object(
  {
    baseUrl: Type.String({
      pattern: '^https?://[^\\s]+$',
      maxLength: 2048,
      description: "Intercom's REST API for the workspace's region: `https://api.intercom.io`, `https://api.eu.intercom.io` or `https://api.au.intercom.io`.",
    }),
    accessToken: Type.String({ minLength: 1, maxLength: 512, description: "The app's access token (Developer Hub → the app → Authentication)." }),
    clientSecret: Type.String({ minLength: 8, maxLength: 512, description: "The app's client secret (Basic information): it signs `X-Hub-Signature`." }),
    adminId: id('The admin the connector acts as for notes, assignments and closing: best a dedicated one (a bot teammate).'),
    teamId: Type.Optional(id('Team inbox for every handover unless the queue or metadata says otherwise.')),
    teams: Type.Optional(Type.Record(Type.String({ maxLength: 200 }), id(), { description: 'Queue name → team id.' })),
    reconcileIntervalMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 3_600_000,
        description:
          'With it, each open conversation is also read this often for what notifications did not bring (one stream slot per open conversation); without it, only notifications are used.',
      }),
    ),
    openingText: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: "The conversation's first message, written as the user (Intercom opens a conversation with one); default `Handed over by the bot.`",
      }),
    ),
  },
  { additionalProperties: false },
);

export type IntercomConfig = Static<typeof intercomConfigSchema>;

export const DEFAULT_OPENING_TEXT = 'Handed over by the bot.';
