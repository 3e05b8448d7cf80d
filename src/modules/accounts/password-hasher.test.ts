import { describe, expect, it } from 'vitest';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { PasswordHasher } from './password-hasher.js';

// Cheap parameters: these tests are about the queue, not the hash's strength.
const CHEAP = { memoryCost: 1024, timeCost: 1, parallelism: 1 };

/** Run `work`, sampling the hasher's load every event-loop turn until it settles. */
async function sampled<T>(h: PasswordHasher, work: () => Promise<T>): Promise<{ result: T; maxRunning: number; maxWaiting: number }> {
  let maxRunning = 0, maxWaiting = 0, done = false;
  const sample = () => { const l = h.load; maxRunning = Math.max(maxRunning, l.running); maxWaiting = Math.max(maxWaiting, l.waiting); };
  const poll = (async () => { while (!done) { sample(); await new Promise((r) => setImmediate(r)); } })();
  const started = work();
  sample();
  const result = await started;
  done = true;
  await poll;
  return { result, maxRunning, maxWaiting };
}

describe('PasswordHasher', () => {
  it('computes at most `concurrency` hashes at once and queues the rest, with every answer right', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 2 });
    const stored = await h.hash('correct horse battery');
    const legacy = await bcryptHash('legacy bcrypt pass', 4);
    const { result, maxRunning, maxWaiting } = await sampled(h, () => Promise.all([
      ...Array.from({ length: 5 }, (_, i) => h.verify(stored, i % 2 ? 'correct horse battery' : 'wrong horse battery')),
      h.verify(legacy, 'legacy bcrypt pass'),
      h.verifyDummy('someone else'),
      h.hash('a new password here'),
    ]));
    expect(maxRunning).toBe(2);
    // Eight asked at once, two run: six wait (the dummy joins the queue once its own hash is ready).
    expect(maxWaiting).toBeGreaterThanOrEqual(5);
    expect(result.slice(0, 5).map((r) => (r as { ok: boolean }).ok)).toEqual([false, true, false, true, false]);
    expect(result[5]).toEqual({ ok: true, needsRehash: true });
    expect(result[6]).toBe(false);
    expect(await h.verify(result[7] as string, 'a new password here')).toEqual({ ok: true, needsRehash: false });
    expect(h.load).toEqual({ running: 0, waiting: 0 });
  });

  it('serves the queue in arrival order, unknown accounts in the same queue as known ones', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const stored = await h.hash('correct horse battery');
    await h.verifyDummy('warm up the dummy hash');
    const order: string[] = [];
    await Promise.all([
      h.verify(stored, 'correct horse battery').then(() => order.push('known 1')),
      h.verifyDummy('nobody').then(() => order.push('unknown')),
      h.verify(stored, 'wrong').then(() => order.push('known 2')),
    ]);
    expect(order).toEqual(['known 1', 'unknown', 'known 2']);
  });

  it('frees its turn when a hash fails, so one bad input cannot stall the queue', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const stored = await h.hash('correct horse battery');
    const corrupt = stored.slice(0, -4) + '!!!!';
    const r = await Promise.all([h.verify(corrupt, 'correct horse battery'), h.verify(stored, 'correct horse battery')]);
    expect(r.map((x) => x.ok)).toEqual([false, true]);
    expect(h.load).toEqual({ running: 0, waiting: 0 });
  });
});
