import type { Queryable } from '../store/db.js';
import type { ConnectorSession, ConnectorSessions } from './connector.js';

interface SessionRow {
  external_id: string;
  credential: string | null;
  stream_position: string | null;
}

/** The Postgres side of ConnectorSessions for one connector row (table `connector_sessions`). */
export function connectorSessions(q: Queryable, tenantId: string, connectorId: string): ConnectorSessions {
  return {
    async load(handoverId) {
      const { rows } = await q.query<SessionRow>('select external_id, credential, stream_position from connector_sessions where handover_id = $1 and connector_id = $2', [handoverId, connectorId]);
      const row = rows[0];
      return row ? toSession(row) : null;
    },
    async save(handoverId, fields) {
      if (fields.externalId !== undefined) {
        await q.query(
          `insert into connector_sessions (handover_id, tenant_id, connector_id, external_id, credential, stream_position, stream_open)
           values ($1, $2, $3, $4, $5, $6, $7)
           on conflict (handover_id) do update set external_id = excluded.external_id, credential = excluded.credential,
             stream_position = excluded.stream_position, stream_open = excluded.stream_open, updated_at = now()`,
          [handoverId, tenantId, connectorId, fields.externalId, fields.credential ?? null, fields.position ?? null, fields.openStream ?? false],
        );
        return;
      }
      // Only the fields given change; null is a value, undefined means "leave it".
      await q.query(
        `update connector_sessions set
           credential = case when $3 then $4 else credential end,
           stream_position = case when $5 then $6 else stream_position end,
           stream_open = coalesce($7, stream_open),
           updated_at = now()
         where handover_id = $1 and connector_id = $2`,
        [handoverId, connectorId, fields.credential !== undefined, fields.credential ?? null, fields.position !== undefined, fields.position ?? null, fields.openStream ?? null],
      );
    },
  };
}

function toSession(row: SessionRow): ConnectorSession {
  return { externalId: row.external_id, credential: row.credential, position: row.stream_position };
}
