/**
 * TOTP (RFC 6238) over otpauth's HOTP. Invariants:
 * - seeds are 160 bits from the CSPRNG (RFC 4226 §4 recommends 160);
 * - a code is compared in constant time against every candidate step, without early exit;
 * - only steps after the last accepted one are candidates, so a code works once (replay refused).
 */
import { randomBytes } from 'node:crypto';
import { HOTP, Secret, TOTP as OtpTotp } from 'otpauth';
import { timingSafeEqual } from 'node:crypto';
import { TOTP, TOTP_DRIFT_STEPS } from './model.js';

export function newTotpSecret(): string {
  return new Secret({ buffer: new Uint8Array(randomBytes(TOTP.secretBytes)).buffer }).base32;
}

/** The otpauth:// URI apps scan: otpauth://totp/Floodgate:<email>?issuer=Floodgate&secret=... */
export function totpUri(secretBase32: string, email: string): string {
  return new OtpTotp({
    issuer: TOTP.issuer, label: email, secret: Secret.fromBase32(secretBase32),
    algorithm: TOTP.algorithm, digits: TOTP.digits, period: TOTP.periodS,
  }).toString();
}

export function timeStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP.periodS);
}

/** Strip what people type around a code ("123 456", "123-456"). */
export function normalizeTotpCode(raw: string): string | null {
  const s = raw.replace(/[\s-]/g, '');
  return s.length === TOTP.digits && /^\d+$/.test(s) ? s : null;
}

/**
 * The time step `code` belongs to, within ±TOTP_DRIFT_STEPS of now and after `lastUsedStep`,
 * or null. Every candidate is computed and compared, so the answer's timing does not tell
 * which step matched.
 */
export function matchTotpStep(secretBase32: string, code: string, nowMs: number, lastUsedStep: number | null): number | null {
  const secret = Secret.fromBase32(secretBase32);
  const current = timeStep(nowMs);
  const given = Buffer.from(code.padEnd(TOTP.digits, 'x').slice(0, TOTP.digits));
  let matched: number | null = null;
  for (let step = current - TOTP_DRIFT_STEPS; step <= current + TOTP_DRIFT_STEPS; step++) {
    const expected = Buffer.from(HOTP.generate({ secret, algorithm: TOTP.algorithm, digits: TOTP.digits, counter: step }));
    const equal = timingSafeEqual(given, expected);
    // Replay: a step at or before the last accepted one never matches again.
    if (equal && (lastUsedStep === null || step > lastUsedStep) && matched === null) matched = step;
  }
  return matched;
}
