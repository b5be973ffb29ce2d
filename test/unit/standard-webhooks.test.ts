import { describe, expect, it } from 'vitest';
import { newWebhookSecret, sign, signedHeaders, verify } from '../../src/outbound/standard-webhooks.js';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

// The reference vector published with the Standard Webhooks specification.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = '{"test": 2432232314}';
const SIGNATURE = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';
const AT = new Date(TS * 1000);

describe('Standard Webhooks signing', () => {
  it('reproduces the specification’s reference signature', () => {
    expect(sign(SECRET, ID, TS, BODY)).toBe(SIGNATURE);
    expect(signedHeaders(SECRET, ID, BODY, AT)).toEqual({ 'webhook-id': ID, 'webhook-timestamp': String(TS), 'webhook-signature': SIGNATURE });
  });

  it('verifies the reference, and refuses tampering, other secrets and stale timestamps', () => {
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: SIGNATURE }, BODY, AT)).toEqual({ ok: true, id: ID });
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: SIGNATURE }, '{"test": 2432232315}', AT)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verify(newWebhookSecret(), { id: ID, timestamp: String(TS), signature: SIGNATURE }, BODY, AT)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verify(SECRET, { id: 'msg_other', timestamp: String(TS), signature: SIGNATURE }, BODY, AT)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: SIGNATURE }, BODY, new Date((TS + 301) * 1000))).toEqual({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: SIGNATURE }, BODY, new Date((TS - 301) * 1000))).toEqual({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verify(SECRET, { id: ID, timestamp: 'soon', signature: SIGNATURE }, BODY, AT)).toEqual({ ok: false, reason: 'missing_headers' });
    expect(verify(SECRET, { id: ID, timestamp: String(TS) }, BODY, AT)).toEqual({ ok: false, reason: 'missing_headers' });
  });

  it('accepts any one valid signature of several (secret rotation)', () => {
    const header = `v1,AAAA v2,${SIGNATURE.slice(3)} ${SIGNATURE}`;
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: header }, BODY, AT).ok).toBe(true);
    expect(verify(SECRET, { id: ID, timestamp: String(TS), signature: `v2,${SIGNATURE.slice(3)}` }, BODY, AT).ok).toBe(false);
  });

  it('makes secrets in the spec’s format with 32 random bytes', () => {
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(secret);
  });
});

/**
 * The scheme's own library (`standardwebhooks`, what a receiver or sender written from
 * standardwebhooks.com would use) and ours agree both ways: what we sign it verifies, what it signs we
 * verify, and neither takes a changed body, id or timestamp.
 */
describe('Standard Webhooks: interoperation with the scheme’s own library', () => {
  const body = JSON.stringify({ type: 'message.created', data: { text: 'héllo — 🙂' } });

  it('verifies what we sign', () => {
    const secret = newWebhookSecret();
    const headers = signedHeaders(secret, 'evt_1', body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(body.replace('héllo', 'hello'), headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'evt_2' })).toThrow(WebhookVerificationError);
  });

  it('is verified here when it signs, alone or beside a rotated-out signature', () => {
    const secret = newWebhookSecret();
    const at = new Date();
    const theirs = new Webhook(secret).sign('evt_9', at, body);
    const headers = { id: 'evt_9', timestamp: String(Math.floor(at.getTime() / 1000)), signature: theirs };
    expect(verify(secret, headers, body)).toEqual({ ok: true, id: 'evt_9' });
    expect(verify(secret, { ...headers, signature: `${sign(newWebhookSecret(), 'evt_9', Number(headers.timestamp), body)} ${theirs}` }, body)).toEqual({
      ok: true,
      id: 'evt_9',
    });
    expect(verify(secret, headers, body + ' ')).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verify(newWebhookSecret(), headers, body)).toEqual({ ok: false, reason: 'bad_signature' });
  });
});
