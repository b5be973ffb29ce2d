import { Type } from '@sinclair/typebox';
import { checkProblems, setupStates } from '../../connectors/connector.js';
import { runConnectorSetup } from '../../connectors/connector-setup.js';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import type { Connectors } from '../../connectors/connector-store.js';
import { createApiKey, createTenant, listApiKeys, listTenants, requireTenant, revokeApiKey, updateTenant } from '../../tenants/tenants.js';
import { createQueue, listQueues, type Queue } from '../../routing/queues.js';
import { createAgent, endSessions, listAgents, updateAgent } from '../../desk/agents.js';
import { roles, type Agent } from '../../model/agent.js';
import { weekdays } from '../../routing/opening-hours.js';
import { adminAuth, adminTokenFingerprint, adminTokens } from '../auth.js';
import { Nullable, errorResponses, literalUnion } from '../schemas.js';
import { erasureKeyIds, listAudit, recordAuditAfter } from '../../audit/audit-log.js';
import { adminTokenLastUses, recordAdminTokenUse } from '../../audit/admin-token-uses.js';
import { AppError } from '../../resilience/errors.js';
import { withoutDeadline } from '../../resilience/deadline.js';
import { legacyUserIdSha256 } from '../../privacy/user-digest.js';
import { deleteTenant } from '../../privacy/tenant-deletion.js';

const tags = ['Admin API'];
const security = [{ adminToken: [] }];
const TenantParams = Type.Object({ tenantId: Type.String({ maxLength: 64 }) });
const WebhookUrl = Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048 });

const TimeRange = Type.Object(
  {
    from: Type.String({ maxLength: 5, pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$', description: 'HH:MM, 24-hour (00:00 to 23:59)' }),
    to: Type.String({ maxLength: 5, pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$', description: 'HH:MM, 24-hour (00:00 to 24:00, the end of the day)' }),
  },
  { additionalProperties: false, title: 'TimeRange' },
);
const OpeningHours = Type.Object(Object.fromEntries(weekdays.map((d) => [d, Type.Optional(Type.Array(TimeRange, { maxItems: 10 }))])), {
  additionalProperties: false,
  title: 'OpeningHours',
  description: 'Weekly hours in the queue time zone; a day left out is closed. Leave the whole object out for around the clock.',
});

const QueueSchema = Type.Object(
  {
    id: Type.String(),
    name: Type.String(),
    connectorId: Nullable(Type.String()),
    openingHours: Nullable(OpeningHours, { description: 'null: open around the clock.' }),
    timeZone: Type.String(),
    closedDates: Type.Array(Type.String()),
    noAnswerTimeoutSeconds: Type.Integer(),
    maxWaiting: Type.Integer(),
  },
  { title: 'Queue' },
);
const AgentSchema = Type.Object(
  {
    id: Type.String(),
    email: Type.String(),
    name: Type.String(),
    role: Type.String(),
    queueIds: Nullable(Type.Array(Type.String())),
    maxChats: Type.Integer(),
    presence: Type.String(),
    disabled: Type.Boolean({ description: 'Disabled: cannot sign in until enabled again.' }),
  },
  { title: 'Agent' },
);
const AgentParams = Type.Object({ tenantId: Type.String({ minLength: 1, maxLength: 64 }), agentId: Type.String({ minLength: 1, maxLength: 64 }) });
const agentQueues = Type.Array(Type.String({ maxLength: 200 }), {
  maxItems: 100,
  description: 'Queue names this agent serves; all desk queues when left out or empty.',
});
const roleField = literalUnion(roles, {
  description: '`agent` answers chats; `supervisor` also sees the team, reads and moves any desk chat, and can set agents away or sign them out.',
});
const ConnectorCheckSchema = Type.Object(
  {
    connectorId: Type.String(),
    name: Type.String(),
    type: Type.String(),
    verdict: literalUnion(['ok', 'failing', 'unchecked'] as const, {
      description: '`unchecked`: the connector has nothing it can check without acting (`reason` says why).',
    }),
    problem: Nullable(literalUnion(checkProblems, { description: 'With `failing`: what is wrong.' })),
    reason: Type.String({ description: 'One line naming the cause and what to fix.' }),
    checkedAt: Type.String({ format: 'date-time' }),
  },
  { title: 'ConnectorCheck' },
);
const ConnectorSetupSchema = Type.Object(
  {
    connectorId: Type.String(),
    name: Type.String(),
    type: Type.String(),
    inboundUrl: Type.String({ description: 'The URL the system must call, as the settings below are judged against.' }),
    applied: Type.Boolean({ description: 'Whether changes were allowed (`apply`).' }),
    check: Type.Object({
      verdict: literalUnion(['ok', 'failing', 'unchecked'] as const),
      problem: Nullable(literalUnion(checkProblems)),
      reason: Type.String(),
    }),
    items: Type.Array(
      Type.Object({
        setting: Type.String({ description: "Where and what, in the system's words." }),
        state: literalUnion(setupStates, {
          description: '`ok` as needed; `changed` set now; `missing` not as needed (`detail` says how to set it); `unknown` not readable through the API.',
        }),
        detail: Type.String(),
      }),
      { description: 'The vendor settings a deployment needs; empty when the connector has nothing to set up.' },
    ),
    failure: Nullable(Type.String({ description: 'Why the setup stopped (a vendor call failed or the check failed); the items before it stand.' })),
  },
  { title: 'ConnectorSetup' },
);
const TenantSchema = Type.Object(
  { id: Type.String(), name: Type.String(), webhookUrl: Nullable(Type.String()), retentionDays: Nullable(Type.Integer()) },
  { title: 'Tenant' },
);
const tenantJson = (t: { id: string; name: string; webhookUrl: string | null; retentionDays: number | null }) => ({
  id: t.id,
  name: t.name,
  webhookUrl: t.webhookUrl,
  retentionDays: t.retentionDays,
});

const queueJson = (q: Queue) => ({
  id: q.id,
  name: q.name,
  connectorId: q.connectorId,
  openingHours: q.schedule.weekly ?? null,
  timeZone: q.schedule.timeZone,
  closedDates: q.schedule.closedDates ?? [],
  noAnswerTimeoutSeconds: q.noAnswerTimeoutSeconds,
  maxWaiting: q.maxWaiting,
});
const agentJson = (a: Agent) => ({
  id: a.id,
  email: a.email,
  name: a.name,
  role: a.role,
  queueIds: a.queueIds,
  maxChats: a.maxChats,
  presence: a.presence,
  disabled: a.disabled,
});

export function adminRoutes(deps: Deps, connectors: Connectors, adminToken: string): FastifyPluginAsync {
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    // Last use per admin token, written at most once a minute per token and instance.
    const lastWritten = new Map<string, number>();
    const noteUse = (fingerprint: string) => {
      const now = Date.now();
      if (now - (lastWritten.get(fingerprint) ?? 0) < 60_000) return;
      lastWritten.set(fingerprint, now);
      void withoutDeadline(() => recordAdminTokenUse(deps.db, fingerprint)).catch((err: unknown) => {
        lastWritten.delete(fingerprint);
        deps.log.warn({ err }, 'could not record the use of an admin token');
      });
    };
    app.addHook('onRequest', adminAuth(adminToken, noteUse));
    // Every change an admin makes is recorded once it is answered: who, what, on which ids, with what
    // outcome (never the body: it may carry secrets). Reads are not recorded.
    app.addHook('onResponse', async (request, reply) => {
      if (request.method === 'GET' || request.method === 'HEAD' || reply.statusCode === 401) return;
      const params = (request.params ?? {}) as Record<string, string>;
      await recordAuditAfter(
        deps.db,
        {
          actor: 'admin',
          action: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`,
          tenantId: params.tenantId ?? null,
          outcome: reply.statusCode,
          // Which of the admin tokens acted (a fingerprint, not the token), so a rotation can be followed.
          details: { ...params, token: request.adminTokenFingerprint },
          address: request.ip,
        },
        request.log,
        'an admin action',
      );
    });

    app.get(
      '/v1/admin/tokens',
      {
        schema: {
          tags,
          security,
          summary: 'The configured admin tokens by fingerprint, with when each was last used (to retire an old one safely)',
          response: {
            200: Type.Object({ tokens: Type.Array(Type.Object({ fingerprint: Type.String(), lastUsedAt: Nullable(Type.String()) })) }),
            ...errorResponses,
          },
        },
      },
      async () => {
        const fingerprints = adminTokens(adminToken).map(adminTokenFingerprint);
        const lastUses = await adminTokenLastUses(deps.db, fingerprints);
        return { tokens: fingerprints.map((fingerprint) => ({ fingerprint, lastUsedAt: lastUses.get(fingerprint)?.toISOString() ?? null })) };
      },
    );

    app.post(
      '/v1/admin/keys/rotate',
      {
        schema: {
          tags,
          security,
          summary:
            'Re-encrypt every stored credential under the current key (HANDOVER_SECRET_KEY_ID); afterwards older keys can be removed (erasures recorded under a removed key can no longer be looked up by user id)',
          response: { 200: Type.Object({ reencrypted: Type.Integer(), keyId: Type.String() }), ...errorResponses },
        },
      },
      async () => ({ reencrypted: await connectors.sealStoredSecrets(), keyId: connectors.currentKeyId() }),
    );

    app.get(
      '/v1/admin/audit-log',
      {
        schema: {
          tags,
          security,
          summary: 'The audit log: admin actions, sign-ins and erasures, newest first',
          description:
            "With `erasedUserId` (and `tenantId`): only the erasures of that end user (the bot's `user.id`), found by recomputing the keyed digest the erasure recorded under each configured secret key. `uncheckedKeyIds` names the keys this tenant's erasures were recorded under that are no longer configured: erasures under them cannot be found. An empty list and no `uncheckedKeyIds`: no erasure of that user is recorded.",
          querystring: Type.Object({
            tenantId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            before: Type.Optional(Type.String({ pattern: '^[0-9]{1,18}$' })),
            limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
            erasedUserId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          }),
          response: {
            200: Type.Object({
              entries: Type.Array(
                Type.Object({
                  id: Type.String(),
                  at: Type.String(),
                  actor: Type.String(),
                  action: Type.String(),
                  tenantId: Nullable(Type.String()),
                  outcome: Nullable(Type.Integer()),
                  details: Type.Record(Type.String(), Type.Unknown()),
                  address: Nullable(Type.String()),
                }),
              ),
              uncheckedKeyIds: Type.Optional(Type.Array(Type.String(), { description: 'With erasedUserId: recorded key ids no longer configured.' })),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        const { tenantId, erasedUserId } = request.query;
        // A user id means something only within its tenant (the digest covers both).
        if (erasedUserId !== undefined && tenantId === undefined) {
          throw new AppError('invalid_request', {
            message: 'erasedUserId needs the tenantId of that user.',
            details: { problems: ['tenantId is required with erasedUserId'] },
          });
        }
        // Erasures recorded under a key that has since been removed cannot be recomputed: say so, rather
        // than answer "not erased" for them.
        const uncheckedKeyIds =
          erasedUserId !== undefined && tenantId !== undefined ? (await erasureKeyIds(deps.db, tenantId)).filter((keyId) => !deps.userIds.knows(keyId)) : [];
        return {
          ...(uncheckedKeyIds.length > 0 ? { uncheckedKeyIds } : {}),
          entries: await listAudit(deps.db, {
            tenantId,
            before: request.query.before ? Number(request.query.before) : undefined,
            limit: Math.min(Math.max(Number(request.query.limit ?? 100), 1), 1000),
            erasedUser:
              erasedUserId !== undefined && tenantId !== undefined
                ? { digests: deps.userIds.candidates(tenantId, erasedUserId), legacySha256: legacyUserIdSha256(tenantId, erasedUserId) }
                : undefined,
          }),
        };
      },
    );

    app.post(
      '/v1/admin/tenants',
      {
        schema: {
          tags,
          security,
          summary: 'Create a tenant; its API key and webhook secret are shown once',
          body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 200 }), webhookUrl: Type.Optional(WebhookUrl) }, { additionalProperties: false }),
          response: {
            201: Type.Object({
              id: Type.String(),
              name: Type.String(),
              webhookUrl: Nullable(Type.String()),
              apiKey: Type.String(),
              webhookSecret: Type.String(),
            }),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => reply.code(201).send(await createTenant(deps, request.body)),
    );

    app.get(
      '/v1/admin/tenants',
      { schema: { tags, security, response: { 200: Type.Object({ tenants: Type.Array(TenantSchema) }), ...errorResponses } } },
      async () => ({
        tenants: (await listTenants(deps.db)).map(tenantJson),
      }),
    );

    app.patch(
      '/v1/admin/tenants/:tenantId',
      {
        schema: {
          tags,
          security,
          summary: 'Rename a tenant, change its webhook URL (null removes it) or how long ended conversations are kept (null: for ever)',
          params: TenantParams,
          body: Type.Object(
            {
              name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              webhookUrl: Type.Optional(Nullable(WebhookUrl)),
              retentionDays: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 3650 }))),
            },
            { additionalProperties: false },
          ),
          response: { 200: TenantSchema, ...errorResponses },
        },
      },
      async (request) => {
        return tenantJson(await updateTenant(deps, request.params.tenantId, request.body));
      },
    );

    app.delete(
      '/v1/admin/tenants/:tenantId',
      {
        schema: {
          tags,
          security,
          summary: 'Delete a tenant and everything it owns: conversations, messages, events, files, API keys, connectors, queues, agents',
          description:
            'Cannot be undone. Live conversations are deleted too, without telling the bot. Runs in batches (a large tenant takes a while); cut short, run it again to finish. Its API keys stop working at once on every instance told over the bus, and within HANDOVER_API_KEY_CACHE_MS on one that is not. Recorded in the audit log (`tenant.deleted`, with the counts).',
          params: TenantParams,
          response: { 204: Type.Null(), ...errorResponses },
        },
      },
      async (request, reply) => {
        await deleteTenant(deps, request.params.tenantId, { actor: 'admin', address: request.ip });
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/admin/tenants/:tenantId/api-keys',
      {
        schema: {
          tags,
          security,
          summary: 'Issue another API key (for rotation, or a read-only one); shown once',
          params: TenantParams,
          description: 'Body (optional): `{"scope": "bot" | "read"}`; without one, a bot key.',
          response: { 201: Type.Object({ id: Type.String(), apiKey: Type.String(), scope: Type.String() }), ...errorResponses },
        },
      },
      async (request, reply) => {
        // The body is optional (older clients send none), so it is checked here rather than by a schema.
        const body = (request.body ?? {}) as Record<string, unknown>;
        const scope = body.scope ?? 'bot';
        if (typeof body !== 'object' || Array.isArray(body) || Object.keys(body).some((k) => k !== 'scope') || (scope !== 'bot' && scope !== 'read')) {
          throw new AppError('invalid_request', { message: 'The body may only be {"scope": "bot" | "read"}.' });
        }
        return reply.code(201).send(await createApiKey(deps, request.params.tenantId, scope));
      },
    );

    app.get(
      '/v1/admin/tenants/:tenantId/api-keys',
      {
        schema: {
          tags,
          security,
          summary: "A tenant's API keys (never the keys themselves): scope, when last used, revoked or not",
          params: TenantParams,
          response: {
            200: Type.Object({
              apiKeys: Type.Array(
                Type.Object({
                  id: Type.String(),
                  hint: Type.String(),
                  scope: Type.String(),
                  createdAt: Type.String(),
                  lastUsedAt: Nullable(Type.String()),
                  revokedAt: Nullable(Type.String()),
                }),
              ),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => ({ apiKeys: await listApiKeys(deps.db, request.params.tenantId) }),
    );

    app.delete(
      '/v1/admin/tenants/:tenantId/api-keys/:keyId',
      {
        schema: {
          tags,
          security,
          summary: 'Revoke an API key (it stops working within HANDOVER_API_KEY_CACHE_MS)',
          params: Type.Object({ tenantId: Type.String({ maxLength: 64 }), keyId: Type.String({ maxLength: 64 }) }),
          response: { 204: Type.Null(), ...errorResponses },
        },
      },
      async (request, reply) => {
        await revokeApiKey(deps, request.params.tenantId, request.params.keyId);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/v1/admin/tenants/:tenantId/connectors',
      {
        schema: {
          tags,
          security,
          summary: 'Connect an external helpdesk',
          params: TenantParams,
          body: Type.Object(
            {
              type: Type.String({ minLength: 1, maxLength: 64 }),
              name: Type.String({ minLength: 1, maxLength: 200 }),
              config: Type.Record(Type.String(), Type.Unknown()),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ id: Type.String(), type: Type.String(), name: Type.String(), inboundUrl: Type.String() }), ...errorResponses },
        },
      },
      async (request, reply) => {
        await requireTenant(deps.db, request.params.tenantId);
        const record = await connectors.add({ tenantId: request.params.tenantId, ...request.body }, deps.config.outbound);
        return reply
          .code(201)
          .send({ id: record.id, type: record.type, name: record.name, inboundUrl: `${deps.config.publicUrl}/v1/connectors/${record.id}/events` });
      },
    );

    app.get(
      '/v1/admin/tenants/:tenantId/connector-checks',
      {
        schema: {
          tags,
          security,
          summary: "Each connector's last setup check (run in the background; this never calls a helpdesk)",
          params: TenantParams,
          response: { 200: Type.Object({ checks: Type.Array(ConnectorCheckSchema) }), ...errorResponses },
        },
      },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        const checks = deps.connectorChecks?.(request.params.tenantId) ?? [];
        return {
          checks: checks.map(({ connectorId, name, type, verdict, problem, reason, checkedAt }) => ({
            connectorId,
            name,
            type,
            verdict,
            problem,
            reason,
            checkedAt,
          })),
        };
      },
    );

    app.post(
      '/v1/admin/tenants/:tenantId/connectors/:connectorId/setup',
      {
        schema: {
          tags,
          security,
          summary: "Runs a connector's check and reads the vendor settings a deployment needs; with `apply`, sets what the system's API allows",
          params: Type.Object({ tenantId: Type.String({ maxLength: 64 }), connectorId: Type.String({ maxLength: 64 }) }),
          body: Type.Object(
            {
              apply: Type.Optional(Type.Boolean({ description: 'Change what is not as needed, where the API allows it (default false: only report).' })),
              irreversible: Type.Optional(
                Type.Boolean({ description: "With `apply`: also make changes that cannot be undone, such as Zendesk's `multiConvoEnabled` (default false)." }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 200: ConnectorSetupSchema, ...errorResponses },
        },
      },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        const { record, connector } = await connectors.get(request.params.connectorId);
        if (record.tenantId !== request.params.tenantId) throw new AppError('connector_not_found');
        const inboundUrl = `${deps.config.publicUrl}/v1/connectors/${record.id}/events`;
        const apply = request.body.apply === true;
        // Several vendor calls in a row: bounded as a whole, outside the request deadline (an operator waits).
        const report = await withoutDeadline(() =>
          runConnectorSetup(connector, {
            inboundUrl,
            apply,
            irreversible: request.body.irreversible === true,
            checkTimeoutMs: deps.config.delivery.timeoutMs,
            setupTimeoutMs: deps.config.delivery.timeoutMs * 4,
            quoteAnswers: !deps.config.redactContent,
          }),
        );
        const check =
          report.check.verdict === 'failing'
            ? { verdict: report.check.verdict, problem: report.check.problem, reason: report.check.reason }
            : { verdict: report.check.verdict, problem: null, reason: report.check.reason };
        return {
          connectorId: record.id,
          name: record.name,
          type: record.type,
          inboundUrl,
          applied: apply,
          check,
          items: report.items,
          failure: report.failure,
        };
      },
    );

    app.patch(
      '/v1/admin/tenants/:tenantId/connectors/:connectorId',
      {
        schema: {
          tags,
          security,
          summary: 'Rename a connector or replace its config (secret fields left out keep their stored values)',
          params: Type.Object({ tenantId: Type.String({ maxLength: 64 }), connectorId: Type.String({ maxLength: 64 }) }),
          body: Type.Object(
            { name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), config: Type.Optional(Type.Record(Type.String(), Type.Unknown())) },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: Type.Object({ id: Type.String(), type: Type.String(), name: Type.String(), inboundUrl: Type.String() }), ...errorResponses },
        },
      },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        const record = await connectors.update(
          { tenantId: request.params.tenantId, connectorId: request.params.connectorId, name: request.body.name, config: request.body.config },
          deps.config.outbound,
        );
        return { id: record.id, type: record.type, name: record.name, inboundUrl: `${deps.config.publicUrl}/v1/connectors/${record.id}/events` };
      },
    );

    app.get(
      '/v1/admin/tenants/:tenantId/connectors',
      {
        schema: {
          tags,
          security,
          params: TenantParams,
          response: {
            200: Type.Object({
              connectors: Type.Array(Type.Object({ id: Type.String(), type: Type.String(), name: Type.String(), inboundUrl: Type.String() })),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        const list = await connectors.list(request.params.tenantId);
        return { connectors: list.map((c) => ({ id: c.id, type: c.type, name: c.name, inboundUrl: `${deps.config.publicUrl}/v1/connectors/${c.id}/events` })) };
      },
    );

    app.post(
      '/v1/admin/tenants/:tenantId/queues',
      {
        schema: {
          tags,
          security,
          summary: 'Create a queue; without connectorId the built-in desk answers it',
          params: TenantParams,
          body: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 200 }),
              connectorId: Type.Optional(Type.String({ maxLength: 64 })),
              openingHours: Type.Optional(Nullable(OpeningHours)),
              timeZone: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
              closedDates: Type.Optional(
                Type.Array(Type.String({ maxLength: 10, pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$', description: 'YYYY-MM-DD' }), {
                  maxItems: 1000,
                }),
              ),
              noAnswerTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400 })),
              maxWaiting: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: QueueSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        await requireTenant(deps.db, request.params.tenantId);
        return reply.code(201).send(queueJson(await createQueue(deps, { tenantId: request.params.tenantId, ...request.body })));
      },
    );

    app.get(
      '/v1/admin/tenants/:tenantId/queues',
      { schema: { tags, security, params: TenantParams, response: { 200: Type.Object({ queues: Type.Array(QueueSchema) }), ...errorResponses } } },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        return { queues: (await listQueues(deps.db, request.params.tenantId)).map(queueJson) };
      },
    );

    app.post(
      '/v1/admin/tenants/:tenantId/agents',
      {
        schema: {
          tags,
          security,
          summary: 'Create a desk agent',
          params: TenantParams,
          body: Type.Object(
            {
              email: Type.String({ minLength: 3, maxLength: 320, pattern: '^[^\\s@]+@[^\\s@]+$' }),
              name: Type.String({ minLength: 1, maxLength: 200 }),
              password: Type.String({ minLength: 8, maxLength: 512 }),
              queues: Type.Optional(agentQueues),
              maxChats: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
              role: Type.Optional(roleField),
            },
            { additionalProperties: false },
          ),
          response: { 201: AgentSchema, ...errorResponses },
        },
      },
      async (request, reply) => {
        await requireTenant(deps.db, request.params.tenantId);
        return reply.code(201).send(agentJson(await createAgent(deps, { tenantId: request.params.tenantId, ...request.body })));
      },
    );

    app.get(
      '/v1/admin/tenants/:tenantId/agents',
      { schema: { tags, security, params: TenantParams, response: { 200: Type.Object({ agents: Type.Array(AgentSchema) }), ...errorResponses } } },
      async (request) => {
        await requireTenant(deps.db, request.params.tenantId);
        return { agents: (await listAgents(deps.db, request.params.tenantId)).map(agentJson) };
      },
    );

    app.patch(
      '/v1/admin/tenants/:tenantId/agents/:agentId',
      {
        schema: {
          tags,
          security,
          summary: "Change an agent's name, role, queues, chat limit or password, or disable them (effective on their next request)",
          description:
            'A new `password`, or `disabled: true`, also signs the agent out everywhere. A disabled agent cannot sign in until `disabled: false`; the agent stays, with the chats and notes they wrote.',
          params: AgentParams,
          body: Type.Object(
            {
              name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
              role: Type.Optional(roleField),
              queues: Type.Optional(agentQueues),
              maxChats: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
              password: Type.Optional(Type.String({ minLength: 8, maxLength: 512 })),
              disabled: Type.Optional(Type.Boolean()),
            },
            { additionalProperties: false, minProperties: 1 },
          ),
          response: { 200: AgentSchema, ...errorResponses },
        },
      },
      async (request) => agentJson(await updateAgent(deps, request.params.tenantId, request.params.agentId, request.body)),
    );

    app.delete(
      '/v1/admin/tenants/:tenantId/agents/:agentId/sessions',
      {
        schema: {
          tags,
          security,
          summary: 'Sign an agent out everywhere: every session ends, open consoles close',
          params: AgentParams,
          response: { 200: Type.Object({ endedSessions: Type.Integer() }), ...errorResponses },
        },
      },
      async (request) => ({ endedSessions: await endSessions(deps, request.params.tenantId, request.params.agentId) }),
    );
  };
}
