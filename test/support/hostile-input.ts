import fc from 'fast-check';

/**
 * Generators of malformed and hostile input, shared by the fuzz properties (test/e2e/hostile-*.test.ts),
 * and the case budget they split between them.
 */

/**
 * Cases per `npm test` run across every fuzz property; FUZZ_RUNS scales it for a local run. Each
 * property takes a share, counts the cases it ran, asserts the count, and records it on its test
 * (`meta.fuzzCases`), so the summary line of the run reports the measured total.
 */
export const FUZZ_CASES = Number(process.env.FUZZ_RUNS ?? 10_000);

/**
 * A property's time limits: the test's timeout, and a shorter one after which fast-check starts no new
 * run (nor a further shrinking step), so a failure is still reported with its counterexample rather
 * than lost in a test timeout. A run cut short without a failure fails on its case count instead.
 */
export function fuzzTimeLimits(runs: number): { testTimeoutMs: number; interruptAfterTimeLimit: number } {
  const testTimeoutMs = 30_000 + runs * 8;
  return { testTimeoutMs, interruptAfterTimeLimit: testTimeoutMs - 10_000 };
}

declare module 'vitest' {
  interface TaskMeta {
    fuzzCases?: number;
  }
}

export const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '..',
    '../../etc/passwd',
    '%00',
    '\u0000',
    "' or 1=1 --",
    '"; drop table handovers; --',
    '<script>alert(1)</script>',
    '${jndi:ldap://x}',
    '\\',
    '%',
    '%zz',
    '😀',
    '\ud800',
    'null',
    'undefined',
    '-1',
    '1e309',
    'NaN',
  ),
  // Lengths anywhere up to 5,000 (fast-check keeps strings near their minimum length unless told).
  fc.string({ minLength: 300, maxLength: 5000, size: 'max' }),
);

export const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    hostileString,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.oneof(
        hostileString,
        fc.constantFrom(
          'id',
          'text',
          'queue',
          'user',
          'conversationId',
          'typing',
          'reason',
          'name',
          'webhookUrl',
          'config',
          '__proto__',
          'constructor',
          'toString',
          'valueOf',
        ),
      ),
      tie('value'),
      { maxKeys: 6 },
    ),
  ),
})).value;

export interface RawBody {
  raw: string;
  type: string;
}

/** Content types a JSON API must refuse, or must parse exactly as JSON. */
export const contentType = fc.constantFrom(
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/json; charset=latin1',
  'application/jsonx',
  'APPLICATION/JSON',
  'application/json, text/plain',
  '',
);

export const deeplyNested = '{"a":' + '['.repeat(2000) + ']'.repeat(2000) + '}';

export const hostileBody: fc.Arbitrary<RawBody | undefined> = fc.oneof(
  jsonValue.map((v) => ({ raw: JSON.stringify(v) ?? 'null', type: 'application/json' })),
  hostileString.map((s) => ({ raw: s, type: 'application/json' })),
  fc.record({ raw: hostileString, type: contentType }),
  fc.constant({ raw: deeplyNested, type: 'application/json' }),
  fc.constant(undefined),
);

/** What fetch can put in a header (no control characters, nothing past Latin-1), as a server reads it back. */
export function headerSafe(value: string): string {
  return value.replace(/[^\t\x20-\x7e\x80-\xff]/g, '?').replace(/^[\t ]+|[\t ]+$/g, '');
}

/** A string as UTF-8 carries it: a lone surrogate becomes U+FFFD (it has no encoding of its own). */
export function wellFormed(value: string): string {
  return Buffer.from(value, 'utf8').toString('utf8');
}
