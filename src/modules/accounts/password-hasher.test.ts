import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hash as bcryptHash, verifySync as bcryptVerify } from '@node-rs/bcrypt';
import { hash as argonHash, verifySync as argonVerify } from '@node-rs/argon2';
import { watchHashJobs } from '../../../test/helpers/hash-jobs.js';
import { costClass, DUMMY_PASSWORD, hashProblem, MAX_LEGACY_CLASSES, PasswordHasher } from './password-hasher.js';

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
    expect(h.admit(legacy)).toBeNull(); // a bcrypt cost=4 class in use: every verification also runs one
    await h.verifyDummy('make the dummies first');
    const { result, maxRunning, maxWaiting } = await sampled(h, () => Promise.all([
      ...Array.from({ length: 5 }, (_, i) => h.verify(stored, i % 2 ? 'correct horse battery' : 'wrong horse battery')),
      h.verify(legacy, 'legacy bcrypt pass'),
      h.verifyDummy('someone else'),
      h.hash('a new password here'),
    ]));
    expect(maxRunning).toBe(2);
    // Seven verifications of two hashes each (argon2id and bcrypt) and one new hash: fifteen asked
    // at once, two compute, thirteen wait (two of them in the threads' ports, behind the running ones).
    expect(maxWaiting).toBe(13);
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

  it('sends the same hash jobs for every kind of account: the stored hash in its class\'s place, a dummy of the same class in the others', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 2 });
    const jobs = watchHashJobs(h);
    const argon2id = await h.hash('argon2id password');
    const argon2i = await argonHash('argon2i password', { algorithm: 1, memoryCost: 2048, timeCost: 1, parallelism: 1 });
    const bcrypt = await bcryptHash('bcrypt password', 4);
    const scrypt = scryptPhc('scrypt password', 4, 8, 1);
    for (const stored of [argon2i, bcrypt, scrypt]) expect(h.admit(stored)).toBeNull();
    await h.verifyDummy('make the dummies first');
    jobs.take();
    const expected = ['argon2.verify argon2i m=2048,t=1,p=1', 'argon2.verify argon2id m=1024,t=1,p=1', 'bcrypt.verify cost=4', 'scrypt ln=4,r=8,p=1'];
    const paths: [string, () => Promise<unknown>][] = [
      ['unknown account', () => h.verifyDummy('any password')],
      ['argon2id, wrong', () => h.verify(argon2id, 'wrong')], ['argon2id, right', () => h.verify(argon2id, 'argon2id password')],
      ['argon2i, wrong', () => h.verify(argon2i, 'wrong')], ['argon2i, right', () => h.verify(argon2i, 'argon2i password')],
      ['bcrypt, wrong', () => h.verify(bcrypt, 'wrong')], ['bcrypt, right', () => h.verify(bcrypt, 'bcrypt password')],
      ['scrypt, wrong', () => h.verify(scrypt, 'wrong')], ['scrypt, right', () => h.verify(scrypt, 'scrypt password')],
      ['password over 1024 bytes', () => h.verify(bcrypt, 'x'.repeat(1025))],
      ['hash beyond the bounds', () => h.verify(bcrypt.replace(/^\$2[aby]\$04\$/, '$2b$31$'), 'bcrypt password')],
      ['unsupported hash', () => h.verify('$md5$abc$def', 'any password')],
    ];
    const answers: unknown[] = [];
    for (const [name, run] of paths) {
      answers.push(await run());
      expect({ name, jobs: jobs.take() }).toEqual({ name, jobs: expected });
    }
    expect(answers.map((a) => (typeof a === 'object' ? (a as { ok: boolean }).ok : a)))
      .toEqual([false, false, true, false, true, false, true, false, true, false, false, false]);
    await h.close();
  });

  it('makes each dummy a real hash of DUMMY_PASSWORD with its class\'s parameters', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 2 });
    const jobs = watchHashJobs(h);
    const legacy = [await argonHash('x', { algorithm: 0, memoryCost: 2048, timeCost: 2, parallelism: 2 }), await bcryptHash('x', 5), scryptPhc('x', 5, 4, 2)];
    for (const stored of legacy) expect(h.admit(stored)).toBeNull();
    await h.verifyDummy('make the dummies first');
    jobs.take();
    await h.verifyDummy('wrong');
    const dummies = jobs.jobs;
    expect(dummies.map((j) => j.what).sort())
      .toEqual(['argon2.verify argon2d m=2048,t=2,p=2', 'argon2.verify argon2id m=1024,t=1,p=1', 'bcrypt.verify cost=5', 'scrypt ln=5,r=4,p=2']);
    // A dummy its library would refuse early would cost nothing: each is a well-formed hash that DUMMY_PASSWORD matches.
    for (const { job } of dummies) {
      if (job.op === 'argon2.verify') expect(argonVerify(job.stored, DUMMY_PASSWORD)).toBe(true);
      if (job.op === 'bcrypt.verify') expect(bcryptVerify(DUMMY_PASSWORD, job.stored)).toBe(true);
    }
    await h.close();
  });

  it('makes a dummy again when the thread making it dies (a dummy that cost nothing would undo the equal work)', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const jobs = watchHashJobs(h);
    expect(h.admit(await bcryptHash('x', 4).then((b) => b.replace(/^\$2[aby]\$04\$/, '$2b$08$')))).toBeNull();
    // The thread is still starting when it dies: it held both dummies (argon2id and bcrypt cost=8).
    const pool = (h as unknown as { pool: { threads: { worker: { terminate(): Promise<number> } }[] } }).pool;
    await pool.threads[0]!.worker.terminate();
    await h.verifyDummy('wrong');
    const sent = jobs.take();
    expect(sent.filter((j) => j === 'bcrypt.hash cost=8')).toEqual(['bcrypt.hash cost=8', 'bcrypt.hash cost=8']);
    expect(sent.filter((j) => j.includes('verify'))).toEqual(['argon2.verify argon2id m=1024,t=1,p=1', 'bcrypt.verify cost=8']);
    await h.close();
  });

  it('refuses stored costs beyond the bounds and takes what common systems write', () => {
    const b4 = '$2b$04$' + 'a'.repeat(53);
    const refused = {
      bcrypt31: b4.replace('$04$', '$31$'), bcrypt13: b4.replace('$04$', '$13$'), bcrypt3: b4.replace('$04$', '$03$'),
      scryptN18: scryptShape(18, 1, 1), scryptMem: scryptShape(17, 16, 1), scryptWork: scryptShape(14, 8, 16),
      argonMem: argonShape('argon2id', 262144, 1, 1), argonWork: argonShape('argon2id', 131072, 5, 1), argonP: argonShape('argon2id', 65536, 1, 17),
    };
    expect(Object.fromEntries(Object.entries(refused).map(([k, v]) => [k, hashProblem(v)]))).toEqual({
      bcrypt31: expect.stringMatching(/^passwordHash: bcrypt cost 31 is above 12 /),
      bcrypt13: expect.stringMatching(/bcrypt cost 13 is above 12/),
      bcrypt3: expect.stringMatching(/bcrypt cost 3 is below 4/),
      scryptN18: expect.stringMatching(/scrypt ln=18 is above 17/),
      scryptMem: expect.stringMatching(/more than 128 MiB/),
      scryptWork: expect.stringMatching(/scrypt N·r·p = 2\^14·8·16 is above 2\^20/),
      argonMem: expect.stringMatching(/argon2 m=262144 KiB is above 131072/),
      argonWork: expect.stringMatching(/argon2 m·t = 655360 is above 524288/),
      argonP: expect.stringMatching(/argon2 p=17 is above 16/),
    });
    const taken = [
      b4, b4.replace('$04$', '$10$'), b4.replace('$04$', '$12$').replace('$2b$', '$2y$'),
      scryptShape(14, 8, 1), scryptShape(16, 8, 1), scryptShape(17, 8, 1),
      argonShape('argon2id', 19456, 2, 1), argonShape('argon2id', 47104, 1, 1), argonShape('argon2id', 65536, 3, 4),
      argonShape('argon2id', 65536, 4, 1), argonShape('argon2i', 131072, 4, 1),
    ];
    expect(taken.map(hashProblem)).toEqual(taken.map(() => null));
    expect(hashProblem('$md5$abc')).toMatch(/must be argon2 PHC, bcrypt/);
    expect(costClass(b4.replace('$04$', '$31$'))?.cls.key).toBe('bcrypt cost=31');
  });

  it('never runs a stored hash beyond the bounds: a `$2b$31$` answers like a wrong password after the same work', async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const jobs = watchHashJobs(h);
    await h.verifyDummy('make the dummy first');
    jobs.take();
    const hours = (await bcryptHash('the right password', 4)).replace(/^\$2[aby]\$04\$/, '$2b$31$');
    const r = await h.verify(hours, 'the right password');
    expect(r).toEqual({ ok: false, needsRehash: false, refused: 'bcrypt cost 31 is above 12' });
    expect(jobs.take()).toEqual(['argon2.verify argon2id m=1024,t=1,p=1']);
    // Nor does it join the classes every verification runs.
    expect(h.admit(hours)).toMatch(/bcrypt cost 31 is above 12/);
    expect(h.legacyClasses).toEqual([]);
    await h.close();
  });

  it(`keeps at most ${MAX_LEGACY_CLASSES} legacy classes; a full read drops unused ones and keeps those admitted meanwhile`, async () => {
    const h = new PasswordHasher(CHEAP, { concurrency: 1 });
    const classes = [1, 2, 3, 4, 5].map((ln) => scryptShape(ln, 1, 1));
    for (const c of classes.slice(0, 4)) expect(h.admit(c)).toBeNull();
    expect(h.admit(classes[4]!)).toMatch(/scrypt ln=5,r=1,p=1 would be a 5th kind of legacy hash .*at most 4/);
    expect(h.admit(classes[0]!)).toBeNull(); // already in
    const cls = (ln: number) => costClass(scryptShape(ln, 1, 1))!.cls;
    // A full read of the table begins, and finds only ln=2 and ln=3 still held by some account.
    let mark = h.mark();
    expect(h.replaceLegacy([cls(2), cls(3)], mark)).toEqual([]);
    expect(h.legacyClasses).toEqual(['scrypt ln=2,r=1,p=1', 'scrypt ln=3,r=1,p=1']);
    // Another read begins; an import admits ln=5 before it ends: kept though the read did not see it.
    mark = h.mark();
    expect(h.admit(classes[4]!)).toBeNull();
    h.replaceLegacy([cls(2)], mark);
    expect(h.legacyClasses).toEqual(['scrypt ln=2,r=1,p=1', 'scrypt ln=5,r=1,p=1']);
    // A table holding more kinds than allowed (written before the bound): those in the set stay, then the
    // most used first (the order given), the rest are left out.
    expect(h.replaceLegacy([1, 2, 3, 4, 5, 6].map(cls), h.mark())).toEqual(['scrypt ln=4,r=1,p=1', 'scrypt ln=6,r=1,p=1']);
    expect(h.legacyClasses).toEqual(['scrypt ln=1,r=1,p=1', 'scrypt ln=2,r=1,p=1', 'scrypt ln=3,r=1,p=1', 'scrypt ln=5,r=1,p=1']);
    // An account of a kind left out still signs in (its own hash runs besides the set).
    const jobs = watchHashJobs(h);
    expect(await h.verify(scryptPhc('left out', 6, 1, 1), 'left out')).toEqual({ ok: true, needsRehash: true });
    expect(jobs.take()).toEqual(['argon2.verify argon2id m=1024,t=1,p=1', ...[1, 2, 3, 5, 6].map((ln) => `scrypt ln=${ln},r=1,p=1`)]);
    await h.close();
  });
});

/** A scrypt PHC string of `password` (node:crypto). */
function scryptPhc(password: string, ln: number, r: number, p: number): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 2 ** ln, r, p, maxmem: 256 * 2 ** ln * r + 2 ** 20 });
  return `$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** Well-formed stored hashes of a class (for the bounds: never verified). */
function scryptShape(ln: number, r: number, p: number): string {
  return `$scrypt$ln=${ln},r=${r},p=${p}$${'A'.repeat(22)}$${'A'.repeat(43)}`;
}
function argonShape(variant: string, m: number, t: number, p: number): string {
  return `$${variant}$v=19$m=${m},t=${t},p=${p}$${'A'.repeat(22)}$${'A'.repeat(43)}`;
}
