/**
 * PostgreSQL error codes (SQLSTATE) the service branches on, named once. Both adapters pass these
 * errors through unchanged (see translatePgError), with `code` set as the server sent it.
 */
export const PG_ERROR = {
  uniqueViolation: '23505',
  foreignKeyViolation: '23503',
  deadlockDetected: '40P01',
  serializationFailure: '40001',
  inFailedTransaction: '25P02',
  /** Text with a character the database cannot hold (a NUL, `\u0000`): in a text column, and in jsonb. */
  characterNotInRepertoire: '22021',
  untranslatableCharacter: '22P05',
} as const;

/** The misuses of a transaction both adapters refuse, worded once. */
export const TX_MISUSE = {
  ended: 'This transaction has ended: use its tx only inside the transaction callback.',
  commitRolledBack: 'COMMIT rolled back: a statement in this transaction failed and the error was caught; use a savepoint to continue after an error.',
} as const;

/** The transaction hit an error earlier and takes no more statements until it is rolled back. */
export function isInFailedTransaction(err: unknown): boolean {
  return sqlState(err) === PG_ERROR.inFailedTransaction;
}

function sqlState(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null ? ((err as { code?: unknown }).code as string | undefined) : undefined;
}

/**
 * The database refused a value a client sent (text holding a NUL): that caller's own fault, whether the
 * error is the server's or the adapters' answer made of it (translatePgError, whose cause it is).
 */
export function isUnstorableText(err: unknown): boolean {
  const unstorable = (code: string | undefined) => code === PG_ERROR.characterNotInRepertoire || code === PG_ERROR.untranslatableCharacter;
  return unstorable(sqlState(err)) || (err instanceof Error && unstorable(sqlState(err.cause)));
}

export function isUniqueViolation(err: unknown): boolean {
  return sqlState(err) === PG_ERROR.uniqueViolation;
}

export function isForeignKeyViolation(err: unknown): boolean {
  return sqlState(err) === PG_ERROR.foreignKeyViolation;
}

/** A deadlock or serialisation failure: the statement did nothing and may simply run again. */
export function isRetryableConflict(err: unknown): boolean {
  const code = sqlState(err);
  return code === PG_ERROR.deadlockDetected || code === PG_ERROR.serializationFailure;
}
