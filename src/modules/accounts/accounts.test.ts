import { scryptSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { hash as argonHash } from '@node-rs/argon2';
import { MINUTE } from '../../kernel/clock.js';
import { admin, bearer, call, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';

const ndjson = { ...admin, 'content-type': 'application/x-ndjson' };

function scryptPhc(password: string): string {
  const salt = randomBytes(16);
  const dk = scryptSync(password, salt, 32, { N: 2 ** 14, r: 8, p: 1 });
  return `$scrypt$ln=14,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${dk.toString('base64').replace(/=+$/, '')}`;
}

describe.each(DIALECTS)('accounts on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const outboxFor = (email: string) => h.s.storage.db.selectFrom('outbox').selectAll().where('recipient', '=', email).orderBy('id').execute();

  it('answers sign-up identically for new and existing addresses, and mails each the right thing', async () => {
    const a = await call(h.app, 'POST', '/api/v1/accounts', { email: 'New.Person@Example.test', password: 'a fine long passphrase' });
    const b = await call(h.app, 'POST', '/api/v1/accounts', { email: 'new.person@example.test', password: 'another fine passphrase' });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(a.text).toBe(b.text);
    const strip = (hd: Record<string, unknown>) => { const { date, 'x-request-id': _r, ...rest } = hd; return rest; };
    expect(strip(a.headers)).toEqual(strip(b.headers));
    const rows = await outboxFor('New.Person@Example.test');
    expect(rows.map((r) => r.type)).toEqual(['verify_email', 'signup_existing']);
    expect(rows.every((r) => r.cause_kind === 'anonymous' && r.cause_id.length > 0)).toBe(true);
    // The verification link rests sealed, never in clear.
    expect(rows[0]!.payload).not.toMatch(/token=/);
    const secret = h.s.outbox.openSecret(rows[0]!);
    expect(secret?.link).toMatch(/^http:\/\/floodgate\.test\/verify\?token=[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
  });

  it('verifies an email once, and refuses expired or reused tokens with one generic 400', async () => {
    await call(h.app, 'POST', '/api/v1/accounts', { email: 'verify@example.test', password: 'a fine long passphrase' });
    const [row] = await outboxFor('verify@example.test');
    const token = new URL(h.s.outbox.openSecret(row!)!.link!).searchParams.get('token')!;
    const ok = await call(h.app, 'POST', '/api/v1/accounts/verify', { token });
    expect(ok.status).toBe(204);
    const again = await call(h.app, 'POST', '/api/v1/accounts/verify', { token });
    expect(again.status).toBe(400);
    expect(again.json.code).toBe('invalid_token');
    const user = await h.s.accounts.findByEmail('verify@example.test');
    expect(user?.email_verified_at).not.toBeNull();

    await call(h.app, 'POST', '/api/v1/accounts', { email: 'late@example.test', password: 'a fine long passphrase' });
    const [late] = await outboxFor('late@example.test');
    const lateToken = new URL(h.s.outbox.openSecret(late!)!.link!).searchParams.get('token')!;
    h.clock.advance(30 * MINUTE);
    const expired = await call(h.app, 'POST', '/api/v1/accounts/verify', { token: lateToken });
    expect(expired.status).toBe(400);
    expect(expired.json).toMatchObject({ code: 'invalid_token' });
    const garbage = await call(h.app, 'POST', '/api/v1/accounts/verify', { token: 'not-a-token' });
    expect({ ...garbage.json, requestId: 0 }).toEqual({ ...expired.json, requestId: 0 });
  });

  it('resends verification only for unverified accounts and not while a fresh token is live', async () => {
    await call(h.app, 'POST', '/api/v1/accounts', { email: 'resend@example.test', password: 'a fine long passphrase' });
    expect((await call(h.app, 'POST', '/api/v1/accounts/verify/resend', { email: 'resend@example.test' })).status).toBe(202);
    expect(await outboxFor('resend@example.test')).toHaveLength(1);
    h.clock.advance(6 * MINUTE);
    await call(h.app, 'POST', '/api/v1/accounts/verify/resend', { email: 'resend@example.test' });
    expect(await outboxFor('resend@example.test')).toHaveLength(2);
    const unknown = await call(h.app, 'POST', '/api/v1/accounts/verify/resend', { email: 'ghost@example.test' });
    expect(unknown.status).toBe(202);
  });

  it('refuses short passwords and the email as password, with the field named', async () => {
    const short = await call(h.app, 'POST', '/api/v1/accounts', { email: 'short@example.test', password: 'short' });
    expect(short.status).toBe(400);
    expect(short.json).toMatchObject({ code: 'weak_password', reason: 'too_short' });
    const same = await call(h.app, 'POST', '/api/v1/accounts', { email: 'same@example.test', password: 'Same@Example.test' });
    expect(same.json).toMatchObject({ code: 'weak_password', reason: 'same_as_email' });
    const long = await call(h.app, 'POST', '/api/v1/accounts', { email: 'long@example.test', password: 'é'.repeat(600) });
    expect(long.status).toBe(400);
    expect(long.json.reason).toBe('too_long');
    const ok64 = await call(h.app, 'POST', '/api/v1/accounts', { email: 'long64@example.test', password: 'x'.repeat(64) + ' y' });
    expect(ok64.status).toBe(202);
  });

  it('imports NDJSON with argon2, bcrypt and scrypt hashes, reports bad lines by number, and upgrades legacy hashes on sign-in', async () => {
    const argonOld = await argonHash('argon password 1', { algorithm: 1, memoryCost: 4096, timeCost: 1, parallelism: 1 });
    const lines = [
      JSON.stringify({ email: 'imp-argon@example.test', passwordHash: argonOld, emailVerified: true }),
      JSON.stringify({ email: 'imp-bcrypt@example.test', passwordHash: (await bcryptHash('bcrypt password 1', 4)).replace(/^\$2b\$/, '$2y$'), emailVerified: true }),
      JSON.stringify({ email: 'imp-scrypt@example.test', passwordHash: scryptPhc('scrypt password 1'), emailVerified: true }),
      JSON.stringify({ email: 'imp-plain@example.test', password: 'plain password 1' }),
      '{not json',
      JSON.stringify({ email: 'imp-bad-hash@example.test', passwordHash: '$md5$abc' }),
      JSON.stringify({ email: 'IMP-ARGON@example.test', password: 'duplicate in file' }),
      JSON.stringify({ email: 'imp-extra@example.test', password: 'plain password 1', role: 'admin' }),
      '',
      JSON.stringify({ email: 'not-an-email', password: 'plain password 1' }),
    ];
    const r = await call(h.app, 'POST', '/api/v1/admin/users/import', lines.join('\n') + '\n', ndjson);
    expect(r.status).toBe(200);
    expect(r.json.imported).toBe(4);
    expect(r.json.failed).toBe(5);
    expect(r.json.errors.map((e: any) => e.line).sort((a: number, b: number) => a - b)).toEqual([5, 6, 7, 8, 10]);
    // Re-importing the same file imports nothing twice.
    const again = await call(h.app, 'POST', '/api/v1/admin/users/import', lines.slice(0, 4).join('\n'), ndjson);
    expect(again.json).toMatchObject({ imported: 0, failed: 4 });
    expect(again.json.errors[0].error).toMatch(/already exists/);

    for (const [email, pw, kind] of [['imp-argon@example.test', 'argon password 1', '$argon2i$'], ['imp-bcrypt@example.test', 'bcrypt password 1', '$2y$'], ['imp-scrypt@example.test', 'scrypt password 1', '$scrypt$']] as const) {
      const before = await h.s.accounts.findByEmail(email);
      expect(before?.password_hash?.startsWith(kind)).toBe(true);
      expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: 'wrong ' + pw })).status).toBe(401);
      await signIn(h, email, pw);
      const after = await h.s.accounts.findByEmail(email);
      expect(after?.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      await signIn(h, email, pw);
    }
  });

  it('refuses an import without the operator token or with the wrong content type', async () => {
    const noAuth = await call(h.app, 'POST', '/api/v1/admin/users/import', '{"email":"x@example.test","password":"plain password 1"}\n', { 'content-type': 'application/x-ndjson' });
    expect(noAuth.status).toBe(401);
    const json = await call(h.app, 'POST', '/api/v1/admin/users/import', { email: 'x@example.test' }, admin);
    expect(json.status).toBe(415);
  });

  it('never stores a password in clear', async () => {
    await call(h.app, 'POST', '/api/v1/accounts', { email: 'clear@example.test', password: 'findable passphrase 77' });
    if (h.dbFile) {
      const bytes = Buffer.concat([readFileSync(h.dbFile), ...(['-wal'].map((x) => { try { return readFileSync(h.dbFile + x); } catch { return Buffer.alloc(0); } }))]);
      expect(bytes.includes(Buffer.from('findable passphrase 77'))).toBe(false);
    }
  });

  it('shows the signed-in account', async () => {
    await call(h.app, 'POST', '/api/v1/admin/users', { email: 'me@example.test', password: 'me passphrase 12', emailVerified: true }, admin);
    const t = await signIn(h, 'me@example.test', 'me passphrase 12');
    const r = await call(h.app, 'GET', '/api/v1/me', undefined, bearer(t));
    expect(r.json).toMatchObject({ email: 'me@example.test', emailVerified: true });
  });
});
