import { Type, type Static } from '@sinclair/typebox';

/**
 * Where a routing attribute's value comes from: a field of the handover request.
 * `metadata.<key>` reads one key of the request's metadata.
 */
export const routingSources = ['user.id', 'user.name', 'user.email', 'user.locale', 'conversationId', 'handoverId', 'queue'] as const;

export const salesforceConfigSchema = Type.Object(
  {
    baseUrl: Type.String({
      pattern: '^https?://[^\\s]+$',
      maxLength: 2048,
      description: 'The SCRT URL of the org (Embedded Service deployment code snippet), e.g. https://acme.my.salesforce-scrt.com.',
    }),
    orgId: Type.String({
      pattern: '^[0-9A-Za-z]{15}([0-9A-Za-z]{3})?$',
      description: 'The org id, 15 or 18 characters (Salesforce shows both); its first 15 are sent.',
    }),
    esDeveloperName: Type.String({
      pattern: '^[A-Za-z][A-Za-z0-9_]*$',
      maxLength: 80,
      description: 'API name of the Embedded Service deployment (Custom Client).',
    }),
    routingAttributes: Type.Optional(
      Type.Record(
        Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]*$', maxLength: 80 }),
        Type.String({ pattern: '^(user\\.(id|name|email|locale)|conversationId|handoverId|queue|metadata\\.[^\\s]{1,200})$' }),
        {
          description: 'Hidden pre-chat field name → where its value comes from (see docs/connectors/salesforce.md).',
        },
      ),
    ),
    platform: Type.Optional(
      Type.Union([Type.Literal('Web'), Type.Literal('iOS'), Type.Literal('Android')], { description: 'Sent with the access token request; default Web.' }),
    ),
    streamIdleTimeoutMs: Type.Optional(
      Type.Integer({ minimum: 1000, maximum: 600_000, description: 'A stream silent this long is reconnected; default 60000.' }),
    ),
  },
  { additionalProperties: false },
);

export type SalesforceConfig = Static<typeof salesforceConfigSchema>;
