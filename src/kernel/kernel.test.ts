import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mintToken, parseToken, randomBytesPooled, SecretBox, secretMatches, constantTimeEqual } from './crypto.js';
import { newId } from './ids.js';
import { isPlausibleEmail, maskEmail, normalizeEmail } from './email.js';

describe('kernel', () => {
  it('mints id.secret tokens with a 256-bit secret and stores only its hash', () => {
    const t = mintToken();
    expect(t.token).toMatch(/^[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    const p = parseToken(t.token)!;
    expect(p.id).toBe(t.id);
    expect(secretMatches(p.secret, t.secretHash)).toBe(true);
    expect(secretMatches(p.secret.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')), t.secretHash)).toBe(false);
    expect(t.secretHash).not.toContain(p.secret);
    fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => { const r = parseToken(s); return r === null || s === `${r.id}.${r.secret}`; }));
  });

  it('seals and opens, binding ciphertexts to their row', () => {
    const box = new SecretBox(Buffer.alloc(32, 1));
    const sealed = box.seal('a secret link', 'row-1');
    expect(sealed).not.toContain('secret');
    expect(box.open(sealed, 'row-1')).toBe('a secret link');
    expect(box.open(sealed, 'row-2')).toBeNull();
    expect(new SecretBox(Buffer.alloc(32, 2)).open(sealed, 'row-1')).toBeNull();
    expect(box.open('v1.garbage', 'row-1')).toBeNull();
  });

  it('makes ids that sort in creation order even when the clock stands still', () => {
    const ids = Array.from({ length: 1000 }, () => newId(1_700_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1000);
    expect(newId(1_700_000_000_001) > ids[999]!).toBe(true);
  });

  it('encodes the time like ULID and 80 random bits, in its own 32-letter alphabet', () => {
    // Reference: the 48-bit time in base 32 with BigInt, as the ULID spec writes it.
    const ulidTime = (ms: number) => {
      let out = '';
      for (let t = BigInt(ms), i = 0; i < 10; i++, t >>= 5n) out = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[Number(t & 31n)] + out;
      return out;
    };
    const ms = 1_700_000_000_123;
    const ref = ulidTime(ms);
    const ids = Array.from({ length: 2000 }, (_, i) => newId(ms + 1 + i));
    for (const id of ids) expect(id).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(newId(ms).slice(0, 10)).toBe(ids[ids.length - 1]!.slice(0, 10)); // the clock went back: stays on the last ms
    const later = newId(ms + 2 ** 40);
    const laterRef = ulidTime(ms + 2 ** 40);
    expect(later.slice(0, 10)).toBe(laterRef);
    expect(ref < laterRef).toBe(true);
    // Fresh random parts look random: every letter appears in every position but the first.
    for (let pos = 11; pos < 26; pos++) expect(new Set(ids.map((x) => x[pos])).size).toBe(32);
    expect(new Set(ids.map((x) => x[10])).size).toBe(16); // top bit kept clear for increments
  });

  it('hands out pooled CSPRNG bytes once each', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(randomBytesPooled(16).toString('hex'));
    expect(seen.size).toBe(5000);
    expect(randomBytesPooled(300).length).toBe(300);
  });

  it('normalises and masks emails', () => {
    expect(normalizeEmail('  Ada@Example.TEST ')).toBe('ada@example.test');
    expect(normalizeEmail('Ame\u0301lie@example.test')).toBe('am\u00e9lie@example.test');
    expect(isPlausibleEmail('a@b.c')).toBe(true);
    expect(isPlausibleEmail('a@b')).toBe(false);
    expect(isPlausibleEmail('a b@c.d')).toBe(false);
    expect(isPlausibleEmail('x'.repeat(65) + '@b.c')).toBe(false);
    expect(maskEmail('ada@example.test')).toBe('a***@example.test');
    expect(constantTimeEqual('a', 'a')).toBe(true);
    expect(constantTimeEqual('a', 'ab')).toBe(false);
  });
});
