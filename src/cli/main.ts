#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadCliConfig, loadConfig, processEnv } from '../config/config.js';
// The service, the store and the demo are imported by the commands that run them (start, migrate):
// a client command that only sends a request then starts in a fraction of a second.
import { adminRequest } from './client.js';
import type { Demo } from '../demo/demo.js';
import { diagnose, formatDiagnosis, mayCarryTokens } from './diagnose.js';
import { formatConnectorSetup, type ConnectorSetupAnswer } from './connector-setup.js';
import { readAdminTokenFile } from '../config/admin-token.js';

const usage = `handover — hands chatbot conversations over to human agents

Usage:
  handover start                         run the service (embedded store unless DATABASE_URL is set)
  handover migrate                       apply database migrations and exit
  handover tenant create --name NAME [--webhook-url URL]
  handover tenant delete --tenant ID --yes
                        delete the tenant and everything it owns (conversations, files, keys,
                        connectors, queues, agents); cannot be undone
  handover queue create --tenant ID --name NAME [--connector ID] [--time-zone ZONE]
                        [--opening-hours JSON] [--no-answer-timeout SECONDS]
  handover agent create --tenant ID --email EMAIL --name NAME --password PASSWORD
                        [--queues a,b] [--max-chats N] [--role agent|supervisor]
  handover connector add --tenant ID --type webhook --name NAME --config JSON
  handover connectors setup --tenant ID --connector ID [--apply [--irreversible]]
                        run the connector's check and report the vendor settings a deployment
                        needs (✓ as needed, ✗ missing, ? not readable through the vendor's API);
                        --apply sets what the vendor's API allows and prints each change;
                        --irreversible also sets what cannot be undone (Zendesk multiConvoEnabled).
                        Exit 1 while something is missing or failing.
  handover keys rotate                   re-encrypt stored credentials under the current key
  handover doctor [URL]                  diagnose a running instance (exit 1 when unhealthy)

Client commands talk to HANDOVER_URL (default http://127.0.0.1:$PORT) with HANDOVER_ADMIN_TOKEN,
or the token the embedded store keeps in HANDOVER_DATA_DIR.`;

async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  const env = processEnv();
  switch (command) {
    case 'start':
      return start(env);
    case 'migrate': {
      const config = loadConfig(env);
      const [{ openDb }, { migrate }] = await Promise.all([import('../store/open-db.js'), import('../store/migrate.js')]);
      const db = await openDb(config.database);
      try {
        const { applied } = await migrate(db, { log: (m: string) => console.log(m) });
        console.log(applied.length ? `applied ${applied.join(', ')}` : 'nothing to apply');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'tenant':
    case 'queue':
    case 'agent':
    case 'connector':
    case 'connectors':
      if ((command === 'connector' || command === 'connectors') && sub === 'setup') return connectorSetup(rest, env);
      return clientCommand(command === 'connectors' ? 'connector' : command, sub, rest, env);
    case 'keys': {
      if (sub !== 'rotate') {
        console.error('usage: handover keys rotate');
        return 2;
      }
      const cli = loadCliConfig(env);
      const result = (await adminRequest(cli, 'POST', '/v1/admin/keys/rotate')) as { reencrypted: number; keyId: string };
      console.log(
        `re-encrypted ${result.reencrypted} credential(s) under key ${result.keyId}; keys no longer used can now be removed from HANDOVER_SECRET_KEYS`,
      );
      return 0;
    }
    case 'doctor': {
      const cli = loadCliConfig(env);
      const target = sub ?? cli.url;
      // The tokens go only where they are safe to send: over https, to this machine, or to HANDOVER_URL.
      const trusted = mayCarryTokens(target, cli.url);
      if (!trusted) console.log(`· not sending the admin and metrics tokens to ${target}: plain http to another host (use https, or set HANDOVER_URL to it)`);
      return doctor(
        target,
        trusted ? (cli.adminToken ?? (await readAdminTokenFile(cli.dataDir).catch(() => undefined))) : undefined,
        trusted ? cli.metricsToken : undefined,
      );
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(usage);
      return command === undefined ? 1 : 0;
    default:
      console.error(`unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

async function start(env: Record<string, string | undefined>): Promise<number> {
  const config = loadConfig(env);
  // Before anything slow: a port another process holds would otherwise fail only after the store opened.
  if (config.port !== 0 && (await portTaken(config.host, config.port))) {
    console.error(`handover: port ${config.port} on ${config.host} is taken by another process; stop it, or start with PORT=<another port>.`);
    return 1;
  }
  if (!config.database.url) {
    const first = !existsSync(join(config.database.dataDir, 'pgdata'));
    console.log(`handover: opening the embedded store in ${config.database.dataDir}${first ? ' (first start: creating it takes up to a minute)' : ''}…`);
  }
  const { createService } = await import('../service.js');
  const service = await createService(config);
  const log = service.deps.log;
  const address = await service.listen();
  // PORT=0 picks a free port: without a configured public URL, say the one actually listening.
  if (!env.HANDOVER_PUBLIC_URL && config.port === 0) config.publicUrl = `http://localhost:${new URL(address).port}`;
  const store = config.database.url ? 'PostgreSQL' : `embedded store in ${config.database.dataDir}`;
  log.info({ address, store }, `handover listening on ${address} (${store})`);
  let demo: Demo | null = null;
  let demoProblem = '';
  if (config.demo.enabled) {
    const { startDemo } = await import('../demo/demo.js');
    demo = await startDemo({ app: service.app, config, adminToken: service.adminToken, address, log }).catch((err: unknown) => {
      log.warn({ err }, 'the demo did not start; the service runs without it');
      demoProblem = err instanceof Error ? err.message : String(err);
      return null;
    });
  }
  const lines = [
    '',
    `  handover is running at ${config.publicUrl}`,
    `  API docs:   ${config.publicUrl}/docs`,
    `  store:      ${store}`,
    `  agent desk: ${config.publicUrl}/desk`,
  ];
  if (demo)
    lines.push(
      `  demo:       ${demo.url}   (demo bot: ${demo.botUrl})`,
      `  demo agent: ${demo.agent.email} / ${demo.agent.password}   (kept in ${demo.credentialsFile})`,
    );
  else if (config.demo.enabled) lines.push(`  demo:       not started (${demoProblem}); see the log`);
  if (service.adminTokenGenerated) lines.push(`  admin token (generated, kept in ${config.database.dataDir}/admin-token):`, `    ${service.adminToken}`);
  else if (!config.adminToken) lines.push(`  admin token: see ${config.database.dataDir}/admin-token`);
  console.log(lines.join('\n') + '\n');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: no new requests; finishing what is in flight');
    const force = setTimeout(() => {
      log.error('shutdown took longer than the grace period; exiting');
      process.exit(1);
    }, config.http.shutdownGraceMs + 5000);
    force.unref();
    Promise.all([service.stop(), demo?.stop()]).then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  return new Promise<number>(() => {});
}

async function clientCommand(resource: string, action: string | undefined, args: string[], env: Record<string, string | undefined>): Promise<number> {
  const cli = loadCliConfig(env);
  const { values } = parseArgs({
    args,
    options: {
      tenant: { type: 'string' },
      name: { type: 'string' },
      'webhook-url': { type: 'string' },
      connector: { type: 'string' },
      'time-zone': { type: 'string' },
      'opening-hours': { type: 'string' },
      'no-answer-timeout': { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      queues: { type: 'string' },
      'max-chats': { type: 'string' },
      role: { type: 'string' },
      type: { type: 'string' },
      config: { type: 'string' },
      yes: { type: 'boolean' },
    },
  });
  const need = (key: keyof typeof values) => {
    const value = values[key];
    if (typeof value !== 'string' || value === '') throw new Error(`--${key} is required`);
    return value;
  };
  let result: unknown;
  if (resource === 'tenant' && action === 'create') {
    result = await adminRequest(cli, 'POST', '/v1/admin/tenants', {
      name: need('name'),
      ...(values['webhook-url'] ? { webhookUrl: values['webhook-url'] } : {}),
    });
  } else if (resource === 'tenant' && action === 'delete') {
    const tenantId = need('tenant');
    if (!values.yes) {
      console.error(`This deletes tenant ${tenantId} and everything it owns, for good. Add --yes to go ahead.`);
      return 2;
    }
    // A large tenant is deleted in batches: give it time.
    await adminRequest(cli, 'DELETE', `/v1/admin/tenants/${tenantId}`, undefined, 300_000);
    result = { deleted: tenantId };
  } else if (resource === 'queue' && action === 'create') {
    result = await adminRequest(cli, 'POST', `/v1/admin/tenants/${need('tenant')}/queues`, {
      name: need('name'),
      ...(values.connector ? { connectorId: values.connector } : {}),
      ...(values['time-zone'] ? { timeZone: values['time-zone'] } : {}),
      ...(values['opening-hours'] ? { openingHours: JSON.parse(values['opening-hours']) } : {}),
      ...(values['no-answer-timeout'] ? { noAnswerTimeoutSeconds: Number(values['no-answer-timeout']) } : {}),
    });
  } else if (resource === 'agent' && action === 'create') {
    result = await adminRequest(cli, 'POST', `/v1/admin/tenants/${need('tenant')}/agents`, {
      email: need('email'),
      name: need('name'),
      password: need('password'),
      ...(values.queues ? { queues: values.queues.split(',').map((q) => q.trim()) } : {}),
      ...(values['max-chats'] ? { maxChats: Number(values['max-chats']) } : {}),
      ...(values.role ? { role: values.role } : {}),
    });
  } else if (resource === 'connector' && action === 'add') {
    result = await adminRequest(cli, 'POST', `/v1/admin/tenants/${need('tenant')}/connectors`, {
      type: need('type'),
      name: need('name'),
      config: JSON.parse(need('config')),
    });
  } else {
    console.error(`unknown command "${resource} ${action ?? ''}"\n\n${usage}`);
    return 2;
  }
  console.log(JSON.stringify(result, null, 2));
  return 0;
}

/** `handover connectors setup`: the connector's check and vendor settings, changed with --apply. */
async function connectorSetup(args: string[], env: Record<string, string | undefined>): Promise<number> {
  const cli = loadCliConfig(env);
  const { values } = parseArgs({
    args,
    options: { tenant: { type: 'string' }, connector: { type: 'string' }, apply: { type: 'boolean' }, irreversible: { type: 'boolean' } },
  });
  if (!values.tenant || !values.connector) {
    console.error('usage: handover connectors setup --tenant ID --connector ID [--apply [--irreversible]]');
    return 2;
  }
  if (values.irreversible && !values.apply) {
    console.error('--irreversible only goes with --apply');
    return 2;
  }
  const path = `/v1/admin/tenants/${encodeURIComponent(values.tenant)}/connectors/${encodeURIComponent(values.connector)}/setup`;
  // The service bounds the vendor calls itself; this waits a little longer than it may take.
  const answer = (await adminRequest(
    cli,
    'POST',
    path,
    { apply: values.apply === true, irreversible: values.irreversible === true },
    120_000,
  )) as ConnectorSetupAnswer;
  const { text, healthy } = formatConnectorSetup(answer);
  console.log(text);
  return healthy ? 0 : 1;
}

/**
 * Checks a running instance: does it answer, is it ready, and then reads its metrics and status to name
 * the most likely cause of trouble with its evidence and the action. With the admin token the status
 * includes the measured causes; without it, the public verdict.
 */
async function doctor(url: string, adminToken?: string | null, metricsToken?: string): Promise<number> {
  const base = url.replace(/\/$/, '');
  const check = async (path: string, headers: Record<string, string> = {}) => {
    try {
      const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(5000) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      // fetch's own message is "fetch failed"; the cause names what happened (ECONNREFUSED, ENOTFOUND, a timeout).
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const cause = e.name === 'TimeoutError' ? 'no answer within 5 s (the instance answers too slowly)' : (e.cause?.code ?? e.cause?.message);
      return { status: 0, body: cause ? `${e.message}: ${cause}` : e.message };
    }
  };
  const health = await check('/healthz');
  if (health.status !== 200) {
    console.log(`✗ ${base} does not answer: ${health.body || `HTTP ${health.status}`}\n  → is the process running and listening on that address?`);
    return 1;
  }
  const ready = await check('/readyz');
  if (ready.status !== 200) {
    let detail = ready.body;
    try {
      detail = (JSON.parse(ready.body) as { error: { code: string; message: string } }).error.message;
    } catch {
      // keep the raw body
    }
    console.log(`✗ ${base} answers but is not ready: ${detail}`);
    return 1;
  }
  const metrics = await check('/metrics', metricsToken ? { authorization: `Bearer ${metricsToken}` } : {});
  if (metrics.status !== 200) {
    const hint = metrics.status === 401 ? ' (it asks for a token: set HANDOVER_METRICS_TOKEN)' : '';
    console.log(`✗ ${base} is ready but /metrics answered ${metrics.status || metrics.body}${hint}`);
    return 1;
  }
  const statusResponse = await check('/status.json', adminToken ? { authorization: `Bearer ${adminToken}` } : {});
  if (statusResponse.status === 401 || statusResponse.status === 403) {
    console.log(
      `· /status.json answered ${statusResponse.status}: ${adminToken ? 'the admin token was refused' : 'no admin token'} (HANDOVER_ADMIN_TOKEN); the database and Redis are judged from the metrics alone`,
    );
  }
  let status = null;
  try {
    status = statusResponse.status === 200 ? JSON.parse(statusResponse.body) : null;
  } catch {
    // an older instance without a status page: the metrics alone
  }
  const diagnosis = diagnose(metrics.body, status);
  console.log(formatDiagnosis(base, diagnosis));
  return diagnosis.healthy ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) console.error(err.message);
    else console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);

/** Whether another process listens on the port (one attempt to listen, given back at once). */
function portTaken(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createNetServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRINUSE'));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(false)));
  });
}
