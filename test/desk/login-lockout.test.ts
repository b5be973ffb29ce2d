import { afterEach, describe, expect, it } from 'vitest';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';

const PASSWORD = 'correct horse battery';

describe('sign-in lockout (pglite)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    await t?.close();
  });

  it('locks an account after repeated wrong passwords, refuses even the right one meanwhile, and opens again', async () => {
    t = await startTestService('pglite', { 'desk.loginMaxFailures': 3, 'desk.loginLockSeconds': 2, 'desk.loginMaxFailuresPerAddress': 1000 });
    const desk = await setUpDesk(t);
    const me = await t.api('GET', '/v1/desk/me', { token: desk.agentToken });
    const email: string = me.body.agent?.email ?? me.body.email;
    const attempt = (password: string) => t!.api('POST', '/v1/desk/login', { body: { email, password } });

    for (let i = 0; i < 2; i++) expect((await attempt('wrong')).body.error.code).toBe('invalid_credentials');
    const third = await attempt('wrong');
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe('too_many_login_attempts');
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // While locked, the right password is refused too: guessing stops paying.
    const locked = await attempt(PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.error.message).toMatch(/accepts sign-ins again in \d+ s/);

    await new Promise((r) => setTimeout(r, 2100));
    expect((await attempt(PASSWORD)).status).toBe(200);
    // A success starts the count afresh.
    for (let i = 0; i < 2; i++) expect((await attempt('wrong')).status).toBe(401);
    expect((await attempt(PASSWORD)).status).toBe(200);
    expect((await attempt('wrong')).status).toBe(401);
  });

  it('refuses an address that keeps failing, whatever accounts it tries', async () => {
    t = await startTestService('pglite', { 'desk.loginMaxFailuresPerAddress': 3, 'desk.loginLockSeconds': 60 });
    await setUpDesk(t);
    for (let i = 0; i < 3; i++) expect((await t.api('POST', '/v1/desk/login', { body: { email: `nobody-${i}@example.com`, password: 'x' } })).status).toBe(401);
    const refused = await t.api('POST', '/v1/desk/login', { body: { email: 'someone-else@example.com', password: 'x' } });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'too_many_login_attempts', message: expect.stringMatching(/from this address/) });
  });

  it('counts guesses sent in parallel: no more than the limit are ever checked', async () => {
    t = await startTestService('pglite', { 'desk.loginMaxFailures': 3, 'desk.loginLockSeconds': 60, 'desk.loginMaxFailuresPerAddress': 1000 });
    const desk = await setUpDesk(t);
    const me = await t.api('GET', '/v1/desk/me', { token: desk.agentToken });
    const email: string = me.body.agent?.email ?? me.body.email;
    const answers = await Promise.all(Array.from({ length: 10 }, () => t!.api('POST', '/v1/desk/login', { body: { email, password: 'guess' } })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(8);
    expect((await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).status).toBe(429);
  });
});
