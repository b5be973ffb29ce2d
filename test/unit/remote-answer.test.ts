import { describe, expect, it } from 'vitest';
import { DeliveryError } from '../../src/connectors/connector.js';
import { failureText } from '../../src/connectors/connector-helpers.js';
import { answerError, describeAnswer } from '../../src/outbound/remote-answer.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { captureLogs } from '../support/log-capture.js';

const json = { 'content-type': 'application/json; charset=utf-8' };
const SECRET_TEXT = 'my card ends in 4242';

describe('describing a refusing answer without its free text', () => {
  it.each([
    ['Zendesk-style', { error: 'RecordInvalid', description: `Text "${SECRET_TEXT}" is too long` }, 'keys: error, description, code: RecordInvalid'],
    ['Sunshine-style', { errors: [{ code: 'bad_request', title: `Invalid text: ${SECRET_TEXT}` }] }, 'keys: errors, code: bad_request'],
    ['nested error object', { error: { type: 'invalid_request_error', message: SECRET_TEXT } }, 'keys: error, code: invalid_request_error'],
    ['numeric code', { code: 4001, message: SECRET_TEXT }, 'keys: code, message, code: 4001'],
    ['free text where a code could be', { error: `cannot post ${SECRET_TEXT}` }, 'keys: error'],
    ['a long number where a code could be (a card number echoed)', { code: 4111111111114242, message: SECRET_TEXT }, 'keys: code, message'],
    ['digits only, as a string', { error: '4111111111114242' }, 'keys: error'],
    ['a user name where a code could be', { error: 'alice.4242-smith-1985-with-a-much-longer-tail-x' }, 'keys: error'],
  ])('%s', (_name, body, expected) => {
    const text = JSON.stringify(body);
    const described = describeAnswer(json, text);
    expect(described).toBe(`application/json, ${Buffer.byteLength(text)} bytes, ${expected}`);
    expect(described).not.toContain('4242');
  });

  it('names only field names that are single tokens, and counts the rest', () => {
    const described = describeAnswer(json, JSON.stringify({ ok: false, [SECRET_TEXT]: 1, 'another text with spaces': 2 }));
    expect(described).toMatch(/keys: ok, 2 more$/);
    expect(described).not.toContain('4242');
  });

  it('an array (Salesforce-style), plain text, and an empty body', () => {
    expect(describeAnswer(json, JSON.stringify([{ errorCode: 'INVALID_FIELD', message: SECRET_TEXT }]))).toMatch(/, a JSON array of 1, code: INVALID_FIELD$/);
    expect(describeAnswer({ 'content-type': 'text/plain' }, `echo: ${SECRET_TEXT}`)).toBe(`text/plain, ${6 + SECRET_TEXT.length} bytes`);
    expect(describeAnswer({}, '')).toBe('no body');
    expect(describeAnswer({ 'content-type': 'text/html', 'content-length': '90000' }, '<html>')).toBe('text/html, 90000 bytes');
    // A header that is not a media type is left out rather than repeated.
    expect(describeAnswer({ 'content-type': `text/plain ${SECRET_TEXT}` }, 'x')).toBe('1 byte');
  });

  it('keeps the quote beside the error: out of its message, its log serialisation, and failureText unless allowed', () => {
    const text = JSON.stringify({ error: 'invalid_message', description: SECRET_TEXT });
    const err = answerError('helpdesk.example', { status: 400, headers: json, text }, { retryable: false });
    expect(err).toBeInstanceOf(DeliveryError);
    expect(err).toMatchObject({ statusCode: 400, retryable: false });
    expect(err.message).toBe(`helpdesk.example answered 400 (application/json, ${text.length} bytes, keys: error, description, code: invalid_message)`);
    expect(err.answerQuote).toBe(text);
    expect(failureText(err, { quoteAnswers: false })).toBe(err.message);
    expect(failureText(err, { quoteAnswers: true })).toBe(`${err.message}: ${text}`);

    const logs = captureLogs();
    createLogger('info', logs.stream).error({ err, wrapped: new Error('outer', { cause: err }) }, 'delivery failed');
    expect(logs.text()).toContain('answered 400');
    expect(logs.text()).not.toContain('4242');
  });

  it('quotes at most 200 characters', () => {
    const err = answerError('h', { status: 500, headers: {}, text: 'x'.repeat(1000) }, { retryable: true });
    expect(err.answerQuote).toHaveLength(200);
    expect(err.message).toBe('h answered 500 (1000 bytes)');
  });
});
