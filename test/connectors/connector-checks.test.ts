import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeZendesk, type FakeZendesk } from '../fakes/zendesk.js';
import { startFakeChatwoot, type FakeChatwoot } from '../fakes/chatwoot.js';
import { startFakeIntercom, type FakeIntercom } from '../fakes/intercom.js';
import { startFakeFreshchat, type FakeFreshchat } from '../fakes/freshchat.js';
import { startFakeSalesforce, type FakeSalesforce } from '../fakes/salesforce.js';
import { eventually, startTestService, type TestService } from '../support/test-service.js';
import { dbKinds, type DbKind } from '../support/test-db.js';

/** `handover doctor` as an operator runs it, against the live instance; killed after 30 s. */
function runDoctor(url: string, token: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'doctor', url], {
      env: { ...process.env, HANDOVER_ADMIN_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill(), 30_000);
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

interface Line {
  connectorId: string;
  name: string;
  type: string;
  tenant: string | null;
  verdict: string;
  problem: string | null;
  reason: string;
  checkedAt: string;
}

describe.each<DbKind>(dbKinds)('connector setup checks (%s, real HTTP against the fakes)', (kind) => {
  let t: TestService | undefined;
  let zendesk: FakeZendesk | undefined;
  let chatwoot: FakeChatwoot | undefined;
  let intercom: FakeIntercom | undefined;
  let freshchat: FakeFreshchat | undefined;
  let salesforce: FakeSalesforce | undefined;
  afterEach(async () => {
    await t?.close();
    await Promise.all([zendesk?.close(), chatwoot?.close(), intercom?.close(), freshchat?.close(), salesforce?.close()]);
    t = zendesk = chatwoot = intercom = freshchat = salesforce = undefined;
  });

  it('a good setup reads ok and a wrong credential is named, on the status page, in metrics and in the doctor', async () => {
    t = await startTestService(kind, { 'connectors.checkIntervalMs': 1000, 'status.sampleMs': 100 });
    [zendesk, chatwoot, intercom, freshchat, salesforce] = await Promise.all([
      startFakeZendesk(),
      startFakeChatwoot(),
      startFakeIntercom(),
      startFakeFreshchat(),
      startFakeSalesforce(),
    ]);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Acme', webhookUrl: 'http://127.0.0.1:9/bot' });
    expect(tenant.status).toBe(201);
    const add = async (name: string, type: string, config: Record<string, unknown>) => {
      const res = await t!.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type, name, config });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body.id as string;
    };
    const zd = { baseUrl: zendesk.baseUrl, appId: zendesk.appId, keyId: zendesk.keyId, keySecret: zendesk.keySecret, webhookSecret: zendesk.webhookSecret };
    const cw = {
      baseUrl: chatwoot.url,
      accountId: chatwoot.accountId,
      inboxId: chatwoot.inboxId,
      userToken: chatwoot.userToken,
      botToken: chatwoot.botToken,
      webhookSecret: chatwoot.webhookSecret,
    };
    const ic = { baseUrl: intercom.url, accessToken: intercom.accessToken, clientSecret: intercom.clientSecret, adminId: intercom.botAdminId, teamId: '501' };
    const fc = {
      baseUrl: freshchat.url,
      apiToken: freshchat.apiToken,
      webhookPublicKey: freshchat.publicKeyPem,
      appId: freshchat.appId,
      channelId: freshchat.channelId,
      agentId: freshchat.botAgentId,
      groupId: 'grp-support',
    };
    const sf = { baseUrl: salesforce.url, orgId: salesforce.orgId, esDeveloperName: salesforce.esDeveloperName };
    const ids = {
      zendeskOk: await add('zendesk-good', 'zendesk', zd),
      zendeskBad: await add('zendesk-wrong-secret', 'zendesk', { ...zd, keySecret: 'not-the-secret' }),
      chatwootOk: await add('chatwoot-good', 'chatwoot', cw),
      chatwootBad: await add('chatwoot-wrong-token', 'chatwoot', { ...cw, userToken: 'not-the-token' }),
      chatwootNoInbox: await add('chatwoot-wrong-inbox', 'chatwoot', { ...cw, inboxId: chatwoot.inboxId + 100 }),
      intercomOk: await add('intercom-good', 'intercom', ic),
      intercomBad: await add('intercom-wrong-token', 'intercom', { ...ic, accessToken: 'not-the-token' }),
      freshchatOk: await add('freshchat-good', 'freshchat', fc),
      freshchatBad: await add('freshchat-wrong-token', 'freshchat', { ...fc, apiToken: 'not-the-token' }),
      salesforceOk: await add('salesforce-good', 'salesforce', sf),
      salesforceBad: await add('salesforce-wrong-deployment', 'salesforce', { ...sf, esDeveloperName: 'Not_This_One' }),
      webhook: await add('webhook-plain', 'webhook', {
        url: 'http://127.0.0.1:9/events',
        secret: 'whsec_' + Buffer.from('checks-test-secret-0123456789abcd').toString('base64'),
      }),
    };

    // Every connector checked, and the status judged after that round.
    const status = await eventually(async () => {
      const s = (await t!.api('GET', '/status.json', { token: t!.adminToken })).body;
      const checked = new Set((s.checks ?? []).map((l: Line) => l.connectorId));
      const judged =
        s.components.some((c: { id: string }) => c.id === `connector:${ids.zendeskBad}`) &&
        s.components.some((c: { id: string }) => c.id === `connector:${ids.salesforceBad}`);
      return Object.values(ids).every((id) => checked.has(id)) && judged ? s : null;
    }, 'every connector checked and judged');
    const line = (id: string) => (status.checks as Line[]).find((l) => l.connectorId === id)!;

    for (const id of [ids.zendeskOk, ids.chatwootOk, ids.intercomOk, ids.freshchatOk, ids.salesforceOk]) {
      expect(line(id), line(id).reason).toMatchObject({ verdict: 'ok', problem: null, tenant: 'Acme' });
      expect(Date.parse(line(id).checkedAt)).not.toBeNaN();
    }
    expect(line(ids.zendeskOk)).toMatchObject({ type: 'zendesk', name: 'zendesk-good' });
    expect(line(ids.zendeskBad)).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(line(ids.zendeskBad).reason).toMatch(/GET \/v2\/apps\/\{appId\}.*401.*keyId\/keySecret refused/);
    expect(line(ids.chatwootBad)).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(line(ids.chatwootBad).reason).toMatch(/userToken refused/);
    expect(line(ids.chatwootNoInbox)).toMatchObject({ verdict: 'failing', problem: 'not_found' });
    expect(line(ids.chatwootNoInbox).reason).toContain(`no inbox ${chatwoot.inboxId + 100} in account ${chatwoot.accountId}`);
    expect(line(ids.intercomBad)).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(line(ids.intercomBad).reason).toMatch(/GET \/me.*accessToken refused/);
    expect(line(ids.freshchatBad)).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(line(ids.freshchatBad).reason).toMatch(/apiToken refused/);
    expect(line(ids.salesforceBad)).toMatchObject({ verdict: 'failing', problem: 'misconfigured' });
    expect(line(ids.salesforceBad).reason).toMatch(/Not_This_One.*orgId or esDeveloperName/);
    expect(line(ids.webhook)).toMatchObject({ verdict: 'unchecked', problem: null });
    expect(line(ids.webhook).reason).toMatch(/cannot be checked without sending it an event/);
    // Secrets never appear in what is shown.
    expect(JSON.stringify(status.checks)).not.toContain(zendesk.keySecret);
    expect(JSON.stringify(status.checks)).not.toContain(chatwoot.userToken);

    // A failing check lists the connector as a component before anyone used it; a good one stays operational.
    const component = (id: string) => status.components.find((c: { id: string }) => c.id === `connector:${id}`);
    expect(component(ids.zendeskBad)).toMatchObject({ state: 'partial_outage', name: 'Helpdesk zendesk-wrong-secret (zendesk, tenant Acme)' });
    expect(component(ids.zendeskBad).cause).toMatch(/fails its setup check \(credentials_rejected, checked .* UTC\): .*keyId\/keySecret refused/);
    expect(component(ids.zendeskOk)?.state ?? 'operational').toBe('operational');

    // The admin API: the tenant's lines (checked against the OpenAPI document by the test client).
    const api = await t.admin('GET', `/v1/admin/tenants/${tenant.body.id}/connector-checks`);
    expect(api.status).toBe(200);
    expect(api.body.checks).toHaveLength(12);
    expect(api.body.checks.find((l: Line) => l.connectorId === ids.chatwootBad)).toMatchObject({
      name: 'chatwoot-wrong-token',
      type: 'chatwoot',
      verdict: 'failing',
      problem: 'credentials_rejected',
    });
    const other = await t.admin('POST', '/v1/admin/tenants', { name: 'Other', webhookUrl: 'http://127.0.0.1:9/bot' });
    expect((await t.admin('GET', `/v1/admin/tenants/${other.body.id}/connector-checks`)).body).toEqual({ checks: [] });

    // The public view counts them, names none.
    const pub = (await t.api('GET', '/status.json')).body;
    expect(pub.checks).toMatchObject({ ok: 5, failing: 6, unchecked: 1 });
    expect(JSON.stringify(pub)).not.toContain('zendesk-wrong-secret');
    const page = await (await fetch(`${t.url}/status`, { signal: AbortSignal.timeout(10_000) })).text();
    expect(page).toContain('Helpdesk setup checks: 5 ok, 6 failing, 1 not checkable');
    expect(page).toMatch(/Helpdesk connections<\/span><span class="state">partial outage/);

    // A gauge per checked connector.
    const metrics = await (await fetch(`${t.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    expect(metrics).toContain(`handover_connector_check_ok{connector_id="${ids.zendeskOk}",connector_type="zendesk"} 1`);
    expect(metrics).toContain(`handover_connector_check_ok{connector_id="${ids.zendeskBad}",connector_type="zendesk"} 0`);
    expect(metrics).toContain(`handover_connector_check_ok{connector_id="${ids.chatwootBad}",connector_type="chatwoot"} 0`);
    expect(metrics).not.toContain(`connector_id="${ids.webhook}",connector_type="webhook"`);

    // The doctor: a finding per failing connector, naming it and what to fix, and a line per connector.
    const doctor = await runDoctor(t.url, t.adminToken);
    expect(doctor.code, doctor.stdout).toBe(1);
    expect(doctor.stdout).toContain(`Helpdesk zendesk-wrong-secret (zendesk, tenant Acme, ${ids.zendeskBad}) fails its setup check: credentials_rejected`);
    expect(doctor.stdout).toContain(`Helpdesk chatwoot-wrong-token (chatwoot, tenant Acme, ${ids.chatwootBad}) fails its setup check: credentials_rejected`);
    expect(doctor.stdout).toContain(`Helpdesk chatwoot-wrong-inbox (chatwoot, tenant Acme, ${ids.chatwootNoInbox}) fails its setup check: not_found`);
    expect(doctor.stdout).toMatch(/→ set valid credentials: PATCH \/v1\/admin\/tenants\/\{tenantId\}\/connectors\/\{connectorId\}/);
    expect(doctor.stdout).toContain(`✓ zendesk-good (zendesk, tenant Acme, ${ids.zendeskOk}): the app ${zendesk.appId} (GET /v2/apps/{appId}) answered`);
    expect(doctor.stdout).toContain(`✓ chatwoot-good (chatwoot, tenant Acme, ${ids.chatwootOk}):`);
    expect(doctor.stdout).toContain(
      `· webhook-plain (webhook, tenant Acme, ${ids.webhook}): not checkable — a generic webhook cannot be checked without sending it an event`,
    );

    // Fixed through the admin API: the next round clears them, and the doctor finds the instance healthy.
    const fixes: Array<[string, Record<string, unknown>]> = [
      [ids.zendeskBad, zd],
      [ids.chatwootBad, cw],
      [ids.chatwootNoInbox, cw],
      [ids.intercomBad, ic],
      [ids.freshchatBad, fc],
      [ids.salesforceBad, sf],
    ];
    for (const [id, config] of fixes) {
      const res = await t.admin('PATCH', `/v1/admin/tenants/${tenant.body.id}/connectors/${id}`, { config });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    await eventually(async () => {
      const s = (await t!.api('GET', '/status.json', { token: t!.adminToken })).body;
      return s.checks.every((l: Line) => l.verdict !== 'failing') && s.components.every((c: { state: string }) => c.state === 'operational') ? s : null;
    }, 'the fixed connectors to pass their checks');
    const healthy = await runDoctor(t.url, t.adminToken);
    expect(healthy.code, healthy.stdout).toBe(0);
    expect(healthy.stdout).toContain('Connector checks:');
    expect(healthy.stdout).toContain(`✓ freshchat-good (freshchat, tenant Acme, ${ids.freshchatOk}): the agents list (GET /agents?items_per_page=1) answered`);
    expect(healthy.stdout).toContain(`✓ zendesk-wrong-secret (zendesk, tenant Acme, ${ids.zendeskBad}):`);
    expect(healthy.stdout).not.toContain('✗');
  });

  it('a check that gets no answer is named unreachable, and delivery is not touched', async () => {
    t = await startTestService(kind, { 'connectors.checkIntervalMs': 1000, 'delivery.timeoutMs': 500, 'status.sampleMs': 100 });
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Acme', webhookUrl: 'http://127.0.0.1:9/bot' });
    // Nothing listens on port 9 (discard): the availability URL, the one thing a webhook can be asked, is unreachable.
    const res = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, {
      type: 'webhook',
      name: 'webhook-unreachable',
      config: {
        url: 'http://127.0.0.1:9/events',
        availabilityUrl: 'http://127.0.0.1:9/availability',
        secret: 'whsec_' + Buffer.from('checks-test-secret-0123456789abcd').toString('base64'),
      },
    });
    expect(res.status).toBe(201);
    const line = await eventually(async () => {
      const s = (await t!.api('GET', '/status.json', { token: t!.adminToken })).body;
      return (s.checks ?? []).find((l: Line) => l.connectorId === res.body.id) as Line | undefined;
    }, 'the webhook connector checked');
    expect(line).toMatchObject({ verdict: 'failing', problem: 'unreachable' });
    expect(line.reason).toMatch(/the availability URL \(signed GET\) failed: .*no usable answer/);
    // Its circuit is untouched: checks are not deliveries.
    const metrics = await (await fetch(`${t.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    expect(metrics).not.toContain(`handover_connector_circuit_state{connector_id="${res.body.id}"}`);
  });
});
