import { describe, expect, it } from 'vitest';
import { guessingSource, LoginAttempts } from '../../src/desk/login-attempts.js';

describe('sign-in limits', () => {
  it('count an IPv6 client by its /64, an IPv4 one by its address', () => {
    expect(guessingSource('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(guessingSource('2001:db8:1:2:ffff::9')).toBe('2001:db8:1:2::/64');
    expect(guessingSource('2001:0db8:0000:0002::9')).toBe('2001:db8:0:2::/64');
    expect(guessingSource('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(guessingSource('203.0.113.7')).toBe('203.0.113.7');
    expect(guessingSource('::ffff:203.0.113.7')).toBe('::ffff:203.0.113.7');
    // IPv4 clients seen through IPv6 in other forms are not all one /64.
    expect(guessingSource('::ffff:cb00:7107')).toBe('::ffff:cb00:7107');
    expect(guessingSource('64:ff9b::203.0.113.7')).toBe('64:ff9b::203.0.113.7');
  });

  it('lock out guesses from the addresses of one /64 together', () => {
    const attempts = new LoginAttempts(3, 60);
    // Three wrong guesses, each from another address of the block: the third locks the block.
    for (const host of ['1', '2']) expect(() => attempts.begin('ada@example.com', guessingSource(`2001:db8:1:2::${host}`)).failed()).not.toThrow();
    expect(() => attempts.begin('ada@example.com', guessingSource('2001:db8:1:2::3')).failed()).toThrow(/Too many failed sign-ins/);
    expect(() => attempts.begin('ada@example.com', guessingSource('2001:db8:1:2::4'))).toThrow(/Too many failed sign-ins/);
    // Another customer's block is not locked out.
    expect(() => attempts.begin('ada@example.com', guessingSource('2001:db8:9:9::1'))).not.toThrow();
  });
});
