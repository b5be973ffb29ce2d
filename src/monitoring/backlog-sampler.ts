import type { Db } from '../store/db.js';
import type { Logger } from '../telemetry/logger.js';
import type { BacklogSample } from '../telemetry/delivery-metrics.js';

/**
 * Reads the outbox backlog (items and oldest age per side and connector) every `intervalMs` and keeps
 * the result. Scrapes and the status page read the cached sample: a scrape must never wait on a query
 * that grows with the backlog, least of all when the backlog is what is wrong.
 */
export interface BacklogSampler {
  latest(): { samples: BacklogSample[]; at: Date | null };
  /** Items pending for a helpdesk (the agent side) in the last sample; null before the first. */
  agentItems(connectorId: string): number | null;
  /** Takes a sample now (also used by tests to avoid waiting for the interval). */
  sample(): Promise<void>;
  stop(): void;
}

export function startBacklogSampler(db: Db, intervalMs: number, log: Logger, onSample: (samples: BacklogSample[]) => void): BacklogSampler {
  let samples: BacklogSample[] = [];
  let at: Date | null = null;
  let agentItems = new Map<string, number>();
  let running: Promise<void> | null = null;

  async function take(): Promise<void> {
    // Bounded by the statement timeout; pending rows are the undelivered backlog, indexed by a partial index.
    const { rows } = await db.query<{ target: 'agent' | 'bot'; connector_id: string; items: number; oldest_seconds: number }>(
      `select target, case when target = 'agent' then coalesce(connector_id, '') else '' end as connector_id,
              count(*)::int as items, extract(epoch from now() - min(created_at))::float8 as oldest_seconds
       from outbox where state = 'pending'
       group by 1, 2`,
    );
    const taken = new Date();
    // Growth since the previous sample: a backlog of 540 growing 36/s is a different night from 540 draining.
    const previous = new Map(samples.map((s) => [`${s.target}:${s.connectorId}`, s.items]));
    const seconds = at ? (taken.getTime() - at.getTime()) / 1000 : 0;
    samples = rows.map((r) => {
      const sample: BacklogSample = { target: r.target, connectorId: r.connector_id, items: r.items, oldestSeconds: Math.max(0, r.oldest_seconds) };
      if (seconds > 0) sample.growthPerSecond = Math.round(((r.items - (previous.get(`${r.target}:${r.connector_id}`) ?? 0)) / seconds) * 10) / 10;
      return sample;
    });
    at = taken;
    agentItems = new Map(samples.filter((s) => s.target === 'agent').map((s) => [s.connectorId, s.items]));
    onSample(samples);
  }

  const sample = () => {
    running ??= take()
      .catch((err) => log.warn({ err }, 'sampling the outbox backlog failed; metrics keep the last sample'))
      .finally(() => {
        running = null;
      });
    return running;
  };
  void sample();
  const timer = setInterval(() => void sample(), intervalMs);
  timer.unref();
  return {
    latest: () => ({ samples, at }),
    agentItems: (connectorId) => (at === null ? null : (agentItems.get(connectorId) ?? 0)),
    sample,
    stop: () => clearInterval(timer),
  };
}
