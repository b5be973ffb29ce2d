import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { headerSafe, hostileString, jsonValue } from '../hostile-input.js';

/**
 * The connectors' inbound wire formats, as the vendors document them, for the webhook fuzz
 * (test/e2e/hostile-webhooks.test.ts): how a request is authenticated — correctly, or forged in one
 * of many ways — and what a valid event and a hostile one look like. Signatures are computed here
 * from the wire format, never with the service's own signer, so a signing bug cannot agree with itself.
 *
 * An `auth` value is plain data (fast-check prints it in a counterexample); `verifies` says, by the
 * vendor's rules alone, whether the service must take it as authentic.
 */
export interface InboundWire<Auth> {
  name: string;
  auth: fc.Arbitrary<Auth>;
  verifies(auth: Auth): boolean;
  /** The headers a request with this body carries; `caseNo` keeps each case's delivery id unique. */
  headers(auth: Auth, raw: string, caseNo: number): Record<string, string>;
  /** A valid agent message, for the handover the fuzz watches, with a unique id (ending in `idTail` where the vendor's ids are not bounded). */
  validEvent(n: number, text: string, idTail?: string): string;
  /** What happens to a text past 20,000 UTF-16 units: the event is refused, or the text is cut. */
  longText: 'refused' | 'cut';
  /** Malformed or hostile bodies that, even when authentic, may change nothing of the watched handover. */
  hostileEvent: fc.Arbitrary<string>;
}

/** A `webhook-timestamp` / `X-Chatwoot-Timestamp`: now (within the 5-minute tolerance) or not. */
export type Stamp =
  | { at: 'now'; skew: number }
  | { at: 'missing' }
  | { at: 'old'; by: number }
  | { at: 'future'; by: number }
  | { at: 'text'; value: string }
  | { at: 'huge'; digits: number }
  | { at: 'fraction' }
  | { at: 'negative' };

export const stamp: fc.Arbitrary<Stamp> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ at: fc.constant('now' as const), skew: fc.integer({ min: -180, max: 180 }) }) },
  { weight: 1, arbitrary: fc.constant({ at: 'missing' as const }) },
  { weight: 1, arbitrary: fc.record({ at: fc.constant('old' as const), by: fc.integer({ min: 302, max: 2_000_000_000 }) }) },
  { weight: 1, arbitrary: fc.record({ at: fc.constant('future' as const), by: fc.integer({ min: 302, max: 100_000_000_000 }) }) },
  { weight: 1, arbitrary: fc.record({ at: fc.constant('text' as const), value: hostileString }) },
  { weight: 1, arbitrary: fc.record({ at: fc.constant('huge' as const), digits: fc.integer({ min: 13, max: 400 }) }) },
  { weight: 1, arbitrary: fc.constantFrom({ at: 'fraction' as const }, { at: 'negative' as const }) },
);

export function stampValue(s: Stamp, now = Math.floor(Date.now() / 1000)): string | undefined {
  switch (s.at) {
    case 'now':
      return String(now + s.skew);
    case 'missing':
      return undefined;
    case 'old':
      return String(now - s.by);
    case 'future':
      return String(now + s.by);
    case 'text':
      return s.value;
    case 'huge':
      return '9'.repeat(s.digits);
    case 'fraction':
      return `${now}.5`;
    case 'negative':
      return `-${now}`;
  }
}

export function withHeaders(entries: Array<[string, string | undefined]>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of entries) if (value !== undefined) headers[name] = headerSafe(value);
  return headers;
}

export const randomKey = () => randomBytes(32);

/** Whether a value the connector turns into a conversation reference (`String(value)`) names `ref`. */
export function names(value: unknown, ref: string | number): boolean {
  if (value === undefined || value === null) return false;
  try {
    return String(value) === String(ref);
  } catch {
    return false; // an object whose toString is not a function: no reference at all
  }
}

export function field(value: unknown, key: string): unknown {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}
export const base32 = '0123456789abcdefghjkmnpqrstvwxyz';

type Path = Array<string | number>;

function pathsOf(value: unknown, prefix: Path = []): Path[] {
  if (value === null || typeof value !== 'object') return [];
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([key, item]) => [[...prefix, key], ...pathsOf(item, [...prefix, key])]);
}

/**
 * Valid events with one to three fields replaced by hostile values or removed: what gets past the
 * first checks and into a connector's parsing, where a type confusion would surface as a 500.
 */
export function mutants(templates: unknown[], keep: (event: any) => boolean): fc.Arbitrary<string> {
  return fc
    .constantFrom(...templates)
    .chain((template) =>
      fc
        .array(fc.record({ path: fc.constantFrom(...pathsOf(template)), value: fc.option(fc.oneof(jsonValue, hostileString), { nil: undefined }) }), {
          minLength: 1,
          maxLength: 3,
        })
        .map((changes) => {
          const copy = structuredClone(template) as Record<string | number, unknown>;
          for (const { path, value } of changes) {
            let parent: unknown = copy;
            for (const key of path.slice(0, -1))
              parent = parent !== null && typeof parent === 'object' ? (parent as Record<string | number, unknown>)[key] : undefined;
            if (parent === null || typeof parent !== 'object') continue;
            const last = path.at(-1)!;
            if (value === undefined) delete (parent as Record<string | number, unknown>)[last];
            else (parent as Record<string | number, unknown>)[last] = value;
          }
          return copy;
        }),
    )
    .filter(keep)
    .map((event) => JSON.stringify(event));
}
