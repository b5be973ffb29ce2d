import type { Static } from '@sinclair/typebox';
import { describe, expect, it } from 'vitest';
import type { Availability, BotEvent, Handover } from '../../packages/client/src/index.js';
import type { AvailabilitySchema, HandoverSchema } from '../../src/http/schemas.js';
import type { botEventSchemas } from '../../src/http/openapi/event-schemas.js';

/**
 * The client's types against the schemas the service's OpenAPI document is generated from: a change on
 * either side that the other does not follow fails the typecheck (`npm run typecheck`).
 */
/** Each assignable to the other, with the same field names (optional ones included). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? ([keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false) : false) : false;

const handoverMatches: Same<Handover, Static<typeof HandoverSchema>> = true;
const availabilityMatches: Same<Availability, Static<typeof AvailabilitySchema>> = true;
type DocumentedEvent = { [K in keyof typeof botEventSchemas]: Static<(typeof botEventSchemas)[K]> }[keyof typeof botEventSchemas];
const eventsMatch: Same<BotEvent, DocumentedEvent> = true;

describe('the client’s types', () => {
  it('are the service’s schemas (checked when this file is typechecked)', () => {
    expect([handoverMatches, availabilityMatches, eventsMatch]).toEqual([true, true, true]);
  });
});
