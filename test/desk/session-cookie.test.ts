import { afterEach, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';
import { sessionCookie } from '../../src/desk/session-cookie.js';

describe('desk sessions in an HttpOnly cookie, with CSRF protection on writes (pglite)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('signs in with a cookie script cannot read, refuses cookie writes without the CSRF token, and signs out', async () => {
    t = await startTestService('pglite');
    const desk = await setUpDesk(t);
    const email: string = (await t.api('GET', '/v1/desk/me', { token: desk.agentToken })).body.email;
    const login = await t.api('POST', '/v1/desk/login', { body: { email, password: 'correct horse battery' } });
    expect(login.status).toBe(200);
    const setCookie = login.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^handover_desk=[^;]+; Path=\/v1\/desk; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    const cookie = setCookie.split(';')[0]!;
    const csrf: string = login.body.csrfToken;

    // Reads with the cookie alone; the console learns its CSRF token from the session endpoint.
    const session = await t.api('GET', '/v1/desk/session', { headers: { cookie } });
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({ agent: { email }, csrfToken: csrf });
    // A write with the cookie but without the CSRF token (what a forged cross-site request could do).
    const forged = await t.api('PUT', '/v1/desk/presence', { headers: { cookie }, body: { presence: 'away' } });
    expect(forged.status).toBe(403);
    expect(forged.body.error.code).toBe('csrf_token_invalid');
    expect((await t.api('PUT', '/v1/desk/presence', { headers: { cookie, 'x-csrf-token': 'not-it' }, body: { presence: 'away' } })).status).toBe(403);
    const allowed = await t.api('PUT', '/v1/desk/presence', { headers: { cookie, 'x-csrf-token': csrf }, body: { presence: 'away' } });
    expect(allowed.status).toBe(200);
    // API clients with the Bearer token need no CSRF token.
    expect((await t.api('PUT', '/v1/desk/presence', { token: login.body.token, body: { presence: 'available' } })).status).toBe(200);

    const out = await t.api('POST', '/v1/desk/logout', { headers: { cookie, 'x-csrf-token': csrf } });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^handover_desk=; Path=\/v1\/desk; Max-Age=0/);
    expect((await t.api('GET', '/v1/desk/session', { headers: { cookie } })).status).toBe(401);
  });

  it('marks the cookie Secure when the service is reached over https', () => {
    expect(sessionCookie('tok', 60, true)).toBe('handover_desk=tok; Path=/v1/desk; Max-Age=60; HttpOnly; SameSite=Strict; Secure');
    expect(sessionCookie('tok', 60, false)).not.toContain('Secure');
  });
});
