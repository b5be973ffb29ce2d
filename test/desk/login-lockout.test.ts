import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { requestFrom } from '../support/from-address.js';
import { setUpDesk, startTestService, type TestService } from '../support/test-service.js';

const PASSWORD = 'correct horse battery';

describe('sign-in lockout (pglite)', () => {
  let t: TestService | undefined;
  afterEach(async () => {
    if (t !== shared) await t?.close();
    t = undefined;
  });
  // The three cases with these settings share a service: each guesses at its own agent's email (or at
  // one no other case uses), and their guesses from one address stay far below its limit of 1000.
  let shared: TestService | undefined;
  const lockAfterThree = async () =>
    (shared ??= await startTestService('pglite', { 'desk.loginMaxFailures': 3, 'desk.loginLockSeconds': 60, 'desk.loginMaxFailuresPerAddress': 1000 }));
  afterAll(async () => {
    await shared?.close();
  });

  it('locks an email at an address after repeated wrong passwords, refuses even the right one meanwhile, and opens again', async () => {
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
    expect(locked.body.error.message).toMatch(/accepts sign-ins from here again in \d+ s/);

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
    t = await lockAfterThree();
    const desk = await setUpDesk(t);
    const me = await t.api('GET', '/v1/desk/me', { token: desk.agentToken });
    const email: string = me.body.agent?.email ?? me.body.email;
    const answers = await Promise.all(Array.from({ length: 10 }, () => t!.api('POST', '/v1/desk/login', { body: { email, password: 'guess' } })));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(2);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(8);
    expect((await t.api('POST', '/v1/desk/login', { body: { email, password: PASSWORD } })).status).toBe(429);
  });

  it('cannot be used to lock an agent out: guesses from one address lock that address only, for that email', async () => {
    t = await lockAfterThree();
    const desk = await setUpDesk(t);
    const login = (from: string, email: string, password: string) => requestFrom(from, 'POST', `${t!.url}/v1/desk/login`, JSON.stringify({ email, password }));
    // Before: five wrong passwords from anywhere locked the account for 15 minutes.
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await login('127.0.0.2', desk.agentEmail, 'guess')).status);
    expect(answers).toEqual([401, 401, 429, 429, 429]);
    expect((await login('127.0.0.2', desk.agentEmail, PASSWORD)).status).toBe(429);
    // The agent, at their own address, signs in as usual.
    expect((await login('127.0.0.3', desk.agentEmail, PASSWORD)).status).toBe(200);
  });

  it('tells nothing about which emails exist: an unknown email is answered and locked the same way', async () => {
    t = await lockAfterThree();
    const desk = await setUpDesk(t);
    const answersFor = async (email: string) => {
      const answers = [];
      for (let i = 0; i < 4; i++) {
        const res = await t!.api('POST', '/v1/desk/login', { body: { email, password: 'guess' } });
        answers.push(`${res.status} ${res.body.error.code} ${res.body.error.message.replace(/\d+ s/, 'N s')}`);
      }
      return answers;
    };
    expect(await answersFor('nobody-here@example.com')).toEqual(await answersFor(desk.agentEmail));
  });

  it('signs in an email held in two tenants by its password, with no 409 for a wrong one, and counts those failures per address', async () => {
    t = await startTestService('pglite', { 'desk.loginMaxFailures': 100, 'desk.loginMaxFailuresPerAddress': 3, 'desk.loginLockSeconds': 60 });
    const first = await setUpDesk(t);
    const second = await setUpDesk(t, { agent: { email: first.agentEmail, password: 'another long password' } });
    const attempt = (password: string, from = '127.0.0.1') =>
      requestFrom(from, 'POST', `${t!.url}/v1/desk/login`, JSON.stringify({ email: first.agentEmail, password }));

    // Before: `409 ambiguous_login` for any password, uncounted — telling anyone the email exists twice.
    const wrong = await attempt('wrong');
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_credentials');
    const one = await attempt(PASSWORD);
    expect(one.status).toBe(200);
    expect(one.body.agent.tenantId).toBe(first.tenantId);
    const other = await attempt('another long password');
    expect(other.status).toBe(200);
    expect(other.body.agent.tenantId).toBe(second.tenantId);

    // Wrong guesses at that email count against the address like any others.
    for (let i = 0; i < 2; i++) expect((await attempt('wrong', '127.0.0.4')).status).toBe(401);
    expect((await attempt('wrong', '127.0.0.4')).status).toBe(401);
    expect((await attempt('wrong', '127.0.0.4')).body.error.code).toBe('too_many_login_attempts');
  });

  it('asks for tenantId only when the password is right for agents of several tenants', async () => {
    t = await startTestService('pglite');
    const first = await setUpDesk(t);
    const tenant = await t.admin('POST', '/v1/admin/tenants', { name: 'Second' });
    expect(
      (await t.admin('POST', `/v1/admin/tenants/${tenant.body.id}/agents`, { email: first.agentEmail, name: 'Ada Again', password: PASSWORD })).status,
    ).toBe(201);
    const second = { tenantId: tenant.body.id as string };
    const both = await t.api('POST', '/v1/desk/login', { body: { email: first.agentEmail, password: PASSWORD } });
    expect(both.status).toBe(409);
    expect(both.body.error.code).toBe('ambiguous_login');
    const chosen = await t.api('POST', '/v1/desk/login', { body: { email: first.agentEmail, password: PASSWORD, tenantId: second.tenantId } });
    expect(chosen.status).toBe(200);
    expect(chosen.body.agent.tenantId).toBe(second.tenantId);
  });

  it('behind a proxy (HANDOVER_TRUST_PROXY), tells clients apart by X-Forwarded-For, believed only from the proxy', async () => {
    t = await startTestService('pglite', {
      'http.trustProxy': '127.0.0.1',
      'desk.loginMaxFailures': 3,
      'desk.loginLockSeconds': 60,
      'desk.loginMaxFailuresPerAddress': 1000,
    });
    const desk = await setUpDesk(t);
    const login = (from: string, client: string, password: string) =>
      requestFrom(from, 'POST', `${t!.url}/v1/desk/login`, JSON.stringify({ email: desk.agentEmail, password }), { 'x-forwarded-for': client });
    // Without the setting every client would share the proxy's address, and its guesses would lock everyone out.
    for (let i = 0; i < 3; i++) await login('127.0.0.1', '203.0.113.5', 'guess');
    expect((await login('127.0.0.1', '203.0.113.5', PASSWORD)).status).toBe(429);
    expect((await login('127.0.0.1', '198.51.100.7', PASSWORD)).status).toBe(200);
    // A client connecting directly cannot borrow another's address (or escape its own).
    expect((await login('127.0.0.2', '203.0.113.5', 'guess')).status).toBe(401);
  });
});
