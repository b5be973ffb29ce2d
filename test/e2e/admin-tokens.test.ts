import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../support/test-service.js';

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
  });
});
