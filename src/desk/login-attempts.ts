import { isIPv6 } from 'node:net';
import { AppError } from '../resilience/errors.js';
import { TtlCache } from '../store/ttl-cache.js';

/**
 * Failed sign-ins counted per typed email *and* client address (per instance). Locking the account
 * itself let anyone lock an agent out with five wrong passwords from anywhere; counted this way,
 * guessing from one address stops after `maxFailures`, while the agent at their own address signs in
 * as usual. The key is the email as typed, whether or not an agent has it, so a lockout tells nothing
 * about which emails exist. (Guessing spread over many addresses is bounded per address by these and
 * by the per-address limit on failures over every email, HANDOVER_LOGIN_MAX_FAILURES_PER_ADDRESS.)
 */
/** One sign-in attempt, counted when it began: how its password check ended. */
export interface LoginAttempt {
  failed(): void;
  succeeded(): void;
  abandoned(): void;
}

export class LoginAttempts {
  private readonly entries: TtlCache<string, { failures: number; lockedUntil: number }>;

  constructor(
    private readonly maxFailures: number,
    private readonly lockSeconds: number,
    private readonly now: () => number = Date.now,
  ) {
    this.entries = new TtlCache(lockSeconds * 1000, 100_000);
  }

  /**
   * Counts an attempt before its password is checked (synchronously: guesses sent in parallel all count)
   * and refuses one past the limit; returns what to call once the password was checked.
   */
  begin(email: string, address: string): LoginAttempt {
    const key = `${email.trim().toLowerCase()}\u0000${address}`;
    const now = this.now();
    const held = this.entries.get(key) ?? { failures: 0, lockedUntil: 0 };
    if (held.lockedUntil > now) throw this.lockedOut(held.lockedUntil - now);
    const attempt = held.failures + 1;
    const entry = { failures: attempt, lockedUntil: 0 };
    if (attempt > this.maxFailures) {
      entry.lockedUntil = now + this.lockSeconds * 1000;
      entry.failures = 0;
    }
    this.entries.set(key, entry);
    if (entry.lockedUntil) throw this.lockedOut(this.lockSeconds * 1000);
    return {
      failed: () => {
        // The last allowed guess, wrong: locked from now, and told so.
        if (attempt < this.maxFailures) return;
        this.entries.set(key, { failures: 0, lockedUntil: this.now() + this.lockSeconds * 1000 });
        throw this.lockedOut(this.lockSeconds * 1000);
      },
      succeeded: () => this.entries.delete(key),
      // The password was never checked (the database failed): the attempt does not count.
      abandoned: () => {
        const current = this.entries.get(key);
        if (current && current.lockedUntil === 0 && current.failures === attempt) this.entries.set(key, { failures: attempt - 1, lockedUntil: 0 });
      },
    };
  }

  private lockedOut(ms: number): AppError {
    const seconds = Math.max(1, Math.ceil(ms / 1000));
    return new AppError('too_many_login_attempts', {
      message: `Too many failed sign-ins for this email from this address; it accepts sign-ins from here again in ${seconds} s.`,
      retryAfterSeconds: seconds,
    });
  }
}

/**
 * The client address as sign-in limits count it: an IPv6 address by its /64, the block one host or one
 * customer line is given (each of its 2^64 addresses would otherwise be a fresh budget of guesses); an
 * IPv4 address (or an IPv4-mapped one) as it is.
 */
export function guessingSource(address: string): string {
  // An IPv4 client seen through IPv6 (IPv4-mapped, in either form, or NAT64) is its own address.
  if (!isIPv6(address) || /^::ffff:/i.test(address) || /^64:ff9b::/i.test(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
