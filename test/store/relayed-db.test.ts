import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel } from 'node:worker_threads';
import { relayedDb, serveRelayedDb, type DbAnswer, type DbCall } from '../../src/store/relayed-db.js';
import { isUniqueViolation } from '../../src/store/pg-errors.js';
import { createTestDb, type TestDb } from '../support/test-db.js';

/**
 * The embedded store's database used from the delivery thread through the HTTP thread: statements and
 * transactions cross as messages (here over a real MessageChannel, as between threads), errors keep
 * their codes, and a transaction the other side leaves open is rolled back in bounded time.
 */
describe('a database relayed to another thread (pglite)', () => {
  let db: TestDb | undefined;
  const channels: MessageChannel[] = [];
  afterEach(async () => {
    for (const channel of channels.splice(0)) {
      channel.port1.close();
      channel.port2.close();
    }
    await db?.dropAndClose();
    db = undefined;
  });

  async function relay(transactionMs = 5000, callTimeoutMs = 5000, options: { waitTimeoutMs?: number; beginArrives?: Promise<void> } = {}) {
    db = await createTestDb('pglite', options.waitTimeoutMs !== undefined ? { waitTimeoutMs: options.waitTimeoutMs } : {});
    await db.query('create table item (id int primary key, label text not null)');
    const channel = new MessageChannel();
    channels.push(channel);
    const served = serveRelayedDb(db, (answer) => channel.port1.postMessage(answer), { transactionMs });
    channel.port1.on('message', (call: DbCall) => {
      // A begin held back on its way (a busy HTTP thread), when the test asks for it.
      if (call.op === 'begin' && options.beginArrives) void options.beginArrives.then(() => served.call(call));
      else served.call(call);
    });
    const remote = relayedDb((call) => channel.port2.postMessage(call), { callTimeoutMs });
    channel.port2.on('message', (answer: DbAnswer) => remote.answer(answer));
    return { remote: remote.db, served };
  }

  it('runs statements and answers with their rows', async () => {
    const { remote } = await relay();
    await remote.query('insert into item values ($1, $2), ($3, $4)', [1, 'one', 2, 'two']);
    const { rows } = await remote.query<{ id: number; label: string }>('select id, label from item order by id');
    expect(rows).toEqual([
      { id: 1, label: 'one' },
      { id: 2, label: 'two' },
    ]);
  });

  it('commits a transaction that ends well, rolls back one that throws, and passes the error on with its code', async () => {
    const { remote } = await relay();
    expect(
      await remote.transaction(async (q) => {
        await q.query('insert into item values (1, $1)', ['kept']);
        return 'done';
      }),
    ).toBe('done');
    const failure = await remote
      .transaction(async (q) => {
        await q.query('insert into item values (2, $1)', ['gone']);
        await q.query('insert into item values (1, $1)', ['again']);
      })
      .catch((err: unknown) => err);
    expect(isUniqueViolation(failure)).toBe(true);
    expect((await db!.query('select label from item order by id')).rows).toEqual([{ label: 'kept' }]);
    // The connection is free again for its own thread.
    await db!.query('insert into item values (3, $1)', ['after']);
  });

  it('rolls back a transaction left open past its bound, frees the connection, and fails its late commit', async () => {
    const { remote } = await relay(200);
    let commitError: unknown;
    const left = remote
      .transaction(async (q) => {
        await q.query('insert into item values (1, $1)', ['late']);
        await new Promise((resolve) => setTimeout(resolve, 600));
      })
      .catch((err: unknown) => (commitError = err));
    // The owning thread's own statement waits for it no longer than the bound.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await db!.query('insert into item values (2, $1)', ['own']);
    await left;
    expect((commitError as { code?: string }).code).toBe('database_timeout');
    expect((await db!.query('select label from item order by id')).rows).toEqual([{ label: 'own' }]);
  });

  it('rolls back what the other thread left open when it goes away', async () => {
    const { remote, served } = await relay();
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    void remote
      .transaction(async (q) => {
        await q.query('insert into item values (1, $1)', ['orphan']);
        opened();
        await new Promise(() => {});
      })
      .catch(() => {});
    await isOpen;
    served.close();
    await db!.query('insert into item values (2, $1)', ['own']);
    expect((await db!.query('select label from item order by id')).rows).toEqual([{ label: 'own' }]);
  });

  it('answers a begin that cannot get the connection with the true cause, not a timeout of its own', async () => {
    // The caller would wait a minute: an answer within the test's time can only be the owner's.
    const { remote } = await relay(5000, 60_000, { waitTimeoutMs: 100 });
    let release!: () => void;
    const held = db!.transaction(() => new Promise<void>((resolve) => (release = resolve)));
    const failure = await remote.transaction(async () => 'never').catch((err: unknown) => err);
    release();
    await held;
    expect((failure as { code?: string }).code).toBe('database_pool_exhausted');
  });

  it('gives back at once a transaction opened after its caller stopped waiting', async () => {
    let arrive!: () => void;
    const beginArrives = new Promise<void>((resolve) => (arrive = resolve));
    // Left open, it would hold the connection for a minute, past the test's time.
    const { remote } = await relay(60_000, 100, { beginArrives });
    await expect(remote.transaction(async () => 'late')).rejects.toMatchObject({ code: 'database_timeout' });
    arrive();
    // Let the begin arrive and open its transaction before this thread's own statement.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await db!.query('insert into item values (1, $1)', ['own']);
    expect((await db!.query('select label from item')).rows).toEqual([{ label: 'own' }]);
  });

  it('fails a call that gets no answer within its bound', async () => {
    db = await createTestDb('pglite');
    const remote = relayedDb(() => {}, { callTimeoutMs: 100 }).db;
    await expect(remote.query('select 1')).rejects.toMatchObject({ code: 'database_timeout' });
  });
});
