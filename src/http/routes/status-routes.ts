import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { AppError } from '../../resilience/errors.js';
import { bearerToken, isAdminToken } from '../auth.js';
import { webRoot } from './web-routes.js';
import { worst } from '../../monitoring/status-model.js';
import { renderStatusPage, type PublicStatus } from '../../monitoring/status-page.js';
import type { StatusService, StatusSnapshot } from '../../monitoring/status-service.js';

const csp = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * `/status` (HTML) and `/status.json`. Anyone may read the public view: component states in plain words,
 * incidents, charts. With the admin token, `/status.json` adds the measured causes, every connector by
 * id and name, and the chart data. Exempt from admission: the page must answer while the API is shedding.
 */
export function statusRoutes(status: StatusService, adminToken: string): FastifyPluginAsync {
  return async (app) => {
    const route = { config: { admission: 'exempt' as const }, schema: { hide: true } };

    app.get('/status.json', route, async (request, reply) => {
      reply.header('cache-control', 'no-store');
      if (isAdmin(request, adminToken)) return { ...status.latest(), chart: status.chart() };
      return publicView(status.latest());
    });

    app.get('/status', route, async (_request, reply) =>
      reply
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header('content-security-policy', csp)
        .header('x-content-type-options', 'nosniff')
        .send(renderStatusPage(publicView(status.latest()), status.chart())),
    );

    app.get('/status/status.css', route, async (_request, reply) =>
      reply
        .header('content-type', 'text/css; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(await readFile(join(webRoot, 'status', 'status.css'))),
    );
  };
}

/** No header: the public view. A header with the wrong token is an error, not a silent downgrade. */
function isAdmin(request: FastifyRequest, adminToken: string): boolean {
  if (!request.headers.authorization) return false;
  if (!isAdminToken(bearerToken(request), adminToken))
    throw new AppError('unauthorized', { message: 'The admin token is wrong; send none for the public view.' });
  return true;
}

const HELPDESKS = { id: 'helpdesks', name: 'Helpdesk connections' };

/** Tenants' connectors are not public: they show as one "Helpdesk connections" component. */
export function publicView(s: StatusSnapshot): PublicStatus {
  const connectors = s.components.filter((c) => c.id.startsWith('connector:'));
  const others = s.components.filter((c) => !c.id.startsWith('connector:'));
  const helpdeskState = worst(connectors.map((c) => c.state));
  const worstConnector = connectors.find((c) => c.state === helpdeskState);
  return {
    status: s.status,
    updatedAt: s.updatedAt,
    components: [
      ...others.map((c) => ({ id: c.id, name: c.name, state: c.state, cause: c.publicCause })),
      {
        ...HELPDESKS,
        state: helpdeskState,
        cause: worstConnector && helpdeskState !== 'operational' ? worstConnector.publicCause.replace('The helpdesk', 'A helpdesk') : 'Operational.',
      },
    ],
    ...(s.checks ? { checks: countChecks(s.checks) } : {}),
    incidents: s.incidents.map((i) => ({
      id: i.id,
      componentName: i.componentId.startsWith('connector:') ? HELPDESKS.name : i.componentName,
      phase: i.phase,
      impact: i.impact,
      startedAt: i.startedAt,
      resolvedAt: i.resolvedAt,
      timeline: i.timeline.map((e) => ({ at: e.at, phase: e.phase, state: e.state, message: e.publicMessage })),
    })),
  };
}

/** Connectors' setup checks, counted: which connector and whose stays behind the admin token. */
function countChecks(lines: NonNullable<StatusSnapshot['checks']>): NonNullable<PublicStatus['checks']> {
  const count = (verdict: string) => lines.filter((l) => l.verdict === verdict).length;
  const last = lines.reduce<string | null>((a, l) => (a === null || l.checkedAt > a ? l.checkedAt : a), null);
  return { ok: count('ok'), failing: count('failing'), unchecked: count('unchecked'), lastCheckedAt: last };
}
