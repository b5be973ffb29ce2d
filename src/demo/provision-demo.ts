import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { adminTokens } from '../http/auth.js';

export const DEMO_FILE = 'demo.json';
export const DEMO_TENANT = 'Demo';
export const DEMO_QUEUE = 'support';
/** A second queue, so agents can try a transfer. */
const DEMO_OTHER_QUEUE = 'billing';
const DEMO_AGENT_EMAIL = 'agent@demo.test';
const DEMO_AGENT_NAME = 'Ada';

/** What the demo needs to run, kept (mode 0600) beside the embedded store: secrets are shown only once. */
export interface DemoCredentials {
  tenantId: string;
  apiKey: string;
  queue: string;
  agentEmail: string;
  agentPassword: string;
}

/**
 * Makes sure the demo tenant, its queues and its agent exist, through the admin API (in process, with the
 * admin token) exactly as an operator would create them. Idempotent: a restart reuses what exists, and
 * secrets lost with `demo.json` are replaced (a new API key; a new agent, since passwords are hashed).
 */
export async function provisionDemo(app: FastifyInstance, adminToken: string, dataDir: string): Promise<DemoCredentials> {
  // HANDOVER_ADMIN_TOKEN may list several tokens (rotation): a client sends one of them, never the list.
  const [firstToken] = adminTokens(adminToken);
  if (!firstToken) throw new Error('provisioning the demo: no admin token is configured');
  const call = async <T>(method: 'GET' | 'POST', url: string, body?: object, token = firstToken): Promise<{ status: number; body: T }> => {
    const res = await app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(body ? { payload: body } : {}) });
    return { status: res.statusCode, body: res.json() as T };
  };
  const admin = async <T>(method: 'GET' | 'POST', url: string, body?: object): Promise<T> => {
    const res = await call<T>(method, url, body);
    if (res.status >= 300) throw new Error(`provisioning the demo: ${method} ${url} answered ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };

  const saved = await readDemoCredentials(dataDir);
  const { tenants } = await admin<{ tenants: Array<{ id: string; name: string }> }>('GET', '/v1/admin/tenants');
  let tenantId = tenants.find((t) => t.id === saved?.tenantId)?.id ?? tenants.find((t) => t.name === DEMO_TENANT)?.id;
  const same = Boolean(saved && tenantId === saved.tenantId);
  let apiKey = same ? saved!.apiKey : undefined;
  if (!tenantId) {
    const created = await admin<{ id: string; apiKey: string }>('POST', '/v1/admin/tenants', { name: DEMO_TENANT });
    tenantId = created.id;
    apiKey = created.apiKey;
  }

  const { queues } = await admin<{ queues: Array<{ name: string }> }>('GET', `/v1/admin/tenants/${tenantId}/queues`);
  for (const name of [DEMO_QUEUE, DEMO_OTHER_QUEUE])
    if (!queues.some((q) => q.name === name)) await admin('POST', `/v1/admin/tenants/${tenantId}/queues`, { name });

  if (apiKey && (await call('GET', `/v1/availability?queue=${DEMO_QUEUE}`, undefined, apiKey)).status === 401) apiKey = undefined;
  if (!apiKey) apiKey = (await admin<{ apiKey: string }>('POST', `/v1/admin/tenants/${tenantId}/api-keys`)).apiKey;

  const { agents } = await admin<{ agents: Array<{ email: string }> }>('GET', `/v1/admin/tenants/${tenantId}/agents`);
  let agentEmail = saved?.agentEmail ?? DEMO_AGENT_EMAIL;
  let agentPassword = same ? saved!.agentPassword : undefined;
  if (!agentPassword || !agents.some((a) => a.email === agentEmail)) {
    agentEmail = agents.some((a) => a.email === DEMO_AGENT_EMAIL) ? `agent-${randomBytes(3).toString('hex')}@demo.test` : DEMO_AGENT_EMAIL;
    agentPassword = randomBytes(12).toString('base64url');
    await admin('POST', `/v1/admin/tenants/${tenantId}/agents`, { email: agentEmail, name: DEMO_AGENT_NAME, password: agentPassword });
  }

  const credentials: DemoCredentials = { tenantId, apiKey, queue: DEMO_QUEUE, agentEmail, agentPassword };
  await writeDemoCredentials(dataDir, credentials);
  return credentials;
}

async function readDemoCredentials(dataDir: string): Promise<DemoCredentials | null> {
  try {
    const value = JSON.parse(await readFile(join(dataDir, DEMO_FILE), 'utf8')) as Partial<DemoCredentials>;
    if (
      typeof value.tenantId !== 'string' ||
      typeof value.apiKey !== 'string' ||
      typeof value.agentEmail !== 'string' ||
      typeof value.agentPassword !== 'string'
    )
      return null;
    return value as DemoCredentials;
  } catch {
    return null; // missing or unreadable: provisioned again
  }
}

async function writeDemoCredentials(dataDir: string, credentials: DemoCredentials): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, DEMO_FILE);
  const temp = `${path}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await rename(temp, path);
}
