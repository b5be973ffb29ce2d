import { createHash, randomFillSync } from 'node:crypto';

/**
 * Typed, prefixed, time-ordered ids: `ho_01jd3...`. 48 bits of milliseconds then 80 random bits, in
 * Crockford base32 (lower case), so ids sort by creation time and keep B-tree inserts local.
 */
export const idPrefixes = {
  tenant: 'ten',
  apiKey: 'key',
  connector: 'con',
  queue: 'que',
  agent: 'agt',
  handover: 'ho',
  message: 'msg',
  event: 'evt',
  session: 'ses',
  cannedResponse: 'can',
  note: 'note',
  attachment: 'att',
} as const;

export type IdKind = keyof typeof idPrefixes;

const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * Random bytes for ids, drawn from the system's CSPRNG 4 KiB at a time: one call into OpenSSL per ~400
 * ids rather than one per id (a message makes several ids, and each call is a trip into C++ and a
 * fork check; together they showed as ~2% of the service's CPU under load). Node pools the random
 * bytes of `randomUUID` the same way.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** Where the next id's 10 random bytes start in the pool: the pool is refilled once too few are left. */
function randomOffset(): number {
  if (poolOffset + RANDOM_BYTES > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += RANDOM_BYTES;
  return at;
}

const RANDOM_BYTES = 10;
const ALPHABET_CODES = Buffer.from(alphabet, 'latin1');
/** The longest prefix, `_`, 10 characters of time and 16 of randomness. */
const scratch = Buffer.alloc(Math.max(...Object.values(idPrefixes).map((p) => p.length)) + 27);

/**
 * A new id of a kind. Its characters are written into one scratch buffer and read out as one string: a
 * string built a character at a time made a string object per character, about a kilobyte of garbage
 * per id, and a message takes two ids on the thread that answers HTTP.
 */
export function newId(kind: IdKind, now = Date.now()): string {
  const prefix = idPrefixes[kind];
  let at = scratch.write(prefix, 0, 'latin1');
  scratch[at++] = 0x5f; // '_'
  // 48 bits of milliseconds in 10 base32 characters, most significant first.
  let t = now;
  for (let i = at + 9; i >= at; i--) {
    scratch[i] = ALPHABET_CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
  at += 10;
  // 80 random bits → 16 base32 characters, 5 bits at a time.
  const from = randomOffset();
  let acc = 0;
  let bits = 0;
  for (let i = from; i < from + RANDOM_BYTES; i++) {
    acc = (acc << 8) | pool[i]!;
    bits += 8;
    while (bits >= 5) {
      scratch[at++] = ALPHABET_CODES[(acc >> (bits - 5)) & 31]!;
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return scratch.toString('latin1', 0, at);
}

const ownEventId = new RegExp(`^${idPrefixes.event}_[${alphabet}]{26}$`);

/** Whether an id has the exact shape of this service's event ids (`evt_` + 26 base32 characters). */
export function isOwnEventId(id: string): boolean {
  return ownEventId.test(id);
}

/**
 * An id another system chose (a webhook delivery id, a helpdesk's message id), as it is kept in a
 * unique index: itself up to 256 characters (the most the APIs take for a client's id), else its
 * SHA-256 digest. Such ids are only ever compared for equality, and a B-tree entry holds at most
 * about 2.7 KB: a longer id would fail the insert.
 */
export function externalIdKey(id: string): string {
  return id.length <= 256 ? id : `sha256:${createHash('sha256').update(id).digest('hex')}`;
}

/** The time (milliseconds) an id of this service was made at, from its first 10 characters after `_`; null for any other text. */
export function timeOfId(id: string): number | null {
  const underscore = id.indexOf('_');
  if (underscore < 0 || id.length !== underscore + 27) return null;
  let t = 0;
  for (let i = underscore + 1; i <= underscore + 10; i++) {
    const digit = alphabet.indexOf(id[i]!);
    if (digit < 0) return null;
    t = t * 32 + digit;
  }
  return t;
}

/** The lowest id of a kind made at `ms` or later (its random part all zeros): a bound for ids by time. */
export function lowestIdAt(kind: IdKind, ms: number): string {
  let time = '';
  let t = Math.max(0, Math.floor(ms));
  for (let i = 0; i < 10; i++) {
    time = alphabet[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  return `${idPrefixes[kind]}_${time}${'0'.repeat(16)}`;
}
