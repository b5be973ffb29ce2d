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

function randomSlice(size: number): Buffer {
  if (poolOffset + size > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const slice = pool.subarray(poolOffset, poolOffset + size);
  poolOffset += size;
  return slice;
}

export function newId(kind: IdKind, now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = alphabet[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomSlice(10);
  let random = '';
  // 80 bits → 16 base32 characters, 5 bits at a time.
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      random += alphabet[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return `${idPrefixes[kind]}_${time}${random}`;
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
