import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/resilience/errors.js';

/**
 * An AppError is an answer the service chose, named by its code: it captures no stack trace (that cost
 * the HTTP thread about 13 µs per 404 or refusal), except the internal error's. The cause keeps its own.
 */
describe('AppError', () => {
  const frames = (err: Error) => (err.stack ?? '').split('\n').filter((line) => line.trimStart().startsWith('at ')).length;

  it('captures no stack for a 4xx or a refusal, and keeps its cause with the cause’s stack', () => {
    const cause = new Error('connection refused');
    for (const err of [new AppError('handover_not_found'), new AppError('overloaded_queue_wait'), new AppError('database_unavailable', { cause })]) {
      expect(frames(err)).toBe(0);
      expect(err.message.length).toBeGreaterThan(0);
    }
    expect(new AppError('database_unavailable', { cause }).cause).toBe(cause);
    expect(frames(cause)).toBeGreaterThan(0);
  });

  it('keeps a stack for the internal error, and leaves the limit as it was for every other error', () => {
    const before = Error.stackTraceLimit;
    expect(frames(new AppError('internal_error'))).toBeGreaterThan(0);
    new AppError('handover_not_found');
    expect(Error.stackTraceLimit).toBe(before);
    expect(frames(new Error('plain'))).toBeGreaterThan(0);
  });
});
