/**
 * Proof-of-work challenges (ALTCHA, self-hosted, no third party). A challenge is made by
 * altcha-lib's createChallenge in deterministic mode: the server picks a random counter and the
 * client must find it by brute force (PBKDF2-SHA-256 per try), so the expected cost is half the
 * counter range; the range grows with the guard's pressure. Verification checks the HMAC
 * signatures (no re-derivation: cheap for us), the flow the challenge was made for, its expiry
 * on the injected clock, and that it was not used before (single use, shared store).
 */
import { createHmac } from 'node:crypto';
import { createChallenge, randomInt, verifySolution, type Challenge, type Solution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { GuardStore } from './store.js';

export const CHALLENGE_TTL_MS = 10 * MINUTE;
/** PBKDF2 iterations per try; with the counter range this sets the expected work. */
const COST = 1_000;
const BASE_RANGE = 2_000;
const MAX_RANGE = 50_000;

export interface ChallengePayload {
  challenge: Challenge;
  solution: Solution;
}

export type VerifyOutcome = 'ok' | 'malformed' | 'invalid' | 'expired' | 'wrong_flow' | 'replayed';

export class ChallengeService {
  private readonly signKey: string;
  private readonly keySignKey: string;
  constructor(
    secretKey: Buffer,
    private readonly clock: Clock,
    private readonly store: GuardStore,
  ) {
    // Purpose-bound keys derived from the service key: a leaked challenge key reveals nothing else.
    this.signKey = createHmac('sha256', secretKey).update('floodgate altcha signature').digest('hex');
    this.keySignKey = createHmac('sha256', secretKey).update('floodgate altcha key signature').digest('hex');
  }

  /** Counter range for a pressure: about 1 s of a browser's work at pressure 1, more under attack. */
  rangeFor(pressure: number): number {
    return Math.min(MAX_RANGE, Math.round(BASE_RANGE * Math.max(1, pressure)));
  }

  async create(flow: string, pressure: number): Promise<Challenge> {
    const range = this.rangeFor(pressure);
    return createChallenge({
      algorithm: 'PBKDF2/SHA-256',
      cost: COST,
      counter: randomInt(Math.floor(range / 2), range),
      deriveKey,
      data: { flow, exp: this.clock.now() + CHALLENGE_TTL_MS },
      hmacSignatureSecret: this.signKey,
      hmacKeySignatureSecret: this.keySignKey,
    });
  }

  /** Accepts the ALTCHA widget's base64 payload or the object itself. */
  parse(input: unknown): ChallengePayload | null {
    let v: unknown = input;
    if (typeof v === 'string') {
      if (v.length > 8192) return null;
      try {
        v = JSON.parse(Buffer.from(v, 'base64').toString('utf8'));
      } catch {
        return null;
      }
    }
    if (typeof v !== 'object' || v === null) return null;
    const p = v as Partial<ChallengePayload>;
    const c = p.challenge;
    const s = p.solution;
    if (!c || typeof c !== 'object' || typeof c.signature !== 'string' || !c.parameters || typeof c.parameters !== 'object') return null;
    if (!s || typeof s !== 'object' || typeof s.counter !== 'number' || typeof s.derivedKey !== 'string') return null;
    return { challenge: c, solution: s };
  }

  async verify(flow: string, input: unknown): Promise<VerifyOutcome> {
    const p = this.parse(input);
    if (!p) return 'malformed';
    let verified = false;
    try {
      const r = await verifySolution({ challenge: p.challenge, solution: p.solution, deriveKey, hmacSignatureSecret: this.signKey, hmacKeySignatureSecret: this.keySignKey });
      verified = r.verified;
    } catch {
      return 'invalid';
    }
    if (!verified) return 'invalid';
    // The data is covered by the signature, so these values are ours.
    const data = p.challenge.parameters.data ?? {};
    if (data.flow !== flow) return 'wrong_flow';
    if (typeof data.exp !== 'number' || data.exp <= this.clock.now()) return 'expired';
    if (!(await this.store.once(`altcha:${p.challenge.signature}`, CHALLENGE_TTL_MS))) return 'replayed';
    return 'ok';
  }
}
