import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeChatwoot } from '../fakes/chatwoot.js';
import { startFakeGenesys } from '../fakes/genesys.js';
import { startFakeIntercom } from '../fakes/intercom.js';
import { startFakeZendesk, type FakeZendesk } from '../fakes/zendesk.js';
import { sharedServices } from '../support/shared-services.js';
import type { TestService } from '../support/test-service.js';

/** `handover connectors setup` as an operator runs it, against the live instance; killed after 60 s. */
function runSetup(t: TestService, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'connectors', 'setup', ...args], {
      env: { ...process.env, HANDOVER_URL: t.url, HANDOVER_ADMIN_TOKEN: t.adminToken },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => child.kill(), 60_000);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface SetupAnswer {
  check: { verdict: string; problem: string | null; reason: string };
  items: Array<{ setting: string; state: string; detail: string }>;
  failure: string | null;
  applied: boolean;
  inboundUrl: string;
}

describe('handover connectors setup (pg, real HTTP against the fakes)', () => {
  // One service for the cases: each sets up a tenant and connector of its own (no handovers).
  const service = sharedServices('pg');
  let t: TestService | undefined;
  const closers: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
    t = undefined;
  });

  async function tenantWith(type: string, config: Record<string, unknown>) {
    t = await service();
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Acme' });
    const connector = await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors`, { type, name: type, config });
    expect(connector.status, JSON.stringify(connector.body)).toBe(201);
    const setup = async (body: Record<string, unknown>) => {
      const res = await t!.admin('POST', `/v1/admin/tenants/${tenant.body.id}/connectors/${connector.body.id}/setup`, body);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body as SetupAnswer;
    };
    return { tenantId: tenant.body.id as string, connectorId: connector.body.id as string, inboundUrl: connector.body.inboundUrl as string, setup };
  }

  const state = (answer: SetupAnswer) => Object.fromEntries(answer.items.map((i) => [i.setting, i.state]));

  it('zendesk: reports what is missing, sets with --apply what the API allows, and multiConvoEnabled only with --irreversible', async () => {
    const zendesk: FakeZendesk = await startFakeZendesk();
    closers.push(() => zendesk.close());
    const { tenantId, connectorId, inboundUrl, setup } = await tenantWith('zendesk', {
      baseUrl: zendesk.baseUrl,
      appId: zendesk.appId,
      keyId: zendesk.keyId,
      keySecret: zendesk.keySecret,
      webhookSecret: zendesk.webhookSecret,
    });
    zendesk.webhookTarget = inboundUrl;
    // A fresh app: one conversation per user, the webhook without the control triggers, handover's
    // switchboard integration deaf in standby, and the agents handing back to the answer bot.
    zendesk.appSettings.multiConvoEnabled = false;
    zendesk.integrations[0]!.webhooks[0]!.triggers = ['conversation:message'];
    zendesk.switchboardIntegrations.find((m) => m.id === 'sbi_handover')!.deliverStandbyEvents = false;
    zendesk.switchboardIntegrations.find((m) => m.id === 'sbi_agents')!.nextSwitchboardIntegrationId = 'sbi_answerbot';

    // The CLI, reporting only: each missing setting named, nothing changed, exit 1.
    const report = await runSetup(t!, ['--tenant', tenantId, '--connector', connectorId]);
    expect(report.code, report.stdout + report.stderr).toBe(1);
    expect(report.stdout).toContain(`inbound URL: ${inboundUrl}`);
    expect(report.stdout).toContain(`✓ check: the app ${zendesk.appId} (GET /v2/apps/{appId}) answered`);
    expect(report.stdout).toMatch(/✗ app settings\.multiConvoEnabled: false: .*cannot be turned off once on.*--apply --irreversible/);
    expect(report.stdout).toContain('✓ integration webhook: wh_1 of integration int_handover calls the inbound URL');
    expect(report.stdout).toContain('✗ integration webhook triggers: switchboard:passControl, switchboard:releaseControl not among them (--apply adds them)');
    expect(report.stdout).toContain('✗ switchboard integration deliverStandbyEvents: false');
    expect(report.stdout).toContain('✗ agent workspace nextSwitchboardIntegrationId: sbi_answerbot');
    expect(report.stdout).toContain('4 setting(s) to set: run again with --apply');
    expect(zendesk.setupChanges).toEqual([]);

    // --apply: what can be undone is set, and each change printed; multiConvoEnabled stays as it was.
    const applied = await runSetup(t!, ['--tenant', tenantId, '--connector', connectorId, '--apply']);
    expect(applied.code, applied.stdout + applied.stderr).toBe(1);
    expect(applied.stdout).toContain('→ integration webhook triggers: added switchboard:passControl, switchboard:releaseControl');
    expect(applied.stdout).toContain('→ switchboard integration deliverStandbyEvents: set to true');
    expect(applied.stdout).toContain("→ agent workspace nextSwitchboardIntegrationId: sbi_answerbot → handover's sbi_handover");
    expect(applied.stdout).toContain('✗ app settings.multiConvoEnabled');
    expect(applied.stdout).toContain('changed 3 setting(s).');
    expect(zendesk.integrations[0]!.webhooks[0]!.triggers).toEqual(['conversation:message', 'switchboard:passControl', 'switchboard:releaseControl']);
    expect(zendesk.switchboardIntegrations.find((m) => m.id === 'sbi_handover')!.deliverStandbyEvents).toBe(true);
    expect(zendesk.appSettings.multiConvoEnabled).toBe(false);

    // --apply --irreversible: the last one, then everything reads ok and the CLI exits 0.
    const last = await setup({ apply: true, irreversible: true });
    expect(state(last)).toMatchObject({ 'app settings.multiConvoEnabled': 'changed' });
    expect(zendesk.appSettings.multiConvoEnabled).toBe(true);
    const done = await runSetup(t!, ['--tenant', tenantId, '--connector', connectorId]);
    expect(done.code, done.stdout).toBe(0);
    expect(done.stdout).not.toMatch(/[✗→]/);
    // Run again with --apply: nothing left to change.
    const again = await setup({ apply: true });
    expect(
      again.items.every((i) => i.state === 'ok'),
      JSON.stringify(again.items),
    ).toBe(true);
    expect(zendesk.setupChanges.map((c) => c.route)).toEqual([
      'PATCH /integrations/int_handover/webhooks/wh_1',
      'PATCH /switchboards/sb_1/switchboardIntegrations/sbi_handover',
      'PATCH /switchboards/sb_1/switchboardIntegrations/sbi_agents',
      'PATCH ',
    ]);
    expect(zendesk.refused).toEqual([]);
  });

  it('zendesk: a webhook to another URL or with another secret is named; a wrong key stops before the settings', async () => {
    const zendesk: FakeZendesk = await startFakeZendesk();
    closers.push(() => zendesk.close());
    const { setup, inboundUrl } = await tenantWith('zendesk', {
      baseUrl: zendesk.baseUrl,
      appId: zendesk.appId,
      keyId: zendesk.keyId,
      keySecret: zendesk.keySecret,
      webhookSecret: zendesk.webhookSecret,
    });
    zendesk.integrations[0]!.webhooks[0]!.target = 'https://old.example.com/hook';
    const elsewhere = await setup({ apply: true });
    expect(state(elsewhere)).toMatchObject({ 'integration webhook': 'missing' });
    expect(elsewhere.items[1]!.detail).toContain(`no custom integration has a webhook to ${inboundUrl}`);
    zendesk.integrations[0]!.webhooks[0]!.target = inboundUrl;
    zendesk.integrations[0]!.webhooks[0]!.secret = 'another-secret';
    expect(state(await setup({}))).toMatchObject({ 'integration webhook': 'ok', 'integration webhook secret': 'missing' });
    zendesk.keySecret = 'rotated';
    const refused = await setup({ apply: true });
    expect(refused.check).toMatchObject({ verdict: 'failing', problem: 'credentials_rejected' });
    expect(refused.items).toEqual([]);
    expect(refused.failure).toMatch(/not read: the setup check failed/);
    expect(zendesk.setupChanges).toEqual([]);
  });

  it('chatwoot: finds the account webhook that calls the inbound URL and adds its missing events with --apply', async () => {
    const chatwoot = await startFakeChatwoot();
    closers.push(() => chatwoot.close());
    const { tenantId, connectorId, inboundUrl, setup } = await tenantWith('chatwoot', {
      baseUrl: chatwoot.url,
      accountId: chatwoot.accountId,
      inboxId: chatwoot.inboxId,
      userToken: chatwoot.userToken,
      botToken: chatwoot.botToken,
      webhookSecret: chatwoot.webhookSecret,
    });
    chatwoot.webhookTarget = inboundUrl;
    chatwoot.accountWebhooks = [
      { id: 4, url: 'https://crm.example.com/hook', subscriptions: ['contact_created'] },
      { id: 5, url: null, subscriptions: ['message_created', 'conversation_status_changed'] },
    ];
    const report = await runSetup(t!, ['--tenant', tenantId, '--connector', connectorId]);
    expect(report.code, report.stdout + report.stderr).toBe(1);
    expect(report.stdout).toContain('✓ account webhook: 5 calls the inbound URL');
    expect(report.stdout).toContain(
      '✗ account webhook events: conversation_updated, conversation_typing_on, conversation_typing_off not among them (--apply adds them)',
    );
    expect(report.stdout).toContain("? account webhook secret: Chatwoot's API does not show it");
    expect(chatwoot.webhookChanges).toEqual([]);
    const applied = await setup({ apply: true });
    expect(state(applied)).toEqual({ 'account webhook': 'ok', 'account webhook events': 'changed', 'account webhook secret': 'unknown' });
    expect(chatwoot.webhookChanges).toEqual([
      {
        url: inboundUrl,
        subscriptions: ['message_created', 'conversation_status_changed', 'conversation_updated', 'conversation_typing_on', 'conversation_typing_off'],
      },
    ]);
    expect(chatwoot.accountWebhooks[0]!.subscriptions).toEqual(['contact_created']);
    expect(state(await setup({ apply: true }))).toMatchObject({ 'account webhook events': 'ok' });
    // Without a webhook to the inbound URL: named, with how to add it, and nothing created.
    chatwoot.accountWebhooks = [{ id: 4, url: 'https://crm.example.com/hook', subscriptions: ['contact_created'] }];
    const none = await setup({ apply: true });
    expect(state(none)).toEqual({ 'account webhook': 'missing' });
    expect(none.items[0]!.detail).toContain(`calls ${inboundUrl}: add it (Settings → Integrations → Webhooks)`);
    expect(chatwoot.webhookChanges).toHaveLength(1);
  });

  it('intercom: checks the admin and the teams it routes to; the webhook subscription is named as not readable', async () => {
    const intercom = await startFakeIntercom();
    closers.push(() => intercom.close());
    const { tenantId, connectorId, inboundUrl, setup } = await tenantWith('intercom', {
      baseUrl: intercom.url,
      accessToken: intercom.accessToken,
      clientSecret: intercom.clientSecret,
      adminId: intercom.botAdminId,
      teamId: '501',
      teams: { billing: '502', vip: '599' },
    });
    const answer = await setup({ apply: true });
    expect(answer.check.verdict).toBe('ok');
    expect(state(answer)).toEqual({
      adminId: 'ok',
      'team 501 (teamId)': 'ok',
      'team 502 (teams.billing)': 'ok',
      'team 599 (teams.vip)': 'missing',
      'webhook subscription': 'unknown',
    });
    expect(answer.items.at(-1)!.detail).toContain(
      `the endpoint must be ${inboundUrl} with the topics conversation.admin.replied, conversation.admin.assigned, conversation.admin.closed, conversation.deleted`,
    );
    intercom.admins[0]!.has_inbox_seat = false;
    const cli = await runSetup(t!, ['--tenant', tenantId, '--connector', connectorId]);
    expect(cli.code, cli.stdout).toBe(1);
    expect(cli.stdout).toContain('✗ adminId: Handover Bot has no inbox seat');
    expect(cli.stdout).toContain('? webhook subscription: not readable through the REST API');
  });

  it("genesys: points the integration's webhook at the inbound URL with webhookSecret as its token, only with --apply", async () => {
    const genesys = await startFakeGenesys();
    closers.push(() => genesys.close());
    const webhookSecret = `whs-${'x'.repeat(24)}`;
    const { inboundUrl, setup } = await tenantWith('genesys', {
      apiBaseUrl: genesys.url,
      loginBaseUrl: genesys.url,
      clientId: genesys.clientId,
      clientSecret: genesys.clientSecret,
      integrationId: genesys.integrationId,
      webhookSecret,
    });
    genesys.webhookTarget = inboundUrl;
    genesys.integrationWebhookUrl = 'https://old-middleware.example.com/genesys';
    // What Genesys sends before: signed with the old token, refused.
    const body = JSON.stringify({
      id: 'm-1',
      channel: {
        id: genesys.integrationId,
        platform: 'Open',
        type: 'Private',
        to: { id: 'ho_unknown' },
        from: { id: genesys.integrationId, idType: 'Opaque' },
        time: new Date().toISOString(),
      },
      type: 'Text',
      text: 'hi',
      direction: 'Outbound',
    });
    expect((await genesys.post(body, genesys.sign(body))).status).toBe(401);

    const report = await setup({});
    expect(state(report)).toEqual({ 'inbound URL': 'missing', 'integration outboundNotificationWebhookUrl': 'missing' });
    expect(report.items[0]!.detail).toContain('HTTPS on port 443 only');
    expect(genesys.integrationPatches).toEqual([]);

    const applied = await setup({ apply: true });
    expect(state(applied)).toMatchObject({
      'integration outboundNotificationWebhookUrl': 'changed',
      'integration outboundNotificationWebhookSignatureSecretToken': 'changed',
    });
    // The update carries the integration's own name, which the API requires.
    expect(genesys.integrationPatches).toEqual([
      { name: 'Acme Open Messaging', outboundNotificationWebhookUrl: inboundUrl, outboundNotificationWebhookSignatureSecretToken: webhookSecret },
    ]);
    // Genesys now signs with the connector's secret: the same request is taken.
    expect((await genesys.post(body, genesys.sign(body))).status).toBe(200);
    expect(state(await setup({ apply: true }))).toMatchObject({
      'integration outboundNotificationWebhookUrl': 'ok',
      'integration outboundNotificationWebhookSignatureSecretToken': 'unknown',
    });
    expect(genesys.integrationPatches).toHaveLength(1);
  });

  it("refuses an unknown connector or another tenant's with 404 connector_not_found, and a bad body with 400", async () => {
    const zendesk: FakeZendesk = await startFakeZendesk();
    closers.push(() => zendesk.close());
    const { tenantId, connectorId } = await tenantWith('zendesk', {
      baseUrl: zendesk.baseUrl,
      appId: zendesk.appId,
      keyId: zendesk.keyId,
      keySecret: zendesk.keySecret,
      webhookSecret: zendesk.webhookSecret,
    });
    const other = await t!.admin('POST', '/v1/admin/tenants', { name: 'Other' });
    const foreign = await t!.admin('POST', `/v1/admin/tenants/${other.body.id}/connectors/${connectorId}/setup`, {});
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('connector_not_found');
    const unknown = await t!.admin('POST', `/v1/admin/tenants/${tenantId}/connectors/con_nope/setup`, {});
    expect(unknown.body.error.code).toBe('connector_not_found');
    const bad = await t!.admin('POST', `/v1/admin/tenants/${tenantId}/connectors/${connectorId}/setup`, { apply: 'yes' });
    expect(bad.status).toBe(400);
    expect(zendesk.setupChanges).toEqual([]);
  });
});
