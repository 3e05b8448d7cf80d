import { HOTP, Secret, TOTP } from 'otpauth';
import { describe, expect, it } from 'vitest';
import { matchTotpStep, newTotpSecret, normalizeTotpCode, timeStep, totpUri } from './totp.js';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from './recovery-codes.js';

// RFC 6238 Appendix B: seeds are the ASCII digits repeated to the hash's block-friendly length.
const SEEDS = {
  SHA1: '12345678901234567890',
  SHA256: '12345678901234567890123456789012',
  SHA512: '1234567890123456789012345678901234567890123456789012345678901234',
} as const;
const VECTORS: [number, string, keyof typeof SEEDS, string][] = [
  [59, '0000000000000001', 'SHA1', '94287082'], [59, '0000000000000001', 'SHA256', '46119246'], [59, '0000000000000001', 'SHA512', '90693936'],
  [1111111109, '00000000023523EC', 'SHA1', '07081804'], [1111111109, '00000000023523EC', 'SHA256', '68084774'], [1111111109, '00000000023523EC', 'SHA512', '25091201'],
  [1111111111, '00000000023523ED', 'SHA1', '14050471'], [1111111111, '00000000023523ED', 'SHA256', '67062674'], [1111111111, '00000000023523ED', 'SHA512', '99943326'],
  [1234567890, '000000000273EF07', 'SHA1', '89005924'], [1234567890, '000000000273EF07', 'SHA256', '91819424'], [1234567890, '000000000273EF07', 'SHA512', '93441116'],
  [2000000000, '0000000003F940AA', 'SHA1', '69279037'], [2000000000, '0000000003F940AA', 'SHA256', '90698825'], [2000000000, '0000000003F940AA', 'SHA512', '38618901'],
  [20000000000, '0000000027BC86AA', 'SHA1', '65353130'], [20000000000, '0000000027BC86AA', 'SHA256', '77737706'], [20000000000, '0000000027BC86AA', 'SHA512', '47863826'],
];

describe('TOTP (RFC 6238)', () => {
  it.each(VECTORS)('Appendix B: T=%i (step %s) %s -> %s', (t, stepHex, algorithm, expected) => {
    const secret = Secret.fromLatin1(SEEDS[algorithm]);
    expect(timeStep(t * 1000)).toBe(parseInt(stepHex, 16));
    expect(TOTP.generate({ secret, algorithm, digits: 8, period: 30, timestamp: t * 1000 })).toBe(expected);
    expect(TOTP.validate({ token: expected, secret, algorithm, digits: 8, period: 30, timestamp: t * 1000, window: 0 })).toBe(0);
  });

  it('has all 18 vectors', () => {
    expect(VECTORS).toHaveLength(18);
  });

  it('makes 160-bit base32 seeds and a standard otpauth URI', () => {
    const s = newTotpSecret();
    expect(s).toMatch(/^[A-Z2-7]{32}$/);
    expect(newTotpSecret()).not.toBe(s);
    const uri = totpUri(s, 'ada@example.test');
    expect(uri).toMatch(/^otpauth:\/\/totp\/Floodgate:ada%40example\.test\?/);
    expect(new URL(uri).searchParams.get('issuer')).toBe('Floodgate');
    expect(new URL(uri).searchParams.get('secret')).toBe(s);
  });

  it('accepts ±1 step, refuses ±2, and never a step at or before the last used one', () => {
    const s = newTotpSecret();
    const secret = Secret.fromBase32(s);
    const now = Date.UTC(2026, 0, 15, 12, 0, 10);
    const step = timeStep(now);
    const code = (k: number) => HOTP.generate({ secret, counter: step + k });
    expect(matchTotpStep(s, code(0), now, null)).toBe(step);
    expect(matchTotpStep(s, code(-1), now, null)).toBe(step - 1);
    expect(matchTotpStep(s, code(1), now, null)).toBe(step + 1);
    expect(matchTotpStep(s, code(-2), now, null)).toBeNull();
    expect(matchTotpStep(s, code(2), now, null)).toBeNull();
    expect(matchTotpStep(s, code(0), now, step)).toBeNull(); // replay
    expect(matchTotpStep(s, code(-1), now, step - 1)).toBeNull();
    expect(matchTotpStep(s, code(1), now, step)).toBe(step + 1);
    const window = new Set([code(-1), code(0), code(1)]);
    const wrong = ['000000', '111111', '222222', '333333'].find((c) => !window.has(c))!;
    expect(matchTotpStep(s, wrong, now, null)).toBeNull();
  });

  it('normalises what people type', () => {
    expect(normalizeTotpCode(' 123 456 ')).toBe('123456');
    expect(normalizeTotpCode('123-456')).toBe('123456');
    expect(normalizeTotpCode('12345')).toBeNull();
    expect(normalizeTotpCode('12345a')).toBeNull();
    expect(normalizeTotpCode('1234567')).toBeNull();
  });
});

describe('recovery codes', () => {
  it('are 10 distinct codes of 24 base32 characters (120 bits: ASVS 6.5.2), hashed with the account as salt', () => {
    const codes = newRecoveryCodes();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^(?:[a-z2-7]{4}-){5}[a-z2-7]{4}$/);
    const n = normalizeRecoveryCode(codes[0]!)!;
    expect(n).toHaveLength(24);
    // Codes issued before (16 characters, 80 bits) still work until their owner makes new ones.
    expect(normalizeRecoveryCode('abcd-efgh-ijkl-mnop')).toBe('abcdefghijklmnop');
    expect(normalizeRecoveryCode('abcd-efgh-ijkl-mnop-qrst')).toBeNull();
    expect(normalizeRecoveryCode(codes[0]!.toUpperCase().replace(/-/g, ' '))).toBe(n);
    expect(hashRecoveryCode('u1', n)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRecoveryCode('u1', n)).not.toBe(hashRecoveryCode('u2', n));
    expect(hashRecoveryCode('u1', n)).not.toContain(n);
    expect(normalizeRecoveryCode('abcd-efgh-ijkl-mno1')).toBeNull(); // 1 is not base32
    expect(normalizeRecoveryCode('abcde-fghij')).toBeNull();
  });
});
