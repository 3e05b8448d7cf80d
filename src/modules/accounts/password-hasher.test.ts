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
    // Eight asked at once, two compute: six wait (two of them in the threads' ports, behind the running ones).
    expect(maxWaiting).toBe(6);
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

  it('reads bcrypt and scrypt through the same threads', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    // scrypt PHC of "scrypt password 1": ln=4, r=8, p=1 (computed with node:crypto).
    const { scryptSync, randomBytes } = await import('node:crypto');
    const salt = randomBytes(16);
    const key = scryptSync('scrypt password 1', salt, 32, { N: 16, r: 8, p: 1 });
    const phc = `$scrypt$ln=4,r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
    expect(await h.verify(phc, 'scrypt password 1')).toEqual({ ok: true, needsRehash: true });
    expect(await h.verify(phc, 'scrypt password 2')).toEqual({ ok: false, needsRehash: false });
    await h.close();
  });

  it('fails only the hashes a dead thread held, and carries on with a new one', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const stored = await h.hash('correct horse battery');
    const pool = (h as unknown as { pool: { threads: { worker: { terminate(): Promise<number> } }[] } }).pool;
    const held = h.verify(stored, 'correct horse battery');
    await pool.threads[0]!.worker.terminate();
    expect(await held).toEqual({ ok: false, needsRehash: false });
    expect(await h.verify(stored, 'correct horse battery')).toEqual({ ok: true, needsRehash: false });
    await h.close();
    expect((await h.verify(stored, 'correct horse battery')).ok).toBe(false);
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
