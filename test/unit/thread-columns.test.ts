import { describe, expect, it } from 'vitest';
import type { UserMessageWrite } from '../../src/handover/accept-user-messages.js';
import { AppError } from '../../src/resilience/errors.js';
import type { ItemOutcome } from '../../src/store/group-commit.js';
import type { UserMessageWritten } from '../../src/handover/accept-user-messages.js';
import { deliveryAttempt, type DeliveryAttempt } from '../../src/service/events.js';
import { acceptColumns, acceptRows, AttemptColumnsBuilder, forEachAttempt, outcomeColumns, outcomeRows } from '../../src/service/thread-columns.js';

/** What a message port does to a message: a structured clone. */
const across = <T>(value: T): T => structuredClone(value);

const write = (i: number, extra: Partial<UserMessageWrite> = {}): UserMessageWrite => ({
  tenantId: `ten_${i % 2}`,
  handoverId: `hnd_${i}`,
  clientId: i % 3 === 0 ? null : `client-${i}`,
  messageId: `msg_${i}`,
  eventId: `evt_${i}`,
  text: `message ${i} with ünïcödé and "quotes"`,
  attachments: [],
  createdAt: new Date(Date.UTC(2026, 11, 7, 9, 0, 0, i)),
  traceParent: i === 1 ? '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' : null,
  ...extra,
});

describe('what crosses between the HTTP and delivery threads, as columns', () => {
  it('an accept batch arrives as the same messages, in order, with their attachments and times', () => {
    const batch = [
      write(0),
      write(1, { attachments: [{ url: 'https://files.example/a.png', name: 'a.png', contentType: 'image/png', size: 12 }] }),
      write(2),
      write(3, { attachments: [{ url: 'https://files.example/b.pdf', id: 'att_1' }] }),
    ];
    const back = acceptRows(across(acceptColumns(batch)));
    expect(back).toEqual(batch);
    expect(back[2]!.createdAt).toBeInstanceOf(Date);
    // Without any attachment in the batch, none travel, and each message still reads an empty list.
    const plain = [write(4), write(5)];
    const columns = acceptColumns(plain);
    expect(columns.attachments).toBeNull();
    expect(acceptRows(across(columns))).toEqual(plain);
    expect(acceptRows(across(acceptColumns([])))).toEqual([]);
  });

  it("a batch's outcomes arrive per item, in order: written, nothing written, and a failure with its own error", () => {
    const outcomes: Array<ItemOutcome<UserMessageWritten>> = [
      { ok: true, value: { seq: 7, connectorId: 'con_1', handed: true } },
      { ok: true, value: null },
      { ok: false, error: new AppError('invalid_request', { message: 'the text cannot be stored' }) },
      { ok: true, value: { seq: 2 ** 40, connectorId: null, handed: false } },
    ];
    const back = outcomeRows(across(outcomeColumns(outcomes)));
    expect(back).toHaveLength(4);
    expect(back[0]).toEqual({ ok: true, value: { seq: 7, connectorId: 'con_1', handed: true } });
    expect(back[1]).toEqual({ ok: true, value: null });
    expect(back[2]!.ok).toBe(false);
    const failed = back[2] as { ok: false; error: Error };
    expect(failed.error).toBeInstanceOf(AppError);
    expect(failed.error).toMatchObject({ code: 'invalid_request', message: 'the text cannot be stored' });
    expect(back[3]).toEqual({ ok: true, value: { seq: 2 ** 40, connectorId: null, handed: false } });
    // No failure: no error column at all.
    expect(outcomeColumns([outcomes[0]!, outcomes[1]!]).errors).toBeNull();
  });

  it('attempts gathered over a turn arrive as the events the same attempts make in the HTTP thread, and the builder starts afresh', () => {
    const rows = [
      { target: 'agent' as const, connector_id: 'con_1', created_at: new Date(1_700_000_000_123) },
      { target: 'bot' as const, connector_id: null, created_at: new Date(1_700_000_000_456) },
    ];
    const builder = new AttemptColumnsBuilder();
    builder.add(rows[0]!, 'ok', 0.004);
    builder.add(rows[1]!, 'retry', 1.5);
    expect(builder.size).toBe(2);
    const seen: DeliveryAttempt[] = [];
    forEachAttempt(across(builder.take()), (attempt) => seen.push(attempt));
    expect(seen).toEqual([deliveryAttempt(rows[0]!, 'ok', 0.004), deliveryAttempt(rows[1]!, 'retry', 1.5)]);
    expect(seen[0]).toEqual({ target: 'agent', connectorId: 'con_1', createdAtMs: 1_700_000_000_123, outcome: 'ok', seconds: 0.004 });
    expect(builder.size).toBe(0);
    const none: DeliveryAttempt[] = [];
    forEachAttempt(across(builder.take()), (attempt) => none.push(attempt));
    expect(none).toEqual([]);
  });
});
