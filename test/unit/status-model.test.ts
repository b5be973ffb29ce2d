import { describe, expect, it } from 'vitest';
import { judgeComponents, type StatusSignals } from '../../src/monitoring/status-model.js';
import { IncidentBook } from '../../src/monitoring/incidents.js';

const quiet = { requests: 100, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 4, p95Ms: 12, p99Ms: 30, seconds: 60 };
const thresholds = { latencyTargetMs: 250, eventLoopDelayLimitMs: 200, heapUsedLimitRatio: 0.92, backlogAgeTargetSeconds: 60 };
const GiB = 1024 ** 3;

function signals(overrides: Partial<StatusSignals> = {}): StatusSignals {
  return {
    windowSeconds: 60,
    api: quiet,
    desk: quiet,
    admission: { inflight: 2, limit: 32, waiting: 0 },
    eventLoopDelayMs: 1,
    eventLoopUtilization: 0.1,
    heap: { usedBytes: 0.3 * GiB, limitBytes: 2 * GiB },
    dbWaiting: 0,
    backlog: [],
    connectors: [],
    ...overrides,
  };
}

const byId = (s: StatusSignals) => Object.fromEntries(judgeComponents(s, thresholds).map((c) => [c.id, c]));

describe('status verdicts name the measured cause', () => {
  it('all quiet: operational', () => {
    expect(Object.values(byId(signals())).map((c) => c.state)).toEqual(['operational', 'operational', 'operational']);
  });

  it('judges latency and failure ratios only on enough requests: one person clicking is not an incident', () => {
    // A fresh desk after one sign-in: four requests, the sign-in among them slow on purpose.
    const few = { requests: 4, serverErrors: 0, rejections: 0, rejectionsByCause: {}, p50Ms: 20, p95Ms: 285, p99Ms: 285, seconds: 60 };
    const desk = byId(signals({ desk: few })).desk!;
    expect(desk.state).toBe('operational');
    expect(desk.cause).toBe('Desk operational: 4 requests in the last 60 s, too few to judge latency (p95 285 ms; judged from 20).');
    // One failure in two requests is not a major outage either; five failures are, however few the requests.
    expect(byId(signals({ api: { ...few, requests: 2, serverErrors: 1 } })).bot_api!.state).toBe('operational');
    expect(byId(signals({ api: { ...few, requests: 8, serverErrors: 5 } })).bot_api!.state).toBe('major_outage');
    // With enough requests, the same p95 is a verdict.
    expect(byId(signals({ desk: { ...few, requests: 40 } })).desk!.state).toBe('degraded');
  });

  it('slow answers with the loop busy: degraded, CPU-bound', () => {
    const c = byId(signals({ api: { ...quiet, p95Ms: 1800 }, eventLoopDelayMs: 180, eventLoopUtilization: 0.98 })).bot_api!;
    expect(c.state).toBe('degraded');
    expect(c.cause).toBe(
      'Bot API degraded: p95 1.8 s against a 250 ms target; event-loop delay 180 ms (limit 200 ms), loop busy 98 %: the instance is CPU-bound.',
    );
  });

  it('slow answers with the loop busy but its thread waiting for a core: short of CPU, not CPU-bound', () => {
    const c = byId(signals({ api: { ...quiet, p95Ms: 1800 }, eventLoopDelayMs: 180, eventLoopUtilization: 1, eventLoopCpuShare: 0.4 })).bot_api!;
    expect(c.state).toBe('degraded');
    expect(c.cause).toBe(
      "Bot API degraded: p95 1.8 s against a 250 ms target; event-loop delay 180 ms (limit 200 ms), loop busy 100 %: its thread ran only 40 % of the time and waited for a CPU 60 %: the instance does not get the CPU it needs (its cores are shared with other busy processes or threads, such as a database on the same machine, or its container's CPU quota is used up).",
    );
  });

  it('memory refusals: the heap, never the queue', () => {
    const c = byId(
      signals({ api: { ...quiet, rejections: 10, serverErrors: 10, rejectionsByCause: { memory: 10 } }, heap: { usedBytes: 1.9 * GiB, limitBytes: 2 * GiB } }),
    ).bot_api!;
    expect(c.cause).toMatch(/refused — heap 1\.9 GiB used of a 2\.0 GiB limit \(95 %, refusing above 92 %\)/);
  });

  it('server errors beyond refusals: partial, then major outage', () => {
    expect(byId(signals({ api: { ...quiet, serverErrors: 10 } })).bot_api!.state).toBe('partial_outage');
    expect(byId(signals({ api: { ...quiet, serverErrors: 60 } })).bot_api!.state).toBe('major_outage');
  });

  it('a helpdesk with an open circuit and an old backlog: its component and delivery say so', () => {
    const c = byId(
      signals({
        connectors: [{ id: 'con_1', name: 'Zen', circuit: 'open' }],
        backlog: [{ target: 'agent', connectorId: 'con_1', items: 40, oldestSeconds: 300 }],
      }),
    );
    expect(c['connector:con_1']!.state).toBe('partial_outage');
    expect(c['connector:con_1']!.cause).toContain('circuit is open');
    expect(c.delivery!.state).toBe('degraded');
    expect(c.delivery!.cause).toBe(
      'Delivery degraded: the oldest undelivered item (towards connector con_1) is 5 min old against a 60 s target; 40 items pending.',
    );
  });
});

describe('incidents', () => {
  it('open while a component is unhealthy, monitor once it recovers, resolve after the recovery time', () => {
    const book = new IncidentBook(1000);
    const bad = judgeComponents(signals({ api: { ...quiet, p95Ms: 900 } }), thresholds);
    const good = judgeComponents(signals(), thresholds);
    book.update(bad, new Date(0));
    expect(book.list()).toMatchObject([{ componentId: 'bot_api', phase: 'investigating', impact: 'degraded' }]);
    book.update(good, new Date(100));
    expect(book.list()[0]!.phase).toBe('monitoring');
    book.update(good, new Date(600));
    expect(book.list()[0]!.phase).toBe('monitoring');
    book.update(good, new Date(1200));
    expect(book.list()[0]).toMatchObject({ phase: 'resolved', resolvedAt: new Date(1200).toISOString() });
    expect(book.list()[0]!.timeline.map((e) => e.phase)).toEqual(['investigating', 'monitoring', 'resolved']);
  });
});
