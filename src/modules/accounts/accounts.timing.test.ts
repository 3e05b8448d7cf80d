/**
 * Issue 13, item 9: sign-in timing of imported accounts, and bounded costs of imported hashes.
 * Not timed (timing is bench/signin-timing.mjs): these compare the hash jobs each sign-in path sends
 * to the hash threads, described by their cost (test/helpers/hash-jobs.ts). Equal jobs, equal work.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { hash as argonHash } from '@node-rs/argon2';
import { MINUTE, SECOND } from '../../kernel/clock.js';
import { newId } from '../../kernel/ids.js';
import { admin, call, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { watchHashJobs, type JobLog } from '../../../test/helpers/hash-jobs.js';
import { DEFAULT_ARGON2, PasswordHasher } from './password-hasher.js';

const ndjson = { ...admin, 'content-type': 'application/x-ndjson' };

function scryptPhc(password: string, ln: number, r: number): string {
  const salt = randomBytes(16);
  const key = scryptSync(password, salt, 32, { N: 2 ** ln, r, p: 1 });
  return `$scrypt$ln=${ln},r=${r},p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A bcrypt hash of `password` whose cost field says 31: days of one core, were it run. */
async function bcrypt31(password: string): Promise<string> {
  return (await bcryptHash(password, 4)).replace(/^\$2[aby]\$04\$/, '$2b$31$');
}

describe.each(DIALECTS)('timing of imported accounts on %s', (dialect) => {
  let h: Harness;
  let hasher: PasswordHasher;
  let jobs: JobLog;
  const logLines: { level: number; msg: string; [k: string]: unknown }[] = [];
  let ipn = 0;

  beforeAll(async () => {
    hasher = new PasswordHasher(DEFAULT_ARGON2, { concurrency: 2 });
    jobs = watchHashJobs(hasher);
    const logger = pino({ level: 'info' }, { write: (line: string) => { logLines.push(JSON.parse(line)); } });
    h = await makeHarness(dialect, { hasher, logger });
  });
  afterAll(async () => {
    await h.close();
    await hasher.close();
  });

  /** A sign-in from an address of its own (the per-source limit is not under test). */
  async function attempt(email: string, password: string) {
    ipn++;
    const res = await h.app.inject({
      method: 'POST', url: '/api/v1/sessions', remoteAddress: `198.51.${ipn >> 8}.${ipn & 255}`,
      headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email, password }),
    });
    return { status: res.statusCode, json: res.json() as Record<string, unknown> };
  }

  /** Insert a user row as an import made elsewhere would (another instance, or before the bounds existed). */
  async function insertRow(email: string, passwordHash: string): Promise<string> {
    const now = h.clock.now();
    const id = newId(now);
    await h.s.storage.db.insertInto('users').values({
      id, email, email_normalized: email, password_hash: passwordHash, email_verified_at: now, created_at: now, updated_at: now, password_changed_at: now, locked_at: null,
    }).execute();
    return id;
  }

  it('refuses an imported hash whose cost is beyond the bounds ($2b$31$ and others), line by line and at POST /admin/users', async () => {
    const b4 = await bcryptHash('a password', 4);
    const lines = [
      { email: 'bound-b31@example.test', passwordHash: await bcrypt31('a password') },
      { email: 'bound-s18@example.test', passwordHash: scryptPhc('a password', 4, 8).replace('ln=4', 'ln=18') },
      { email: 'bound-a2g@example.test', passwordHash: (await argonHash('a password', { memoryCost: 1024, timeCost: 1 })).replace('m=1024', 'm=2097152') },
      { email: 'bound-ok@example.test', passwordHash: b4, emailVerified: true },
    ];
    const r = await call(h.app, 'POST', '/api/v1/admin/users/import', lines.map((l) => JSON.stringify(l)).join('\n') + '\n', ndjson);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ imported: 1, failed: 3 });
    expect(r.json.errors).toEqual([
      { line: 1, error: expect.stringMatching(/^passwordHash: bcrypt cost 31 is above 12 \(the bounds and why: docs\/security\.md\)$/) },
      { line: 2, error: expect.stringMatching(/^passwordHash: scrypt ln=18 is above 17/) },
      { line: 3, error: expect.stringMatching(/^passwordHash: argon2 m=2097152 KiB is above 131072/) },
    ]);
    const one = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'bound-one@example.test', passwordHash: await bcrypt31('a password') }, admin);
    expect(one.status).toBe(400);
    expect(one.json).toMatchObject({ code: 'invalid_request', detail: expect.stringMatching(/bcrypt cost 31 is above 12/) });
    for (const email of ['bound-b31@example.test', 'bound-s18@example.test', 'bound-a2g@example.test', 'bound-one@example.test']) {
      expect(await h.s.accounts.findByEmail(email)).toBeUndefined();
    }
    // The one taken signs in (and is upgraded).
    expect((await attempt('bound-ok@example.test', 'a password')).status).toBe(201);
  });

  it('sends the same hash jobs for an unknown email, an argon2id account, imported argon2i, bcrypt and scrypt accounts and a stored $2b$31$ hash', async () => {
    const legacy = {
      argon2i: await argonHash('argon2i password', { algorithm: 1, memoryCost: 4096, timeCost: 1, parallelism: 1 }),
      bcrypt: await bcryptHash('bcrypt password', 4),
      scrypt: scryptPhc('scrypt password', 4, 8),
    };
    const lines = [
      { email: 'same-argon2id@example.test', password: 'argon2id password', emailVerified: true },
      ...Object.entries(legacy).map(([kind, passwordHash]) => ({ email: `same-${kind}@example.test`, passwordHash, emailVerified: true })),
    ];
    const r = await call(h.app, 'POST', '/api/v1/admin/users/import', lines.map((l) => JSON.stringify(l)).join('\n'), ndjson);
    expect(r.json).toMatchObject({ imported: 4, failed: 0 });
    // A stored hash beyond the bounds, written before the bounds existed.
    await insertRow('same-b31@example.test', await bcrypt31('b31 password'));
    await attempt('warm-up@example.test', 'make every dummy first');
    jobs.take();

    const every = ['argon2.verify argon2i m=4096,t=1,p=1', 'argon2.verify argon2id m=19456,t=2,p=1', 'bcrypt.verify cost=4', 'scrypt ln=4,r=8,p=1'];
    const wrong: [string, string][] = [
      ['same-nobody@example.test', 'any password'], ['same-argon2id@example.test', 'wrong'], ['same-argon2i@example.test', 'wrong'],
      ['same-bcrypt@example.test', 'wrong'], ['same-scrypt@example.test', 'wrong'], ['same-b31@example.test', 'b31 password'],
    ];
    const bodies = new Set<string>();
    for (const [email, password] of wrong) {
      const a = await attempt(email, password);
      expect({ email, status: a.status, jobs: jobs.take() }).toEqual({ email, status: 401, jobs: every });
      bodies.add(JSON.stringify({ ...a.json, requestId: null }));
    }
    expect(bodies.size).toBe(1);
    // The right password: the same verification, then the upgrade of a legacy hash to argon2id.
    const right = [
      ['same-argon2id@example.test', 'argon2id password', false], ['same-argon2i@example.test', 'argon2i password', true],
      ['same-bcrypt@example.test', 'bcrypt password', true], ['same-scrypt@example.test', 'scrypt password', true],
    ] as const;
    for (const [email, password, upgraded] of right) {
      expect((await attempt(email, password)).status).toBe(201);
      expect({ email, jobs: jobs.take() }).toEqual({ email, jobs: upgraded ? ['argon2.hash', ...every] : every });
      expect((await h.s.accounts.findByEmail(email))?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    }
  });

  it('never runs a stored $2b$31$ hash at sign-in: it fails like a wrong password, and is logged once, without the hash', async () => {
    const stored = await bcrypt31('the right password');
    const id = await insertRow('never-b31@example.test', stored);
    await attempt('warm-up@example.test', 'warm up');
    jobs.take();
    logLines.length = 0;
    const answers = [];
    for (const email of ['never-b31@example.test', 'never-b31@example.test', 'never-nobody@example.test']) answers.push(await attempt(email, 'the right password'));
    expect(answers.map((a) => [a.status, a.json.code])).toEqual([[401, 'invalid_credentials'], [401, 'invalid_credentials'], [401, 'invalid_credentials']]);
    const sent = jobs.take();
    expect(sent.filter((j) => j.includes('cost=31'))).toEqual([]);
    expect(sent.filter((j) => j.startsWith('bcrypt.verify')).length).toBe(sent.filter((j) => j.startsWith('argon2.verify argon2id')).length);
    const warned = logLines.filter((l) => l.level === 40 && /beyond the cost bounds/.test(l.msg));
    expect(warned).toEqual([expect.objectContaining({ userId: id, reason: 'bcrypt cost 31 is above 12' })]);
    const all = JSON.stringify(logLines);
    expect(all).not.toContain(stored.slice(7, 29)); // its salt
    expect(all).not.toContain('never-b31@example.test');
  });

  it('drops a legacy kind no account holds any more at the hourly read, and learns within 30 s the kinds another instance imported', async () => {
    // Every legacy account above signed in and was upgraded: after the hourly read, only argon2id is left.
    h.clock.advance(61 * MINUTE);
    await attempt('drop-nobody@example.test', 'kicks the read');
    await h.s.accounts.hashes.idle();
    jobs.take();
    await attempt('drop-nobody-2@example.test', 'any password');
    expect(jobs.take()).toEqual(['argon2.verify argon2id m=19456,t=2,p=1']);
    // The read also counts, for the operator, the accounts whose hash is beyond the bounds (kinds and counts, no hash).
    expect(logLines.filter((l) => /stored password hashes beyond the cost bounds/.test(l.msg)).map((l) => l.accounts)).toEqual([{ 'bcrypt cost=31': 2 }]);
    // Another instance imports a scrypt account: read within 30 s, then every sign-in runs its kind.
    await insertRow('drop-elsewhere@example.test', scryptPhc('elsewhere', 5, 8));
    h.clock.advance(31 * SECOND);
    await attempt('drop-nobody-3@example.test', 'kicks the read');
    await h.s.accounts.hashes.idle();
    jobs.take();
    await attempt('drop-nobody-4@example.test', 'any password');
    expect(jobs.take()).toEqual(['argon2.verify argon2id m=19456,t=2,p=1', 'scrypt ln=5,r=8,p=1']);
    expect((await attempt('drop-elsewhere@example.test', 'elsewhere')).status).toBe(201);
  });

  it('refuses at import a fifth kind of legacy hash (every sign-in runs one of each), naming those in use', async () => {
    const hh = await makeHarness(dialect);
    try {
      const lines = [1, 2, 3, 4, 5].map((ln) => JSON.stringify({ email: `kinds-${ln}@example.test`, passwordHash: scryptPhc('cheap', ln, 1), emailVerified: true }));
      const r = await call(hh.app, 'POST', '/api/v1/admin/users/import', lines.join('\n'), ndjson);
      expect(r.json).toMatchObject({ imported: 4, failed: 1 });
      const fifth = /^passwordHash: scrypt ln=5,r=1,p=1 would be a 5th kind of legacy hash \(in use: scrypt ln=1,r=1,p=1; .*\).* at most 4/;
      expect(r.json.errors).toEqual([{ line: 5, error: expect.stringMatching(fifth) }]);
      // Another of a kind in use is taken.
      const more = await call(hh.app, 'POST', '/api/v1/admin/users', { email: 'kinds-more@example.test', passwordHash: scryptPhc('cheap', 3, 1) }, admin);
      expect(more.status).toBe(201);
    } finally {
      await hh.close();
    }
  });
});
