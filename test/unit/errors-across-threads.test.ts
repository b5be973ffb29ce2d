import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/resilience/errors.js';
import { deserializeError, serializeError } from '../../src/resilience/errors-across-threads.js';

describe('errors crossing between threads', () => {
  it('keeps an AppError’s code, message, details and Retry-After, through a structured clone', () => {
    const original = new AppError('database_timeout', { message: 'statement ran 20 s', details: { statement: 'accept' }, retryAfterSeconds: 3 });
    const back = deserializeError(structuredClone(serializeError(original)));
    expect(back).toBeInstanceOf(AppError);
    expect(back).toMatchObject({
      code: 'database_timeout',
      status: 503,
      message: 'statement ran 20 s',
      details: { statement: 'accept' },
      retryAfterSeconds: 3,
    });
  });

  it('turns anything else into a plain Error with its message and its own code (a SQLSTATE), never into an AppError', () => {
    const back = deserializeError(structuredClone(serializeError(Object.assign(new Error('No space left on device'), { code: '53100' }))));
    expect(back).not.toBeInstanceOf(AppError);
    expect(back).toMatchObject({ message: 'No space left on device', code: '53100' });
    expect(deserializeError({ name: 'Error', message: 'odd', fields: {}, app: { code: 'not_a_code' } })).not.toBeInstanceOf(AppError);
    expect(deserializeError(serializeError('a thrown string')).message).toBe('a thrown string');
  });
});
