import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { sendError } from '../error-handler.js';
import { bearerToken, isAdminToken } from '../auth.js';
import { AppError, type ErrorCode } from '../../resilience/errors.js';
import type { AdmissionHealth } from '../../resilience/admission.js';

export type Readiness = { ok: true } | { ok: false; code: ErrorCode; message: string };

/**
 * Liveness answers as long as the process can answer at all: it never fails because of load or a
 * dependency, or an orchestrator would restart healthy instances exactly when they are busiest.
 * Readiness says whether this instance can do its job: its admission control gives slots back
 * (checked first: it costs nothing), migrations are applied, the database is reachable. Load alone
 * never fails it (docs/observability.md).
 */
export function opsRoutes(
  ready: () => Promise<Readiness>,
  metrics: () => Promise<{ contentType: string; body: string }>,
  admissionHealth: () => AdmissionHealth,
  /** HANDOVER_METRICS_TOKEN: when set, `/metrics` answers only with it as a Bearer token. */
  metricsToken?: string,
): FastifyPluginAsync {
  return async (plugin) => {
    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.get('/metrics', { config: { admission: 'exempt' }, schema: { tags: ['Operations'], hide: true } }, async (request, reply) => {
      // Metrics name connectors and tell how busy the service is: with a token, only the scraper reads them.
      if (metricsToken !== undefined && !isAdminToken(bearerToken(request), metricsToken)) {
        throw new AppError('unauthorized', { message: 'The metrics token is wrong: send HANDOVER_METRICS_TOKEN as "Authorization: Bearer <token>".' });
      }
      const { contentType, body } = await metrics();
      return reply.type(contentType).send(body);
    });
    app.get(
      '/healthz',
      { config: { admission: 'exempt' }, schema: { tags: ['Operations'], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
      async () => ({ status: 'ok' as const }),
    );
    app.get(
      '/readyz',
      { config: { admission: 'exempt' }, schema: { tags: ['Operations'], response: { 200: Type.Object({ status: Type.Literal('ready') }) } } },
      async (_request, reply) => {
        const admission = admissionHealth();
        if (!admission.ok) {
          const { ok: _ok, problems, ...facts } = admission;
          return sendError(
            reply,
            new AppError('admission_stuck', {
              message: `${problems.join(' ')} Requests are refused while they are held; restart this instance.`,
              details: facts,
            }),
          );
        }
        const result = await ready();
        if (result.ok) return { status: 'ready' as const };
        return sendError(reply, new AppError(result.code, { message: result.message }));
      },
    );
  };
}
