import { afterEach, describe, expect, it } from 'vitest';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Db } from '../../src/store/db.js';
import { createPgliteInProcess, type PgliteEngine } from '../../src/store/pglite-engine.js';
import { createPgliteDb, openPgliteDbSession, terminatePgliteDbThread } from '../../src/store/pglite-db.js';
import { serveSession, Session, SessionScheduler } from '../../src/store/pglite-sessions.js';
import { relayedDb, type DbAnswer, type DbCall } from '../../src/store/relayed-db.js';
import { isUniqueViolation, isUnstorableText } from '../../src/store/pg-errors.js';

/**
 * The embedded database's one connection shared by the sessions of several threads, in the database's
 * own thread: the HTTP thread's statements, and the delivery thread's over a channel of its own. Here the
 * scheduler runs on PGlite in this thread and the other session speaks over a real MessageChannel, as
 * between threads; the last cases run the database in its thread, as the service does.
 */
describe('the embedded database shared by sessions of several threads', () => {
  let engine: PgliteEngine | undefined;
  const ports: MessagePort[] = [];
  afterEach(async () => {
    for (const port of ports.splice(0)) port.close();
    await engine?.close();
    engine = undefined;
  });

  async function setUp(options: { transactionMs?: number; waitTimeoutMs?: number; callTimeoutMs?: number; ownWaitMs?: number } = {}) {
    engine = await createPgliteInProcess({});
    await engine.query('create table item (id int primary key, label text not null)');
    const scheduler = new SessionScheduler(engine);
    const own = new Session('main');
    /** A statement of this thread's own session: `hold` inside its transactions, as pglite-db.ts sends them. */
    const ownStatement = (sql: string, hold = false) => scheduler.statement(own, sql, undefined, hold, options.ownWaitMs);
    const channel = new MessageChannel();
    ports.push(channel.port1, channel.port2);
    const served = serveSession(scheduler, new Session('delivery'), (answer) => channel.port1.postMessage(answer), {
      transactionMs: options.transactionMs ?? 5000,
      ...(options.waitTimeoutMs !== undefined ? { waitTimeoutMs: options.waitTimeoutMs } : {}),
    });
    channel.port1.on('message', (call: DbCall) => served.call(call));
    const remote = relayedDb((call) => channel.port2.postMessage(call), { callTimeoutMs: options.callTimeoutMs ?? 5000 });
    channel.port2.on('message', (answer: DbAnswer) => remote.answer(answer));
    const labels = async () => ((await engine!.query('select label from item order by id')).rows as Array<{ label: string }>).map((r) => r.label);
    return { scheduler, ownStatement, remote: remote.db, served, labels };
  }

  it("keeps the other session's statements out of a transaction held open, and runs them once it ends", async () => {
    const { ownStatement, remote, labels } = await setUp();
    await ownStatement('begin', true);
    await ownStatement("insert into item values (1, 'own, rolled back')", true);
    // Sent while this session holds the connection: it waits, and does not land in the transaction.
    const theirs = remote.query("insert into item values (2, 'theirs')");
    let landed = false;
    void theirs.then(() => (landed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(landed).toBe(false);
    await ownStatement('rollback');
    await theirs;
    expect(await labels()).toEqual(['theirs']);
  });

  it("keeps this session's statements out of the other's transaction, and the other's rollback takes only its own", async () => {
    const { ownStatement, remote, labels } = await setUp();
    let mine: Promise<unknown> | undefined;
    const failure = await remote
      .transaction(async (tx) => {
        await tx.query("insert into item values (1, 'theirs, rolled back')");
        mine = ownStatement("insert into item values (2, 'own')");
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new Error('changed its mind');
      })
      .catch((err: unknown) => err);
    expect((failure as Error).message).toBe('changed its mind');
    await mine;
    expect(await labels()).toEqual(['own']);
    // And a transaction that ends well is committed whole.
    await remote.transaction(async (tx) => {
      await tx.query("insert into item values (3, 'theirs, kept')");
      await tx.query("insert into item values (4, 'theirs, kept too')");
    });
    expect(await labels()).toEqual(['own', 'theirs, kept', 'theirs, kept too']);
  });

  it('rolls back a transaction left open past its bound, lets the others go on, and fails its late commit', async () => {
    const { ownStatement, remote, labels } = await setUp({ transactionMs: 200 });
    let commitError: unknown;
    const left = remote
      .transaction(async (tx) => {
        await tx.query("insert into item values (1, 'late')");
        await new Promise((resolve) => setTimeout(resolve, 600));
      })
      .catch((err: unknown) => (commitError = err));
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Waits for the other session's transaction no longer than its bound.
    await ownStatement("insert into item values (2, 'own')");
    await left;
    expect((commitError as { code?: string }).code).toBe('database_timeout');
    expect(await labels()).toEqual(['own']);
  });

  it('rolls back what a session left open when it closes (its thread went away), and drops what it had waiting', async () => {
    const { scheduler, ownStatement, remote, served, labels } = await setUp();
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    void remote
      .transaction(async (tx) => {
        await tx.query("insert into item values (1, 'orphan')");
        opened();
        await new Promise(() => {});
      })
      .catch(() => {});
    await isOpen;
    // Another lane of that thread, waiting behind its transaction; and this thread's own statement.
    void remote.query("insert into item values (3, 'queued, then dropped')").catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    const mine = ownStatement("insert into item values (2, 'own')");
    expect(scheduler.waiting).toBe(2);
    served.close();
    await mine;
    expect(await labels()).toEqual(['own']);
    expect(scheduler.held).toBe(false);
    expect(scheduler.waiting).toBe(0);
  });

  it("answers a statement waiting for another session's transaction at its bound, as the pool's checkout would, and does not run it", async () => {
    const { scheduler, ownStatement, remote, labels } = await setUp({ waitTimeoutMs: 100 });
    await ownStatement('begin', true);
    // Answered while the transaction still holds the connection, not once it ends.
    const waited = await remote.query("insert into item values (1, 'too late')").catch((err: unknown) => err);
    expect(waited).toMatchObject({ code: 'database_pool_exhausted' });
    expect(scheduler.held).toBe(true);
    expect(scheduler.waiting).toBe(0);
    await ownStatement('commit');
    expect(await labels()).toEqual([]);
    // The session is not left holding anything: a transaction of its own runs.
    await remote.transaction((tx) => tx.query("insert into item values (2, 'next')"));
    expect(await labels()).toEqual(['next']);
  });

  it("takes the other thread's concurrent transactions one after another, and keeps its plain statements out of them", async () => {
    const { remote, labels } = await setUp();
    let firstOpen!: () => void;
    const opened = new Promise<void>((resolve) => (firstOpen = resolve));
    // Its lanes run side by side: one transaction rolls back while another and a plain statement were sent.
    const first = remote
      .transaction(async (tx) => {
        await tx.query("insert into item values (1, 'first, rolled back')");
        firstOpen();
        await new Promise((resolve) => setTimeout(resolve, 150));
        await tx.query("insert into item values (2, 'first, rolled back too')");
        throw new Error('first changed its mind');
      })
      .catch((err: unknown) => err);
    await opened;
    const second = remote.transaction(async (tx) => {
      await tx.query("insert into item values (3, 'second')");
      await tx.query("insert into item values (4, 'second too')");
    });
    const plain = remote.query("insert into item values (5, 'plain')");
    expect(((await first) as Error).message).toBe('first changed its mind');
    await Promise.all([second, plain]);
    expect(await labels()).toEqual(['second', 'second too', 'plain']);
    // Many at once, each committed whole.
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        remote.transaction(async (tx) => {
          await tx.query('insert into item values ($1, $2)', [10 + 2 * i, `pair ${i} a`]);
          await tx.query('insert into item values ($1, $2)', [11 + 2 * i, `pair ${i} b`]);
        }),
      ),
    );
    expect((await labels()).length).toBe(3 + 16);
  });

  it("bounds this thread's own wait for the other thread's transaction, and does not run what waited too long", async () => {
    const { scheduler, ownStatement, remote, labels } = await setUp({ ownWaitMs: 100 });
    let release!: () => void;
    let opened!: () => void;
    const isOpen = new Promise<void>((resolve) => (opened = resolve));
    const held = remote.transaction(async (tx) => {
      await tx.query("insert into item values (1, 'theirs')");
      opened();
      await new Promise<void>((resolve) => (release = resolve));
    });
    await isOpen;
    // Answered while the other transaction still holds the connection.
    expect(await ownStatement("insert into item values (2, 'too late')").catch((err: unknown) => err)).toMatchObject({ code: 'database_pool_exhausted' });
    expect(scheduler.held).toBe(true);
    release();
    await held;
    expect(await labels()).toEqual(['theirs']);
    // Its own transaction, once it holds the connection, is not cut by that bound.
    await ownStatement('begin', true);
    const theirs = remote.query("insert into item values (3, 'theirs, after')");
    await new Promise((resolve) => setTimeout(resolve, 200));
    await ownStatement("insert into item values (4, 'own, in its transaction')", true);
    await ownStatement('commit');
    await theirs;
    expect(await labels()).toEqual(['theirs', 'theirs, after', 'own, in its transaction']);
  });

  it('passes errors on with their SQLSTATE, even inside an error the store translated, and refuses to commit an aborted transaction', async () => {
    const { remote, labels } = await setUp();
    await remote.query("insert into item values (1, 'one')");
    expect(isUniqueViolation(await remote.query("insert into item values (1, 'again')").catch((err: unknown) => err))).toBe(true);
    // A NUL is translated to invalid_request by the store; its cause's SQLSTATE comes along.
    const unstorable = await remote.query('insert into item values (2, $1)', ['a\u0000b']).catch((err: unknown) => err);
    expect(unstorable).toMatchObject({ code: 'invalid_request' });
    expect(isUnstorableText(unstorable)).toBe(true);
    // A failed statement inside a transaction, caught by the caller: the commit is not taken for done.
    const failure = await remote
      .transaction(async (tx) => {
        await tx.query("insert into item values (3, 'three')");
        await tx.query("insert into item values (1, 'clash')").catch(() => {});
      })
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    expect(await labels()).toEqual(['one']);
  });
});

describe('the embedded database in its thread, with a session for another thread', () => {
  let db: Db | undefined;
  afterEach(async () => {
    await db?.close();
    db = undefined;
  });

  function client(port: MessagePort) {
    const remote = relayedDb((call) => port.postMessage(call), { callTimeoutMs: 10_000 });
    port.on('message', (answer: DbAnswer) => remote.answer(answer));
    port.on('close', () => remote.lose(Object.assign(new Error('the channel closed'), { code: 'database_unavailable' })));
    return remote.db;
  }

  it("runs the other thread's statements and transactions beside this thread's, neither inside the other's", async () => {
    db = await createPgliteDb({ thread: { replyTimeoutMs: 5000 } });
    await db.query('create table item (id int primary key, label text not null)');
    const port = openPgliteDbSession(db, 'delivery', 5000)!;
    const remote = client(port);
    try {
      let theirs: Promise<unknown> | undefined;
      await expect(
        db.transaction(async (tx) => {
          await tx.query("insert into item values (1, 'own, rolled back')");
          theirs = remote.query("insert into item values (2, 'theirs')");
          await new Promise((resolve) => setTimeout(resolve, 100));
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await theirs;
      await remote.transaction(async (tx) => {
        await tx.query("insert into item values (3, 'theirs, in a transaction')");
        // This thread's statement waits for the other's transaction, and is not part of it.
        void db!.query("insert into item values (4, 'own')");
        await new Promise((resolve) => setTimeout(resolve, 100));
      });
      await db.query('select 1');
      const { rows } = await db.query<{ label: string }>('select label from item order by id');
      expect(rows.map((r) => r.label)).toEqual(['theirs', 'theirs, in a transaction', 'own']);
    } finally {
      port.close();
    }
  });

  it("fails the other thread's calls at once, waiting or new, when the database's thread dies", async () => {
    db = await createPgliteDb({ thread: { replyTimeoutMs: 5000 } });
    const port = openPgliteDbSession(db, 'delivery', 5000)!;
    const remote = client(port);
    await remote.query('select 1');
    const waiting = remote.query('select pg_sleep(5)').catch((err: unknown) => err);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await terminatePgliteDbThread(db);
    expect(await waiting).toMatchObject({ code: 'database_unavailable' });
    await expect(remote.query('select 1')).rejects.toMatchObject({ code: 'database_unavailable' });
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
