import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/**
 * Agent passwords: scrypt (N=2^HANDOVER_PASSWORD_SCRYPT_LOG_N, 2^15 by default — about 60 ms here —,
 * r=8, p=1), stored as `scrypt$N$r$p$salt$hash` so the cost can be raised later without breaking old
 * hashes: each is checked with its own.
 */
const r = 8;
const p = 1;
const keyLength = 32;

function derive(password: string, salt: Buffer, n: number, rr: number, pp: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, keyLength, { N: n, r: rr, p: pp, maxmem: 128 * n * rr * 2 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, logN: number): Promise<string> {
  const n = 2 ** logN;
  const salt = randomBytes(16);
  const hash = await derive(password, salt, n, r, p);
  return ['scrypt', n, r, p, salt.toString('base64'), hash.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, rr, pp, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !rr || !pp || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await derive(password, Buffer.from(salt, 'base64'), Number(n), Number(rr), Number(pp));
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * A hash to compare against when the email is unknown, of the cost new passwords get, so timing does not
 * tell which emails exist.
 */
export function decoyHash(logN: number): string {
  return `scrypt$${2 ** logN}$${r}$${p}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
}
