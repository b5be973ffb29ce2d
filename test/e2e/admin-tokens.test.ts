import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../support/test-service.js';

describe('several admin tokens, for rotation (pglite)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('accepts every listed token, refuses others, and the audit log tells them apart', async () => {
    t = await startTestService('pglite', { adminToken: 'old-admin-token-0123456789, new-admin-token-9876543210' });
    const as = (token: string) => t!.api('POST', '/v1/admin/tenants', { token, body: { name: `by ${token.slice(0, 3)}` } });
    expect((await as('old-admin-token-0123456789')).status).toBe(201);
    expect((await as('new-admin-token-9876543210')).status).toBe(201);
    expect((await as('old-admin-token-012345678')).status).toBe(401);
    expect((await as('old-admin-token-0123456789, new-admin-token-9876543210')).status).toBe(401);
    const log = await t.api('GET', '/v1/admin/audit-log', { token: 'new-admin-token-9876543210' });
    const fingerprints = new Set(log.body.entries.map((e: { details: { token: string } }) => e.details.token));
    expect(fingerprints.size).toBe(2);
    expect(JSON.stringify(log.body)).not.toContain('admin-token-');

    // The token list names each configured token by the same fingerprint, with its last use, so an
    // operator can see the old one is idle before removing it.
    const listed = await eventually(async () => {
      const res = await t!.api('GET', '/v1/admin/tokens', { token: 'new-admin-token-9876543210' });
      return res.body.tokens?.every((x: { lastUsedAt: string | null }) => x.lastUsedAt) ? res : undefined;
    }, 'both uses to be recorded');
    expect(listed.status).toBe(200);
    expect(listed.body.tokens).toHaveLength(2);
    expect(new Set(listed.body.tokens.map((x: { fingerprint: string }) => x.fingerprint))).toEqual(fingerprints);
    for (const token of listed.body.tokens) expect(Date.parse(token.lastUsedAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(JSON.stringify(listed.body)).not.toContain('admin-token-');
  });

  it('shows a token never used as such', async () => {
    t = await startTestService('pglite', { adminToken: 'used-admin-token-0123456789,idle-admin-token-0123456789' });
    expect((await t.api('GET', '/v1/admin/tenants', { token: 'used-admin-token-0123456789' })).status).toBe(200);
    // The use is recorded beside the request, not before its answer.
    const used = await eventually(async () => {
      const listed = await t!.api('GET', '/v1/admin/tokens', { token: 'used-admin-token-0123456789' });
      return listed.body.tokens[0].lastUsedAt ? listed.body.tokens : undefined;
    }, 'the use to be recorded');
    expect(used[1].lastUsedAt).toBeNull();
  });
});
