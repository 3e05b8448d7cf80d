import { createChallenge, solveChallenge, verifySolution } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { describe, expect, it } from 'vitest';
import { ManualClock, MINUTE } from '../../kernel/clock.js';
import { CHALLENGE_TTL_MS, ChallengeService } from './challenge.js';
import { MemoryGuardStore } from './store.js';

function service() {
  const clock = new ManualClock(1_800_000_000_000);
  return { clock, challenges: new ChallengeService(Buffer.alloc(32, 7), clock, new MemoryGuardStore(clock)) };
}

async function solved(c: Awaited<ReturnType<ChallengeService['create']>>): Promise<string> {
  const solution = await solveChallenge({ challenge: c, deriveKey });
  expect(solution).not.toBeNull();
  return Buffer.from(JSON.stringify({ challenge: c, solution })).toString('base64');
}

describe('proof-of-work challenges', () => {
  it('makes the parameters altcha-lib makes: same keys, same order, same formats', async () => {
    const { challenges } = service();
    const ours = await challenges.create('reset', 1);
    const lib = await createChallenge({ algorithm: 'PBKDF2/SHA-256', cost: 100, keyPrefix: '000', deriveKey, data: { exp: 1, flow: 'reset' } });
    expect(Object.keys(ours.parameters)).toEqual(Object.keys(lib.parameters));
    expect(ours.parameters.nonce).toMatch(/^[0-9a-f]{32}$/);
    expect(ours.parameters.salt).toMatch(/^[0-9a-f]{32}$/);
    expect(ours.parameters.nonce).not.toBe(ours.parameters.salt);
    expect(ours.signature).toMatch(/^[0-9a-f]{64}$/);
  });

  it('never repeats a nonce or a salt', async () => {
    const { challenges } = service();
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const c = await challenges.create('reset', 1);
      seen.add(c.parameters.nonce);
      seen.add(c.parameters.salt);
    }
    expect(seen.size).toBe(2000);
  });

  it('is signed the way altcha-lib verifies, and each solution is good once, for its flow, until it expires', async () => {
    const { challenges, clock } = service();
    const c = await challenges.create('reset', 1);
    const payload = await solved(c);
    const { solution } = JSON.parse(Buffer.from(payload, 'base64').toString('utf8'));
    // The library itself accepts our signature.
    const key = (challenges as unknown as { signKey: string }).signKey;
    expect((await verifySolution({ challenge: c, solution, deriveKey, hmacSignatureSecret: key })).verified).toBe(true);
    expect(await challenges.verify('signup', payload)).toBe('wrong_flow');
    expect(await challenges.verify('reset', payload)).toBe('ok');
    expect(await challenges.verify('reset', payload)).toBe('replayed');

    const late = await challenges.create('reset', 1);
    const latePayload = await solved(late);
    clock.advance(CHALLENGE_TTL_MS + MINUTE);
    expect(await challenges.verify('reset', latePayload)).toBe('expired');
  });

  it('hands out ready challenges only while fresh: each lives its TTL less at most a second', async () => {
    const { challenges, clock } = service();
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const c = await challenges.create('reset', 1);
      const exp = c.parameters.data!.exp as number;
      expect(exp).toBeLessThanOrEqual(clock.now() + CHALLENGE_TTL_MS);
      expect(exp).toBeGreaterThan(clock.now() + CHALLENGE_TTL_MS - 1_000);
      seen.add(c.signature!);
      clock.advance(7);
    }
    expect(seen.size).toBe(500);
    // After a quiet spell the first challenge is made on the spot, with the full TTL; a new cost
    // (the pressure rose) is never answered from the old cost's batch.
    clock.advance(5_000);
    expect((await challenges.create('reset', 1)).parameters.data!.exp).toBe(clock.now() + CHALLENGE_TTL_MS);
    expect((await challenges.create('reset', 3)).parameters.cost).toBe(300);
    expect((await challenges.create('signup', 1)).parameters.data!.flow).toBe('signup');
  });

  it('refuses a tampered challenge and a lowered cost', async () => {
    const { challenges } = service();
    const c = await challenges.create('reset', 4);
    expect(c.parameters.cost).toBe(400);
    const cheaper = { ...c, parameters: { ...c.parameters, cost: 1 } };
    expect(await challenges.verify('reset', await solved(cheaper))).toBe('invalid');
    expect(await challenges.verify('reset', 'not base64 json')).toBe('malformed');
  });
});
