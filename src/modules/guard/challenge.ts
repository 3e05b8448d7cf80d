/**
 * Proof-of-work challenges (ALTCHA, self-hosted, no third party), made by altcha-lib's
 * createChallenge. The client must find a counter whose PBKDF2-SHA-256 key starts with three
 * zero hex digits (about 4,096 tries on average); the PBKDF2 cost per try grows with the guard's
 * pressure. Making a challenge costs us one random nonce and one HMAC (no key derivation), so
 * answering a flood with challenges stays cheap; verifying re-derives one key. Verification
 * checks the HMAC signature, the flow the challenge was made for, its expiry on the injected
 * clock, and that it was not used before (single use, in the shared store).
 */
import { createHmac } from 'node:crypto';
import { randomBytesPooled } from '../../kernel/crypto.js';
import { verifySolution, type Challenge, type Solution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { MINUTE, type Clock } from '../../kernel/clock.js';
import type { GuardStore } from './store.js';

export const CHALLENGE_TTL_MS = 10 * MINUTE;
/** Zero hex digits the derived key must start with: 16^3 = 4,096 expected tries. */
const KEY_PREFIX = '000';
/** PBKDF2 iterations per try at pressure 1 (about half a second in a browser), up to 16x under attack. */
const BASE_COST = 100;
const MAX_FACTOR = 16;
/** How long a batch of ready challenges is handed out, and the largest batch (see `create`). */
const POOL_FRESH_MS = 1_000;
const POOL_MAX = 64;

export interface ChallengePayload {
  challenge: Challenge;
  solution: Solution;
}

export type VerifyOutcome = 'ok' | 'malformed' | 'invalid' | 'expired' | 'wrong_flow' | 'replayed';

export class ChallengeService {
  private readonly signKey: string;
  /** Ready challenges per flow and cost: a handful of keys (four flows, sixteen costs at most). */
  private readonly pools = new Map<string, { made: number; items: Challenge[]; batch: number }>();
  constructor(
    secretKey: Buffer,
    private readonly clock: Clock,
    private readonly store: GuardStore,
  ) {
    // Purpose-bound keys derived from the service key: a leaked challenge key reveals nothing else.
    this.signKey = createHmac('sha256', secretKey).update('floodgate altcha signature').digest('hex');
  }

  /** PBKDF2 iterations per try for a pressure: the work grows with the attack. */
  costFor(pressure: number): number {
    return Math.round(BASE_COST * Math.min(MAX_FACTOR, Math.max(1, pressure)));
  }

  /**
   * A fresh challenge for `flow`. Under a flood every answer carries one, so they are made in
   * batches: making one is a few microseconds in a warm loop but several times that alone in the
   * middle of a request (a cold HMAC context, cold code), as the flood profile showed. A batch is
   * handed out for at most POOL_FRESH_MS, so every challenge lives its full TTL less at most that;
   * its size doubles while demand empties batches while they are fresh, and falls back to one
   * when they go stale (a trickle of challenged requests wastes nothing). Each challenge is
   * handed out once; its random nonce and salt make it unique.
   */
  async create(flow: string, pressure: number): Promise<Challenge> {
    const cost = this.costFor(pressure);
    const now = this.clock.now();
    const key = `${flow}:${cost}`;
    let pool = this.pools.get(key);
    if (!pool) this.pools.set(key, (pool = { made: now, items: [], batch: 1 }));
    const fresh = now >= pool.made && now - pool.made < POOL_FRESH_MS;
    if (!fresh || pool.items.length === 0) {
      // Emptied while fresh: demand is high, make more at once. Stale: demand is low, make one.
      pool.batch = fresh ? Math.min(POOL_MAX, pool.batch * 2) : 1;
      pool.made = now;
      pool.items.length = 0;
      for (let i = 0; i < pool.batch; i++) pool.items.push(this.make(flow, cost, now));
    }
    return pool.items.pop()!;
  }

  private make(flow: string, cost: number, now: number): Challenge {
    // The parameters altcha-lib's createChallenge makes (random 16-byte nonce and salt, keys in
    // sorted order, as its canonical JSON requires), built here, and signed with node:crypto's
    // HMAC, which is what the library's signing computes (HMAC-SHA-256 of the parameters' JSON
    // under the secret's UTF-8 bytes). Why by hand: a flood is answered with a challenge per
    // request, and the library's generic path (WebCrypto random values, per-byte hex, recursive
    // key sorting, WebCrypto HMAC) was most of the cost of a 428. A test checks these parameters
    // against createChallenge's and solves and verifies them with the library.
    const random = randomBytesPooled(32);
    const parameters: Challenge['parameters'] = {
      algorithm: 'PBKDF2/SHA-256',
      cost,
      data: { exp: now + CHALLENGE_TTL_MS, flow },
      keyLength: 32,
      keyPrefix: KEY_PREFIX,
      nonce: random.toString('hex', 0, 16),
      salt: random.toString('hex', 16, 32),
    };
    return { parameters, signature: createHmac('sha256', this.signKey).update(JSON.stringify(parameters)).digest('hex') };
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
      // The cost is ours, signed: a client cannot lower it (the signature would not match).
      if (typeof p.challenge.parameters.cost !== 'number' || p.challenge.parameters.cost > BASE_COST * MAX_FACTOR) return 'invalid';
      const r = await verifySolution({ challenge: p.challenge, solution: p.solution, deriveKey, hmacSignatureSecret: this.signKey });
      verified = r.verified;
    } catch {
      return 'invalid';
    }
    if (!verified) return 'invalid';
    // The data is covered by the signature, so these values are ours.
    const data = p.challenge.parameters.data ?? {};
    if (data.flow !== flow) return 'wrong_flow';
    if (typeof data.exp !== 'number' || data.exp <= this.clock.now()) return 'expired';
    // Remembered exactly as long as the challenge lives: after `exp` it is refused as expired anyway.
    if (!(await this.store.once(`altcha:${p.challenge.signature}`, Math.ceil(data.exp - this.clock.now())))) return 'replayed';
    return 'ok';
  }
}
