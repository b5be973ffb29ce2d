import type { Queryable } from '../store/db.js';
import type { ConnectorSession, ConnectorSessions } from './connector.js';
import { isSealed, type SecretBox } from '../config/secret-box.js';

interface SessionRow {
  external_id: string;
  credential: string | null;
  stream_position: string | null;
}

/**
 * The Postgres side of ConnectorSessions for one connector row (table `connector_sessions`). The
 * per-conversation credential is stored sealed like connector config secrets (AES-256-GCM, bound to its
 * handover and connector), and opened only when loaded.
 */
export function connectorSessions(q: Queryable, tenantId: string, connectorId: string, box: SecretBox): ConnectorSessions {
  const context = (handoverId: string) => `connector-session:${connectorId}:${handoverId}:credential`;
  const seal = (handoverId: string, credential: string | null | undefined) =>
    credential === undefined || credential === null ? credential : JSON.stringify(box.seal(credential, context(handoverId)));
  const open = (handoverId: string, stored: string | null): string | null => {
    if (stored === null) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(stored);
    } catch {
      // Written in clear by an earlier version: sealed the next time it is saved.
      return stored;
    }
    return isSealed(parsed) ? box.open(parsed, context(handoverId)) : stored;
  };
  return {
    async load(handoverId) {
      const { rows } = await q.query<SessionRow>(
        'select external_id, credential, stream_position from connector_sessions where handover_id = $1 and connector_id = $2',
        [handoverId, connectorId],
      );
      const row = rows[0];
      return row ? toSession({ ...row, credential: open(handoverId, row.credential) }) : null;
    },
    async save(handoverId, input) {
      const fields = { ...input, credential: seal(handoverId, input.credential) };
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
        [
          handoverId,
          connectorId,
          fields.credential !== undefined,
          fields.credential ?? null,
          fields.position !== undefined,
          fields.position ?? null,
          fields.openStream ?? null,
        ],
      );
    },
  };
}

function toSession(row: SessionRow): ConnectorSession {
  return { externalId: row.external_id, credential: row.credential, position: row.stream_position };
}
