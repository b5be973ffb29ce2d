import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/**
 * The desk's live signals on both sides of the stream: every type of the DeskSignal union
 * (src/bus/desk-signals.ts) is handled by the console's signal switch (web/desk/app.js), and the
 * console handles no signal type the service never sends.
 */
const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

function unionTypes(): string[] {
  const source = read('src/bus/desk-signals.ts');
  const union = source.slice(source.indexOf('export type DeskSignal ='), source.indexOf('export type DeskSignalType'));
  return [...union.matchAll(/type: '([a-z_.]+)'/g)].map((m) => m[1]!);
}

function consoleCases(): string[] {
  const source = read('web/desk/app.js');
  const start = source.indexOf('function onSignal(');
  const body = source.slice(start, source.indexOf('\n}\n', start));
  return [...body.matchAll(/case '([a-z_.]+)':/g)].map((m) => m[1]!);
}

describe('desk signals', () => {
  it('lists the signal types it is read from', () => {
    expect(unionTypes()).toEqual(expect.arrayContaining(['handover.queued', 'message.created', 'session.ended']));
    expect(consoleCases()).toEqual(expect.arrayContaining(['ready', 'handover.queued']));
  });

  it('are each handled by the console, which handles no other', () => {
    const sent = unionTypes();
    const handled = consoleCases();
    // From the stream itself rather than the bus: its first event, and the bus saying signals were lost.
    const ofTheStream = ['ready', 'resync'];
    expect(sent.filter((t) => !handled.includes(t))).toEqual([]);
    expect(handled.filter((t) => !sent.includes(t) && !ofTheStream.includes(t))).toEqual([]);
  });
});
