import { isUniqueViolation } from '../store/pg-errors.js';
import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { AppError } from '../resilience/errors.js';
import type { Deps } from '../deps.js';
import { validateSchedule, type Schedule, type WeeklyHours } from './opening-hours.js';

export interface Queue {
  id: string;
  tenantId: string;
  name: string;
  /** null: the built-in desk answers this queue. */
  connectorId: string | null;
  schedule: Schedule;
  noAnswerTimeoutSeconds: number;
  /** How many users may wait beyond the agents' free chat slots before the queue counts as full. */
  maxWaiting: number;
}

interface QueueRow {
  id: string;
  tenant_id: string;
  name: string;
  connector_id: string | null;
  opening_hours: WeeklyHours | null;
  time_zone: string;
  closed_dates: string[];
  no_answer_timeout_seconds: number;
  max_waiting: number;
}

function toQueue(row: QueueRow): Queue {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    name: row.name,
    connectorId: row.connector_id,
    schedule: { weekly: row.opening_hours, timeZone: row.time_zone, closedDates: row.closed_dates },
    noAnswerTimeoutSeconds: row.no_answer_timeout_seconds,
    maxWaiting: row.max_waiting,
  };
}

export interface CreateQueueInput {
  tenantId: string;
  name: string;
  connectorId?: string | undefined;
  openingHours?: WeeklyHours | null | undefined;
  timeZone?: string | undefined;
  closedDates?: string[] | undefined;
  noAnswerTimeoutSeconds?: number | undefined;
  maxWaiting?: number | undefined;
}

export async function createQueue(deps: Deps, input: CreateQueueInput): Promise<Queue> {
  const schedule: Schedule = { weekly: input.openingHours ?? null, timeZone: input.timeZone ?? 'UTC', closedDates: input.closedDates ?? [] };
  const problems = validateSchedule(schedule);
  if (problems.length > 0) throw new AppError('invalid_request', { message: `Opening hours are invalid: ${problems.join('; ')}`, details: { problems } });
  // Any string given, the empty one too, names a connector that must exist.
  if (input.connectorId !== undefined) {
    const { rows } = await deps.db.query('select 1 from connectors where id = $1 and tenant_id = $2', [input.connectorId, input.tenantId]);
    if (rows.length === 0) throw new AppError('connector_not_found');
  }
  const id = newId('queue');
  try {
    const { rows } = await deps.db.query<QueueRow>(
      `insert into queues (id, tenant_id, name, connector_id, opening_hours, time_zone, closed_dates, no_answer_timeout_seconds, max_waiting)
       values ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9) returning *`,
      [
        id,
        input.tenantId,
        input.name,
        input.connectorId ?? null,
        schedule.weekly ? JSON.stringify(schedule.weekly) : null,
        schedule.timeZone,
        JSON.stringify(schedule.closedDates),
        input.noAnswerTimeoutSeconds ?? 300,
        input.maxWaiting ?? 50,
      ],
    );
    return toQueue(rows[0]!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError('already_exists', { message: `A queue named "${input.name}" already exists.` });
    throw err;
  }
}

export async function findQueueByName(q: Queryable, tenantId: string, name: string): Promise<Queue> {
  const { rows } = await q.query<QueueRow>('select * from queues where tenant_id = $1 and name = $2', [tenantId, name]);
  if (!rows[0]) throw new AppError('queue_not_found', { message: `No queue named "${name}" for this tenant.` });
  return toQueue(rows[0]);
}

export async function getQueue(q: Queryable, tenantId: string, id: string): Promise<Queue> {
  const { rows } = await q.query<QueueRow>('select * from queues where tenant_id = $1 and id = $2', [tenantId, id]);
  if (!rows[0]) throw new AppError('queue_not_found');
  return toQueue(rows[0]);
}

export async function listQueues(q: Queryable, tenantId: string): Promise<Queue[]> {
  const { rows } = await q.query<QueueRow>('select * from queues where tenant_id = $1 order by name', [tenantId]);
  return rows.map(toQueue);
}
