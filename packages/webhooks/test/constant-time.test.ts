import { describe, expect, it } from 'vitest';
import { constantTimeEqual, timingSafeEqualBytes } from '../src/index.js';

describe('constantTimeEqual', () => {
  it('compares strings as UTF-8 bytes: equal character length, different byte length is unequal, never a throw', () => {
    const secret = 'sk_sc_' + 'a'.repeat(40);
    const sameChars = 'sk_sc_' + 'a'.repeat(39) + 'é'; // one character more in bytes
    expect(sameChars.length).toBe(secret.length);
    expect(new TextEncoder().encode(sameChars).length).toBe(secret.length + 1);
    expect(constantTimeEqual(sameChars, secret)).toBe(false);
    expect(constantTimeEqual(secret, secret)).toBe(true);
    expect(constantTimeEqual('é', 'é')).toBe(true);
    expect(constantTimeEqual('e\u0301', 'é')).toBe(false); // no normalisation: bytes are bytes
  });

  it('handles empty and very different lengths, strings and bytes alike', () => {
    expect(constantTimeEqual('', '')).toBe(true);
    expect(constantTimeEqual('', 'x')).toBe(false);
    expect(constantTimeEqual('x', '')).toBe(false);
    expect(constantTimeEqual('x'.repeat(1000), 'x')).toBe(false);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), new Uint8Array([1, 2, 3]))).toBe(true);
    expect(constantTimeEqual(new Uint8Array([1, 2, 3]), '\u0001\u0002\u0003')).toBe(true);
    expect(timingSafeEqualBytes(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
  });

  it('a prefix of the expected value is not equal (no early exit on the shorter input)', () => {
    expect(constantTimeEqual('abc', 'abcd')).toBe(false);
    expect(constantTimeEqual('abcd', 'abc')).toBe(false);
    expect(constantTimeEqual('abcabc', 'abc')).toBe(false);
  });
});
