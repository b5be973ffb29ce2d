import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { lazyChild } from '../../src/http/request-telemetry.js';
import { createLogger } from '../../src/telemetry/logger.js';

function logger(level: string) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const real = createLogger(level, stream) as unknown as FastifyBaseLogger;
  let children = 0;
  // The request's logger as the lazy child sees it, counting the children made of it.
  const log = Object.assign(Object.create(real) as FastifyBaseLogger, {
    child: (bindings: Record<string, unknown>, options?: object) => {
      children++;
      return real.child(bindings, options);
    },
  });
  return { log, lines, children: () => children };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('a request logger with bindings made lazily', () => {
  it('makes no child logger for a request that writes no line, nor for lines below the level', async () => {
    const parent = logger('info');
    const log = lazyChild(parent.log, { tenantId: 'ten_1' });
    log.debug('not written');
    log.trace('not written');
    expect(parent.children()).toBe(0);
    expect(log.level).toBe('info');
    await flush();
    expect(parent.lines).toEqual([]);
  });

  it('writes every enabled line with the bindings, through one child made on the first', async () => {
    const parent = logger('debug');
    const log = lazyChild(parent.log, { tenantId: 'ten_1', handoverId: 'hov_1' });
    log.info({ status: 202 }, 'request');
    log.error(new Error('boom'), 'failed');
    expect(parent.children()).toBe(1);
    log.child({ part: 'x' }).warn('nested');
    await flush();
    expect(parent.lines.map((l) => [l.msg, l.tenantId, l.handoverId])).toEqual([
      ['request', 'ten_1', 'hov_1'],
      ['failed', 'ten_1', 'hov_1'],
      ['nested', 'ten_1', 'hov_1'],
    ]);
    expect(parent.lines[0]).toMatchObject({ status: 202 });
    expect(parent.lines[2]).toMatchObject({ part: 'x' });
  });

  it('stacked, as Fastify and the service stack them (request id, then tenant), makes neither child for lines below the level, and both for a line written', async () => {
    const parent = logger('info');
    const request = lazyChild(parent.log, { reqId: 'req-1' });
    const withTenant = lazyChild(request, { tenantId: 'ten_1' });
    withTenant.debug('not written');
    expect(parent.children()).toBe(0);
    withTenant.warn('written');
    expect(parent.children()).toBe(1);
    await flush();
    expect(parent.lines.map((l) => [l.msg, l.reqId, l.tenantId])).toEqual([['written', 'req-1', 'ten_1']]);
  });
});
