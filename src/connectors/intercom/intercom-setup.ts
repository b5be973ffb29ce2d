import type { SetupContext } from '../connector.js';
import type { IntercomCall } from './intercom-api.js';
import type { IntercomConfig } from './intercom-config.js';
import { INTERCOM_TOPICS } from './intercom-webhook.js';

/** The topics the subscription needs: every one handover reads but the optional `open.assigned` (read like `assigned`). */
const TOPICS = INTERCOM_TOPICS.filter((topic) => topic !== 'conversation.admin.open.assigned');

/**
 * What Intercom's REST API lets handover check of its setup (docs/connectors/intercom.md): that
 * `adminId` is an admin of the workspace with an inbox seat (`GET /admins`), and that every team it
 * routes to exists (`GET /teams/{id}`). Nothing is changed: ids are the connector's own config, and the
 * app's webhook subscription (endpoint and topics) is managed in the Developer Hub only, which the REST
 * API neither shows nor changes.
 */
export async function setUpIntercom(call: IntercomCall, config: IntercomConfig, context: SetupContext, signal: AbortSignal): Promise<void> {
  const { report } = context;
  const admins =
    (await call<{ admins?: Array<{ id?: string | number; name?: string; has_inbox_seat?: boolean }> }>('GET', '/admins', undefined, signal)).body?.admins ?? [];
  const admin = admins.find((a) => String(a.id) === config.adminId);
  if (!admin)
    report({
      setting: 'adminId',
      state: 'missing',
      detail: `no admin ${config.adminId} in this workspace: set adminId to the admin handover writes notes, assignments and closes as (GET /admins lists them)`,
    });
  else if (admin.has_inbox_seat === false)
    report({
      setting: 'adminId',
      state: 'missing',
      detail: `${admin.name ?? config.adminId} has no inbox seat: Intercom refuses replies and assignments by an admin without one`,
    });
  else report({ setting: 'adminId', state: 'ok', detail: `${admin.name ?? config.adminId}, with an inbox seat` });

  const teams = new Map<string, string[]>();
  if (config.teamId !== undefined) teams.set(config.teamId, ['teamId']);
  for (const [queue, teamId] of Object.entries(config.teams ?? {})) teams.set(teamId, [...(teams.get(teamId) ?? []), `teams.${queue}`]);
  for (const [teamId, fields] of teams) {
    const team = await call<{ name?: string; admin_ids?: unknown[] }>('GET', `/teams/${encodeURIComponent(teamId)}`, undefined, signal, { accept: [404] });
    const setting = `team ${teamId} (${fields.join(', ')})`;
    if (team.status === 404) report({ setting, state: 'missing', detail: 'no such team in this workspace: handovers routed there would fail' });
    else
      report({
        setting,
        state: 'ok',
        detail: `${team.body?.name ?? teamId}, ${Array.isArray(team.body?.admin_ids) ? team.body.admin_ids.length : 0} admin(s)`,
      });
  }

  report({
    setting: 'webhook subscription',
    state: 'unknown',
    detail: `not readable through the REST API: in Developer Hub → your app → Webhooks, the endpoint must be ${context.inboundUrl} with the topics ${TOPICS.join(', ')}`,
  });
}
