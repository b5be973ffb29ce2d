import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { diagnose, mayCarryTokens } from '../../src/cli/diagnose.js';
import { startGenericHelpdesk, type GenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { eventually, setUpDesk, startTestService, type TestService } from '../support/test-service.js';

function runDoctor(url: string, token: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'doctor', url], {
      env: { ...process.env, HANDOVER_ADMIN_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.on('exit', (code) => resolve({ code, stdout }));
  });
}

async function record(t: TestService): Promise<{ metrics: string; status: any }> {
  const metrics = await (await fetch(`${t.url}/metrics`)).text();
  const status = (await t.api('GET', '/status.json', { token: t.adminToken })).body;
  return { metrics, status };
}

describe('handover doctor names the cause', () => {
  let t: TestService | undefined;
  let helpdesk: GenericHelpdesk | undefined;
  afterEach(async () => {
    await t?.close();
    await helpdesk?.close();
    t = undefined;
    helpdesk = undefined;
  });

  it('CPU saturation (live): the event loop is busy, named as such with the action that goes with it, not memory', async () => {
    t = await startTestService('pg', { 'admission.eventLoopDelayLimitMs': 40, 'admission.warmupMs': 0, 'status.sampleMs': 100, 'status.windowMs': 3000 });
    // Busy 80 ms of every 90 ms in this process: the service's own loop is saturated.
    const burn = setInterval(() => {
      const end = Date.now() + 80;
      while (Date.now() < end);
    }, 10);
    let state: { metrics: string; status: any };
    try {
      await new Promise((r) => setTimeout(r, 1200));
      expect((await t.api('GET', '/v1/availability?queue=x', { token: 'handover_sk_x' })).body.error.code).toBe('overloaded_event_loop');
      state = await eventually(
        async () => {
          const s = await record(t!);
          return s.status.components.find((c: any) => c.id === 'bot_api').state !== 'operational' ? s : null;
        },
        'the status to see it',
        20_000,
      );
    } finally {
      clearInterval(burn);
    }
    const d = diagnose(state.metrics, state.status);
    expect(d.healthy).toBe(false);
    // Which of the two a live run reads is the machine's: the burn computes all the time, but while the
    // other test worker, PostgreSQL and the rest share the two cores its thread may get under 80 % of one
    // (44-66 % seen in full runs), and then the service rightly reports it short of CPU. The
    // recorded-metrics case below checks that the doctor tells the two apart.
    const { cause, action } = d.findings[0]!;
    if (cause.startsWith('Short of CPU')) {
      expect(cause).toMatch(/^Short of CPU: event loop busy \d+%, its thread on a CPU only \d+% of the time$/);
      expect(action).toMatch(/^give this instance the CPU it is meant to have/);
    } else {
      expect(cause).toMatch(/^CPU-bound: event loop busy \d+%, timers \d+ ms late/);
      expect(action).toMatch(/^add instances/);
    }
    // The status page judges windows of its own, sampled apart from /metrics': it may name the other one.
    expect(d.status.join(' ')).toMatch(/loop busy \d+ %: (the instance is CPU-bound|its thread ran only .* the instance does not get the CPU it needs)/);
    expect(d.findings.some((f) => f.cause.startsWith('Memory'))).toBe(false);
  });

  it('a slow helpdesk (live): its circuit opens; the doctor names it and exits non-zero', async () => {
    t = await startTestService('pg', {
      'delivery.timeoutMs': 300,
      'connectors.failureThreshold': 2,
      'connectors.cooldownMs': 60_000,
      'delivery.maxAttempts': 20,
      'status.sampleMs': 100,
    });
    helpdesk = await startGenericHelpdesk('whsec_' + Buffer.from('doctor-test-secret-0123456789abcd').toString('base64'));
    // Slower than the call deadline: every call times out.
    helpdesk.respond = () => ({ status: 200, delayMs: 2000 });
    const desk = await setUpDesk(t);
    const connector = await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/connectors`, {
      type: 'webhook',
      name: 'acme-helpdesk',
      config: { url: helpdesk.url, secret: helpdesk.secret },
    });
    await t.admin('POST', `/v1/admin/tenants/${desk.tenantId}/queues`, { name: 'external', connectorId: connector.body.id });
    expect((await t.api('POST', '/v1/handovers', { token: desk.apiKey, body: { conversationId: 'c', queue: 'external', user: { id: 'u' } } })).status).toBe(
      201,
    );
    const state = await eventually(async () => {
      const s = await record(t!);
      // The scrape comes first: wait for a pair in which both have seen the circuit open.
      const open = s.metrics.includes(`handover_connector_circuit_state{connector_id="${connector.body.id}"} 2`);
      return open && s.status.components.some((c: any) => c.id === `connector:${connector.body.id}` && c.state === 'partial_outage') ? s : null;
    }, 'the circuit to open');

    const d = diagnose(state.metrics, state.status);
    expect(d.healthy).toBe(false);
    expect(d.findings[0]!.cause).toBe('Helpdesk acme-helpdesk (webhook, tenant Acme) slow or failing: circuit open');
    expect(d.findings[0]!.evidence.join('; ')).toMatch(/circuit open; calls p99 \d+ ms, [2-9]\d* of [2-9]\d* failed since start; 1 items waiting/);
    expect(d.findings[0]!.action).toMatch(/^check acme-helpdesk .* bots are told it is degraded/);

    const cli = await runDoctor(t.url, t.adminToken);
    expect(cli.code, cli.stdout).toBe(1);
    expect(cli.stdout).toContain('Most likely: Helpdesk acme-helpdesk (webhook, tenant Acme) slow or failing: circuit open');
  });

  it('a busy loop whose thread waits for a core (recorded metrics) reads as short of CPU, not as CPU-bound', () => {
    // An instance on cores shared with a busy database: its loop busy all the time, its thread on a CPU
    // 38 % of it, refusing with overloaded_event_loop.
    const starved = [
      'handover_heap_used_bytes 150000000',
      'handover_heap_limit_bytes 2147483648',
      'handover_event_loop_utilization_ratio 1',
      'handover_event_loop_cpu_ratio 0.38',
      'handover_event_loop_delay_seconds 0.02',
      'handover_admission_rejections_total{cause="event_loop"} 3529',
    ];
    const d = diagnose(starved.join('\n'), null);
    expect(d.findings[0]!.cause).toBe('Short of CPU: event loop busy 100%, its thread on a CPU only 38% of the time');
    expect(d.findings[0]!.evidence[0]).toBe('event-loop utilisation 100%, of which its thread waited for a CPU 62%');
    expect(d.findings[0]!.action).toMatch(/^give this instance the CPU it is meant to have → /);
    // The same loop with its thread running nearly all the time is computing: CPU-bound, add instances.
    const computing = starved.map((line) => (line.startsWith('handover_event_loop_cpu_ratio') ? 'handover_event_loop_cpu_ratio 0.97' : line));
    const c = diagnose(computing.join('\n'), null);
    expect(c.findings[0]!.cause).toMatch(/^CPU-bound: event loop busy 100%/);
    expect(c.findings[0]!.action).toMatch(/^add instances \(CPU\)/);
    // Without the thread's CPU (not Linux), a busy loop reads as before.
    const unknown = starved.filter((line) => !line.startsWith('handover_event_loop_cpu_ratio'));
    expect(diagnose(unknown.join('\n'), null).findings[0]!.cause).toMatch(/^CPU-bound: /);
  });

  it('memory pressure (recorded metrics): heap near its limit reads as memory, not CPU or load', () => {
    // The figures of an instance at 93 % of a 2 GiB heap that has started refusing with overloaded_memory.
    const metrics = [
      '# TYPE handover_heap_used_bytes gauge',
      'handover_heap_used_bytes 1997159792',
      '# TYPE handover_heap_limit_bytes gauge',
      'handover_heap_limit_bytes 2147483648',
      'handover_event_loop_utilization_ratio 0.62',
      'handover_event_loop_delay_seconds 0.004',
      'http_server_active_requests 31',
      'handover_admission_limit 32',
      'handover_admission_waiting 12',
      'handover_admission_rejections_total{cause="memory"} 418',
      'handover_admission_rejections_total{cause="queue_wait"} 3',
      'db_client_connection_count{state="used"} 3',
      'db_client_connection_max 10',
      'db_client_connection_pending_requests 0',
    ].join('\n');
    const status = {
      status: 'partial_outage',
      components: [
        {
          id: 'bot_api',
          name: 'Bot API',
          state: 'partial_outage',
          cause:
            'Bot API partial outage: 418 of 700 requests in the last 60 s refused — heap 1.9 GiB used of a 2.0 GiB limit (93 %, refusing above 92 %); p95 40 ms against a 250 ms target.',
        },
      ],
    };
    const d = diagnose(metrics, status);
    expect(d.healthy).toBe(false);
    expect(d.findings).toHaveLength(1);
    expect(d.findings[0]!.cause).toBe('Memory: heap 93% of its limit');
    expect(d.findings[0]!.evidence).toEqual(['heap 1905 MiB used of a 2048 MiB limit', '418 requests refused with overloaded_memory since start']);
    expect(d.findings[0]!.action).toMatch(/^memory → /);
  });

  it('a fresh instance clicked through by one agent (live): no incident, and the doctor finds it healthy', async () => {
    // A latency target every request misses: only the amount of evidence can keep a handful of
    // requests from being a verdict (on a real desk, sign-in alone missed the 250 ms target).
    t = await startTestService('pg', { 'status.sampleMs': 100, 'status.recoveryMs': 500, 'status.latencyTargetMs': 1 });
    // Sign-in hashes the password on purpose (slow); then the console's first few calls.
    const desk = await setUpDesk(t);
    for (const path of ['/v1/desk/me', '/v1/desk/handovers', '/v1/desk/me']) await t.api('GET', path, { token: desk.agentToken });
    const state = await eventually(async () => {
      const s = await record(t!);
      const deskStatus = s.status.components?.find((c: any) => c.id === 'desk');
      // A verdict that has seen the console's calls (or any verdict other than operational).
      return deskStatus && (deskStatus.state !== 'operational' || Number(/(\d+) requests/.exec(deskStatus.cause)?.[1] ?? 0) >= 3) ? s : null;
    }, 'a verdict that has seen the desk');
    expect(state.status.incidents).toEqual([]);
    expect(state.status.components.every((c: any) => c.state === 'operational')).toBe(true);
    const d = diagnose(state.metrics, state.status);
    expect(d.findings).toEqual([]);
    expect(d.healthy).toBe(true);
  });

  it('a busy database (recorded status) reads as busy, not unreachable', () => {
    const metrics = 'handover_heap_used_bytes 100\nhandover_heap_limit_bytes 1000\nhttp_server_active_requests 0\nhandover_admission_limit 32\n';
    const busy = diagnose(metrics, {
      status: 'degraded',
      components: [
        {
          id: 'database',
          name: 'Database',
          state: 'degraded',
          cause: 'Database busy (database_pool_exhausted): waited 2000 ms for a free database connection',
        },
      ],
    });
    expect(busy.findings[0]).toMatchObject({ cause: 'Database busy' });
    expect(busy.findings[0]!.action).toMatch(/stays ready/);
    const down = diagnose(metrics, {
      status: 'major_outage',
      components: [{ id: 'database', name: 'Database', state: 'major_outage', cause: 'Database unreachable (database_unavailable): connection refused' }],
    });
    expect(down.findings[0]).toMatchObject({ cause: 'Database unreachable' });
  });

  it('sends its tokens only over https, to this machine, or to HANDOVER_URL', () => {
    expect(mayCarryTokens('https://handover.example', 'http://127.0.0.1:8080')).toBe(true);
    expect(mayCarryTokens('http://127.0.0.1:9000', 'http://127.0.0.1:8080')).toBe(true);
    expect(mayCarryTokens('http://localhost:8080', 'http://127.0.0.1:8080')).toBe(true);
    expect(mayCarryTokens('http://handover.internal:8080', 'http://handover.internal:8080')).toBe(true);
    expect(mayCarryTokens('http://typo.example:8080', 'http://handover.internal:8080')).toBe(false);
    expect(mayCarryTokens('not a url', 'http://127.0.0.1:8080')).toBe(false);
    // A name that only begins like a loopback address is another host.
    expect(mayCarryTokens('http://127.attacker.example:8080', 'http://127.0.0.1:8080')).toBe(false);
  });

  it('a quiet instance is healthy', () => {
    const d = diagnose('handover_heap_used_bytes 100\nhandover_heap_limit_bytes 1000\nhttp_server_active_requests 0\nhandover_admission_limit 32\n', {
      status: 'operational',
      components: [{ id: 'bot_api', name: 'Bot API', state: 'operational', cause: 'ok' }],
    });
    expect(d).toEqual({ healthy: true, findings: [], status: [], checks: [] });
  });
});
