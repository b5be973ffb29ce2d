import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { handleFreshchatInbound, readPublicKey } from '../../src/connectors/freshchat/freshchat-webhook.js';

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const spki = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const pkcs1 = publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
const lines = (b64: string) => b64.replace(/(.{64})/g, '$1\n');

describe('freshchat webhook: the public key as it is pasted', () => {
  it.each([
    ['a PEM of SubjectPublicKeyInfo', `-----BEGIN PUBLIC KEY-----\n${lines(spki)}\n-----END PUBLIC KEY-----\n`],
    // As Freshchat's webhook page shows it: an SPKI body under the PKCS#1 label, on one line.
    ['an SPKI body labelled RSA PUBLIC KEY, on one line', `-----BEGIN RSA PUBLIC KEY----- ${spki} -----END RSA PUBLIC KEY-----`],
    ['an SPKI body labelled RSA PUBLIC KEY, in lines', `-----BEGIN RSA PUBLIC KEY-----\n${lines(spki)}\n-----END RSA PUBLIC KEY-----`],
    ['a PKCS#1 PEM', `-----BEGIN RSA PUBLIC KEY-----\n${lines(pkcs1)}\n-----END RSA PUBLIC KEY-----`],
    ['an SPKI body alone', spki],
    ['a PKCS#1 body alone, in lines', lines(pkcs1)],
  ])('reads %s', (_name, text) => {
    const key = readPublicKey(text);
    expect(key.export({ type: 'spki', format: 'der' }).toString('base64')).toBe(spki);
  });

  it('refuses text that is no key', () => {
    expect(() => readPublicKey('not a key at all')).toThrow();
  });
});

describe('freshchat webhook: what is ours', () => {
  const config = { agentId: 'agent-handover' };
  const signed = (body: unknown) => {
    const rawBody = JSON.stringify(body);
    return { headers: { 'x-freshchat-signature': sign('sha256', Buffer.from(rawBody), privateKey).toString('base64') }, rawBody, body };
  };
  const messageBy = (actorId: string, extra: Record<string, unknown> = {}) =>
    signed({
      actor: { actor_type: 'agent', actor_id: actorId },
      action: 'message_create',
      action_time: '2026-12-07T10:00:00.000Z',
      data: {
        message: {
          id: `m-${actorId}`,
          conversation_id: 'conv-1',
          actor_type: 'agent',
          actor_id: actorId,
          message_parts: [{ text: { content: 'hello' } }],
          ...extra,
        },
      },
    });

  it("drops the connector's own agent's message (the transcript note) even when it says no message_type", () => {
    const result = handleFreshchatInbound(config, publicKey, messageBy('agent-handover'));
    expect(result).toMatchObject({ ok: true, receipts: [{ events: [] }] });
  });

  it("relays another agent's message", () => {
    const result = handleFreshchatInbound(config, publicKey, messageBy('agent-ada'));
    expect(result).toMatchObject({ ok: true, receipts: [{ events: [{ type: 'message.created', externalRef: 'conv-1' }] }] });
  });
});
