import { readFileSync, existsSync } from 'node:fs';
import { Secret, TOTP, URI } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE, SECOND } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';

const PW = 'a passphrase for mfa 42';

/** A code for the harness clock, made by an independent implementation (otpauth). */
function codeAt(secret: string, ms: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });
}

function dbBytes(file: string): Buffer {
  return Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
}

describe.each(DIALECTS)('TOTP and recovery codes on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  /** A user with a confirmed authenticator app: returns its secret, recovery codes and a session. */
  async function enrolled(email: string, extra: Record<string, unknown> = {}) {
    const userId = await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    expect(en.status).toBe(201);
    const conf = await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: codeAt(en.json.secret, h.clock.now()), ...extra }, bearer(token));
    expect(conf.status).toBe(200);
    // Move to a fresh time step: the confirming code's step is spent.
    h.clock.advance(30 * SECOND);
    return { userId, token, secret: en.json.secret as string, uri: en.json.uri as string, codes: conf.json.recoveryCodes as string[] };
  }

  it('tells the owner, once a day, when the right password came with a wrong code (their password is known)', async () => {
    const email = 'known-password@example.test';
    const { userId, secret } = await enrolled(email);
    const notices = async () => (await h.s.storage.db.selectFrom('outbox').select(['type', 'recipient', 'lane']).where('user_id', '=', userId).where('type', '=', 'second_factor_failed').execute());
    // A wrong password with a wrong code tells nothing: no notice.
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: 'not the password at all', otp: '000000' })).status).toBe(401);
    expect(await notices()).toEqual([]);
    // The right password, a wrong code: refused, and the owner hears of it, in the protective lane.
    const wrong = codeAt(secret, h.clock.now()) === '000000' ? '111111' : '000000';
    const r = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: wrong });
    expect(r.status).toBe(401);
    expect(await notices()).toEqual([{ type: 'second_factor_failed', recipient: email, lane: 'priority' }]);
    // Again the same day: still one notice (no inbox bomb for whoever holds the password).
    h.clock.advance(MINUTE);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: wrong })).status).toBe(401);
    expect(await notices()).toHaveLength(1);
    // The right code signs in and sends nothing of the kind.
    h.clock.advance(MINUTE);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, h.clock.now()) })).status).toBe(201);
    expect(await notices()).toHaveLength(1);
  });

  it('enrols an authenticator app, confirms it, and signs in with a code made by otpauth', async () => {
    const email = 'totp@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const before = await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token));
    expect(before.json).toEqual({ enabled: false, totp: { enabled: false, pending: false, confirmedAt: null }, passkeys: 0, recoveryCodesLeft: 0 });

    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    expect(en.status).toBe(201);
    expect(en.headers['cache-control']).toBe('no-store');
    expect(en.json.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(en.json.uri).toMatch(/^otpauth:\/\/totp\/Floodgate:totp%40example\.test\?/);
    expect(en.json.uri).toContain('issuer=Floodgate');
    expect(en.json.qrSvg).toMatch(/^<svg[\s\S]*<\/svg>\s*$/);
    const parsed = URI.parse(en.json.uri) as TOTP;
    expect(parsed.secret.base32).toBe(en.json.secret);
    // Not on until confirmed: a password alone still signs in.
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW })).status).toBe(201);

    const bad = await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: '12345' }, bearer(token));
    expect(bad).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    const confirmedAt = h.clock.now();
    const conf = await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: parsed.generate({ timestamp: h.clock.now() }) }, bearer(token));
    expect(conf.status).toBe(200);
    expect(conf.json.recoveryCodes).toHaveLength(10);
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token))).status).toBe(409);

    const need = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW });
    expect(need).toMatchObject({ status: 401, json: { code: 'mfa_required' } });
    const wrongPw = await call(h.app, 'POST', '/api/v1/sessions', { email, password: 'not the password 1' });
    expect(wrongPw.json.code).toBe('invalid_credentials'); // mfa_required only after a correct password

    h.clock.advance(30 * SECOND);
    const ok = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: parsed.generate({ timestamp: h.clock.now() }) });
    expect(ok.status).toBe(201);
    const list = await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(ok.json.token));
    expect(list.json.sessions.find((s: any) => s.current).authMethod).toBe('password+totp');

    const status = await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token));
    expect(status.json).toMatchObject({ enabled: true, totp: { enabled: true, pending: false }, passkeys: 0, recoveryCodesLeft: 10 });
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(token));
    expect(events.json.events.map((e: any) => e.type)).toContain('mfa.totp_enrolled');
    const notices = await h.s.storage.db.selectFrom('outbox').selectAll().where('type', '=', 'mfa_changed').execute();
    const mine = notices.filter((n) => n.recipient === email);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ channel: 'email', lane: 'priority', cause_kind: 'user', state: 'queued' });
    expect(JSON.parse(mine[0]!.payload)).toMatchObject({ change: 'totp_enrolled', at: new Date(confirmedAt).toISOString() });
  });

  it('accepts a code once: the same code twice is refused, even within its window', async () => {
    const email = 'replay@example.test';
    const { secret } = await enrolled(email);
    const code = codeAt(secret, h.clock.now());
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: code })).status).toBe(201);
    const again = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: code });
    expect([401, 429]).toContain(again.status);
    h.clock.advance(10 * SECOND); // still inside the ±1 window of that step
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: code })).status).toBe(401);
    // An older code (previous step) is refused too once a later step was used.
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, h.clock.now() - 30 * SECOND) })).status).toBe(401);
    h.clock.advance(30 * SECOND);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, h.clock.now()) })).status).toBe(201);
  });

  it('accepts ±1 step of clock drift and refuses ±2', async () => {
    const email = 'drift@example.test';
    const { secret } = await enrolled(email);
    const now = () => h.clock.now();
    h.clock.advance(60 * SECOND); // two steps past the confirming one, so -1 and -2 are unused steps
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, now() - 60 * SECOND) })).status).toBe(401); // -2
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, now() - 30 * SECOND) })).status).toBe(201); // -1
    h.clock.advance(90 * SECOND);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, now() + 60 * SECOND) })).status).toBe(401); // +2
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, now() + 30 * SECOND) })).status).toBe(201); // +1
  });

  it('limits wrong codes per account: 429 with Retry-After, even for the right code, until the window passes', async () => {
    const email = 'limit@example.test';
    const { secret } = await enrolled(email);
    const right = codeAt(secret, h.clock.now());
    const wrong = ['000000', '111111', '222222', '333333', '444444', '555555'].filter((c) => c !== right && c !== codeAt(secret, h.clock.now() - 30 * SECOND) && c !== codeAt(secret, h.clock.now() + 30 * SECOND));
    for (const c of wrong.slice(0, 5)) expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: c })).status).toBe(401);
    const limited = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: right });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    h.clock.advance(20 * MINUTE);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codeAt(secret, h.clock.now()) })).status).toBe(201);
  });

  it('gives 10 recovery codes that each work once, stored only as hashes', async () => {
    const email = 'codes@example.test';
    const { codes, token, userId } = await enrolled(email);
    expect(codes).toHaveLength(10);
    const r1 = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codes[0] });
    expect(r1.status).toBe(201);
    const r2 = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codes[0] });
    expect([401, 429]).toContain(r2.status);
    // Case, spaces and dashes do not matter.
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codes[1]!.toUpperCase().replace(/-/g, ' ') })).status).toBe(201);
    const status = await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token));
    expect(status.json.recoveryCodesLeft).toBe(8);
    const rows = await h.s.storage.db.selectFrom('mfa_recovery_codes').selectAll().where('user_id', '=', userId).execute();
    expect(rows).toHaveLength(10);
    const stored = JSON.stringify(rows);
    for (const c of codes) {
      expect(stored).not.toContain(c);
      expect(stored).not.toContain(c.replace(/-/g, ''));
    }
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(token));
    expect(events.json.events.filter((e: any) => e.type === 'mfa.recovery_code_used')).toHaveLength(2);
    const notices = await h.s.storage.db.selectFrom('outbox').select('payload').where('recipient', '=', email).where('type', '=', 'mfa_changed').execute();
    expect(notices.map((n) => JSON.parse(n.payload).change).sort()).toEqual(['recovery_code_used', 'recovery_code_used', 'totp_enrolled']);
    if (h.dbFile) {
      const bytes = dbBytes(h.dbFile);
      for (const c of codes) {
        expect(bytes.includes(Buffer.from(c))).toBe(false);
        expect(bytes.includes(Buffer.from(c.replace(/-/g, '')))).toBe(false);
      }
    }
    // New codes replace the old ones.
    const regen = await call(h.app, 'POST', '/api/v1/me/mfa/recovery-codes', {}, bearer(token));
    expect(regen.status).toBe(200);
    expect(regen.json.recoveryCodes).toHaveLength(10);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: codes[2] })).status).toBe(401);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW, otp: regen.json.recoveryCodes[0] })).status).toBe(201);
  });

  it('never writes the TOTP secret in clear (rows, and the SQLite file bytes)', async () => {
    const email = 'sealed@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    const secret = en.json.secret as string;
    const raw = Buffer.from(Secret.fromBase32(secret).buffer);
    const check = async () => {
      const rows = JSON.stringify(await h.s.storage.db.selectFrom('mfa_totp').selectAll().execute());
      expect(rows).not.toContain(secret);
      expect(rows).not.toContain(raw.toString('hex'));
      if (!h.dbFile) return; // PostgreSQL: the rows are what rests
      const bytes = dbBytes(h.dbFile);
      expect(bytes.length).toBeGreaterThan(0);
      expect(bytes.includes(Buffer.from(secret))).toBe(false);
      expect(bytes.includes(raw)).toBe(false);
      expect(bytes.includes(Buffer.from(raw.toString('hex')))).toBe(false);
      expect(bytes.includes(Buffer.from(raw.toString('base64')))).toBe(false);
    };
    await check(); // pending
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: codeAt(secret, h.clock.now()) }, bearer(token))).status).toBe(200);
    await check(); // active
    const row = await h.s.storage.db.selectFrom('mfa_totp').selectAll('mfa_totp').innerJoin('users', 'users.id', 'mfa_totp.user_id').where('users.email_normalized', '=', email).executeTakeFirstOrThrow();
    expect(row.secret_sealed).toMatch(/^v1\./);
    expect(h.s.box.open(row.secret_sealed, row.id)).toBe(secret);
    expect(h.s.box.open(row.secret_sealed, 'another-row')).toBeNull(); // bound to its row
  });

  it('removing the app needs a recent sign-in or the password, and turns MFA off with its codes', async () => {
    const email = 'remove@example.test';
    const { token, codes } = await enrolled(email);
    h.clock.advance(11 * MINUTE);
    const stale = await call(h.app, 'DELETE', '/api/v1/me/mfa/totp', undefined, bearer(token));
    expect(stale).toMatchObject({ status: 403, json: { code: 'forbidden', reason: 'reauthentication_required' } });
    const wrong = await call(h.app, 'DELETE', '/api/v1/me/mfa/totp', { password: 'not my password 9' }, bearer(token));
    expect(wrong).toMatchObject({ status: 403, json: { reason: 'wrong_password' } });
    const other = await signIn(h, email, PW, { otp: codes[5] });
    const ok = await call(h.app, 'DELETE', '/api/v1/me/mfa/totp', { password: PW, revokeOtherSessions: true }, bearer(token));
    expect(ok.status).toBe(204);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(other))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(token))).status).toBe(200);
    const status = await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token));
    expect(status.json).toMatchObject({ enabled: false, totp: { enabled: false }, recoveryCodesLeft: 0 });
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW })).status).toBe(201);
    const notices = await h.s.storage.db.selectFrom('outbox').select(['payload', 'lane']).where('recipient', '=', email).where('type', '=', 'mfa_changed').execute();
    expect(notices.map((n) => JSON.parse(n.payload).change)).toContain('totp_removed');
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(token));
    expect(events.json.events.find((e: any) => e.type === 'mfa.totp_removed')).toMatchObject({ data: { revokedSessions: 1, mfaStillOn: false } });
    expect((await call(h.app, 'DELETE', '/api/v1/me/mfa/totp', { password: PW }, bearer(token))).status).toBe(404);
  });

  it('adding the app also needs a recent sign-in, and can sign out the other sessions', async () => {
    const email = 'stale@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    h.clock.advance(11 * MINUTE);
    const other = await signIn(h, email, PW);
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token))).status).toBe(403);
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', { password: PW }, bearer(token));
    expect(en.status).toBe(201);
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: codeAt(en.json.secret, h.clock.now()) }, bearer(token))).status).toBe(403);
    const conf = await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: codeAt(en.json.secret, h.clock.now()), password: PW, revokeOtherSessions: true }, bearer(token));
    expect(conf.status).toBe(200);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(other))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(token))).status).toBe(200);
  });

  it('lets the recovery flow use the port inside its own transaction', async () => {
    const email = 'port@example.test';
    const { userId, secret, codes } = await enrolled(email);
    const ctx = { requestId: 'port-test', ip: '127.0.0.1', userAgent: null };
    expect(await h.s.secondFactor.required(userId)).toBe(true);
    const used = await h.s.storage.db.transaction().execute((trx) => h.s.secondFactor.verify(trx, userId, codeAt(secret, h.clock.now()), ctx));
    expect(used).toBe('totp');
    // A rolled-back transaction does not spend the code.
    await expect(h.s.storage.db.transaction().execute(async (trx) => {
      expect(await h.s.secondFactor.verify(trx, userId, codes[9]!, ctx)).toBe('recovery_code');
      throw new Error('rollback');
    })).rejects.toThrow('rollback');
    expect(await h.s.secondFactor.verify(h.s.storage.db, userId, codes[9]!, ctx)).toBe('recovery_code');
    expect(await h.s.secondFactor.verify(h.s.storage.db, userId, codes[9]!, ctx)).toBeNull();
  });
});
