import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret, TOTP } from 'otpauth';
import { MINUTE, SECOND } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset } from '../../../test/helpers/recovery.js';

const OLD = 'the old passphrase 1';
const NEW = 'the brand new passphrase 2';

describe.each(DIALECTS)('password reset confirmation on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const confirm = (body: Record<string, unknown>, ip = freshIp()) => from(h.app, ip, 'POST', '/api/v1/password-resets/confirm', body);
  const flowOf = async (token: string) => h.s.storage.db.selectFrom('recovery_flows').selectAll().where('token_id', '=', token.split('.')[0]!).executeTakeFirstOrThrow();
  const eventTypes = async (userId: string) => (await h.s.storage.db.selectFrom('security_events').select('type').where('user_id', '=', userId).orderBy('id').execute()).map((e) => e.type);

  it('sets the password once, signs out every session, kills other tokens and queues a password-changed notice', async () => {
    const userId = await createUser(h, 'once@example.test', OLD);
    const s1 = await signIn(h, 'once@example.test', OLD);
    const s2 = await signIn(h, 'once@example.test', OLD);
    await requestReset(h, 'once@example.test');
    const { token } = await lastResetMail(h, 'once@example.test');
    const ip = freshIp();
    const ok = await from(h.app, ip, 'POST', '/api/v1/password-resets/confirm', { token, password: NEW }, { 'user-agent': 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15' });
    expect(ok.status).toBe(204);
    expect(ok.text).toBe('');
    expect(ok.headers['cache-control']).toBe('no-store');
    const again = await confirm({ token, password: 'yet another passphrase 3' });
    expect(again).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    for (const t of [s1, s2]) expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t))).status).toBe(401);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email: 'once@example.test', password: OLD })).status).toBe(401);
    await signIn(h, 'once@example.test', NEW);
    expect(await flowOf(token)).toMatchObject({ state: 'used', end_reason: 'consumed' });

    const [notice] = await h.s.storage.db.selectFrom('outbox').selectAll().where('type', '=', 'password_changed').where('user_id', '=', userId).execute();
    expect(notice).toMatchObject({ channel: 'email', lane: 'priority', recipient: 'once@example.test', cause_kind: 'user', cause_id: ok.headers['x-request-id'], cause_ip: ip, sealed: null });
    const data = JSON.parse(notice!.payload);
    expect(data).toMatchObject({ email: 'once@example.test', ip, device: 'Safari 17 on Mac OS 10.15.7 (Apple Macintosh)' });
    expect(new Date(data.at).getTime()).toBe(h.clock.now());
    const types = await eventTypes(userId);
    expect(types).toEqual(expect.arrayContaining(['password.reset_requested', 'password.reset_completed', 'password.changed']));
    const [changed] = await h.s.storage.db.selectFrom('security_events').selectAll().where('user_id', '=', userId).where('type', '=', 'password.changed').execute();
    expect(JSON.parse(changed!.data)).toMatchObject({ via: 'reset', sessionsRevoked: 2 });
  });

  it('answers one generic 400 for bad, malformed, forged, used and expired tokens', async () => {
    await createUser(h, 'expiry@example.test', OLD);
    await requestReset(h, 'expiry@example.test');
    const { token, denyToken } = await lastResetMail(h, 'expiry@example.test');
    const [id] = token.split('.');
    const answers = [
      await confirm({ token: 'garbage', password: NEW }),
      await confirm({ token: `${id}.${'A'.repeat(43)}`, password: NEW }),
      await confirm({ token: denyToken, password: NEW }),
    ];
    h.clock.advance(30 * MINUTE);
    answers.push(await confirm({ token, password: NEW }));
    for (const a of answers) {
      expect(a.status).toBe(400);
      expect({ ...a.json, requestId: null }).toEqual({ ...answers[0]!.json, requestId: null });
    }
    expect(answers[0]!.json.code).toBe('invalid_token');
    // The deny token could not reset, and the reset token was never consumed: it simply expired.
    expect((await flowOf(token)).state).toBe('issued');
  });

  it('still works one second before the 30-minute expiry', async () => {
    await createUser(h, 'edge@example.test', OLD);
    await requestReset(h, 'edge@example.test');
    const { token } = await lastResetMail(h, 'edge@example.test');
    h.clock.advance(30 * MINUTE - 1000);
    expect((await confirm({ token, password: NEW })).status).toBe(204);
  });

  it('refuses a weak password without consuming the token', async () => {
    await createUser(h, 'weak@example.test', OLD);
    await requestReset(h, 'weak@example.test');
    const { token } = await lastResetMail(h, 'weak@example.test');
    expect(await confirm({ token, password: 'short' })).toMatchObject({ status: 400, json: { code: 'weak_password', reason: 'too_short' } });
    expect(await confirm({ token, password: 'Weak@Example.test' })).toMatchObject({ status: 400, json: { code: 'weak_password', reason: 'same_as_email' } });
    expect((await flowOf(token)).state).toBe('issued');
    expect((await confirm({ token, password: NEW })).status).toBe(204);
  });

  it('unlocks an account that too many failed sign-ins had locked', async () => {
    const userId = await createUser(h, 'locked@example.test', OLD);
    await h.s.storage.db.updateTable('users').set({ locked_at: h.clock.now() }).where('id', '=', userId).execute();
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email: 'locked@example.test', password: OLD })).status).toBe(401);
    await requestReset(h, 'locked@example.test');
    const { token } = await lastResetMail(h, 'locked@example.test');
    expect((await confirm({ token, password: NEW })).status).toBe(204);
    expect((await h.s.accounts.findById(userId))!.locked_at).toBeNull();
    await signIn(h, 'locked@example.test', NEW);
    expect(await eventTypes(userId)).toContain('account.unlocked');
  });

  it('lets only one of two concurrent confirms with the same token win', async () => {
    await createUser(h, 'twice@example.test', OLD);
    await requestReset(h, 'twice@example.test');
    const { token } = await lastResetMail(h, 'twice@example.test');
    const [a, b] = await Promise.all([confirm({ token, password: NEW }), confirm({ token, password: 'the other passphrase 4' })]);
    expect([a.status, b.status].sort()).toEqual([204, 400]);
    const winner = a.status === 204 ? NEW : 'the other passphrase 4';
    await signIn(h, 'twice@example.test', winner);
    expect(await h.s.storage.db.selectFrom('outbox').select('id').where('type', '=', 'password_changed').where('recipient', '=', 'twice@example.test').execute()).toHaveLength(1);
  });

  it('rate-limits token guessing per source', async () => {
    const ip = freshIp();
    for (let i = 0; i < 10; i++) expect((await confirm({ token: `guess${i}`, password: NEW }, ip)).status).toBe(400);
    const limited = await confirm({ token: 'guess', password: NEW }, ip);
    expect(limited).toMatchObject({ status: 429, json: { code: 'rate_limited' } });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await confirm({ token: 'guess', password: NEW })).status).toBe(400);
  });

  describe('with a second factor (the MFA module)', () => {
    /** A user with a confirmed authenticator app; codes come from an independent implementation (otpauth). */
    async function enrolled(email: string) {
      const userId = await createUser(h, email, OLD);
      const session = await signIn(h, email, OLD);
      const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(session));
      expect(en.status).toBe(201);
      const code = (ms: number) => TOTP.generate({ secret: Secret.fromBase32(en.json.secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });
      const conf = await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: code(h.clock.now()) }, bearer(session));
      expect(conf.status).toBe(200);
      h.clock.advance(30 * SECOND); // the confirming code's time step is spent
      return { userId, code, recoveryCodes: conf.json.recoveryCodes as string[] };
    }

    it('asks for the code without consuming the token, refuses a wrong one, accepts a right one', async () => {
      const { userId, code } = await enrolled('mfa@example.test');
      await requestReset(h, 'mfa@example.test');
      const { token } = await lastResetMail(h, 'mfa@example.test');
      expect(await h.s.recovery.peek(token)).toEqual({ secondFactor: true });
      const ask = await confirm({ token, password: NEW });
      expect(ask).toMatchObject({ status: 401, json: { code: 'mfa_required' } });
      expect((await flowOf(token)).state).toBe('issued');
      const wrong = await confirm({ token, password: NEW, otp: code(h.clock.now()) === '000000' ? '111111' : '000000' });
      expect(wrong).toMatchObject({ status: 401, json: { code: 'invalid_credentials' } });
      expect(await flowOf(token)).toMatchObject({ state: 'issued', otp_failures: 1 });
      expect(await eventTypes(userId)).toContain('password.reset_mfa_failed');
      // The password did not change on either attempt.
      expect((await call(h.app, 'POST', '/api/v1/sessions', { email: 'mfa@example.test', password: NEW, otp: code(h.clock.now()) })).status).toBe(401);
      h.clock.advance(30 * SECOND);
      expect((await confirm({ token, password: NEW, otp: code(h.clock.now()) })).status).toBe(204);
      expect((await flowOf(token)).state).toBe('used');
      const [ev] = await h.s.storage.db.selectFrom('security_events').selectAll().where('user_id', '=', userId).where('type', '=', 'password.reset_completed').execute();
      expect(JSON.parse(ev!.data)).toMatchObject({ secondFactor: 'totp' });
      h.clock.advance(30 * SECOND);
      expect((await call(h.app, 'POST', '/api/v1/sessions', { email: 'mfa@example.test', password: NEW, otp: code(h.clock.now()) })).status).toBe(201);
    });

    it('accepts a recovery code, once', async () => {
      const { recoveryCodes } = await enrolled('mfa-rc@example.test');
      await requestReset(h, 'mfa-rc@example.test');
      const { token } = await lastResetMail(h, 'mfa-rc@example.test');
      expect((await confirm({ token, password: NEW, otp: recoveryCodes[0]! })).status).toBe(204);
      h.clock.advance(3 * MINUTE);
      await requestReset(h, 'mfa-rc@example.test');
      const second = await lastResetMail(h, 'mfa-rc@example.test');
      expect(await confirm({ token: second.token, password: 'the third passphrase 5', otp: recoveryCodes[0]! })).toMatchObject({ status: 401, json: { code: 'invalid_credentials' } });
    });

    it('kills the token after five wrong codes', async () => {
      await enrolled('mfa-guess@example.test');
      await requestReset(h, 'mfa-guess@example.test');
      const { token } = await lastResetMail(h, 'mfa-guess@example.test');
      for (let i = 0; i < 5; i++) {
        const r = await confirm({ token, password: NEW, otp: `${i}`.repeat(8) });
        expect(r.status).toBe(401);
      }
      expect(await flowOf(token)).toMatchObject({ state: 'expired', end_reason: 'otp_failures', otp_failures: 5 });
      expect(await confirm({ token, password: NEW })).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    });
  });
});
