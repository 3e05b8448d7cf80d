/**
 * Pre-account hijack (issue 13, item 2): someone signs up with an address they do not own, signs
 * in without confirming it and adds an authenticator app or a passkey; the owner's later reset
 * then asks for a factor the owner does not have, and the squatter keeps passkey sign-in. Each
 * test performs the attack over HTTP, on every database.
 */
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR, MINUTE } from '../../kernel/clock.js';
import { DEVICE_COOKIE, SESSION_COOKIE } from '../../http/context.js';
import { bearer, call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from, lastResetMail, requestReset, stableHeaders } from '../../../test/helpers/recovery.js';
import { nextIp, page, SAME_SITE } from '../../../test/helpers/web.js';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';

const PUBLIC = 'http://floodgate.test';
const SQUATTER_PW = 'the squatter chose this 1';
const OWNER_PW = 'the owner chose this one 2';
const strip = (j: any) => ({ ...j, requestId: undefined });

describe.each(DIALECTS)('unconfirmed addresses (pre-account hijack) on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });
  const db = () => h.s.storage.db;

  const verifyMails = (email: string) => db().selectFrom('outbox').selectAll().where('type', '=', 'verify_email').where('recipient', '=', email).orderBy('id').execute();
  const linkOf = (row: { id: string; sealed: string | null }) => h.s.outbox.openSecret(row)!.link!;
  const eventsOf = async (userId: string) => (await db().selectFrom('security_events').selectAll().where('user_id', '=', userId).orderBy('id').execute()).map((e) => ({ type: e.type, data: JSON.parse(e.data) }));
  const factorRows = async (userId: string) => ({
    totp: (await db().selectFrom('mfa_totp').select('id').where('user_id', '=', userId).execute()).length,
    passkeys: (await db().selectFrom('mfa_passkeys').select('id').where('user_id', '=', userId).execute()).length,
    codes: (await db().selectFrom('mfa_recovery_codes').select('id').where('user_id', '=', userId).execute()).length,
    devices: (await db().selectFrom('devices').select('id').where('user_id', '=', userId).execute()).length,
  });
  const signUp = (email: string, password: string) => from(h.app, freshIp(), 'POST', '/api/v1/accounts', { email, password });
  const signInApi = (email: string, password: string, headers: Record<string, string> = {}) => from(h.app, freshIp(), 'POST', '/api/v1/sessions', { email, password }, headers);
  async function passkeyIn(key: SoftAuthenticator) {
    const o = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey/options', {});
    return from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey', { response: key.assert(o.json) });
  }

  /**
   * What the old code let a squatter build on an address it does not own: signed up, signed in
   * without confirming, an authenticator app (with recovery codes), a passkey, a remembered
   * browser. This version refuses the session that building needs, so the test confirms the
   * address for a moment in the database and takes it back, leaving the account exactly as an
   * account from before this version would be.
   */
  async function squat(email: string) {
    expect((await signUp(email, SQUATTER_PW)).status).toBe(202);
    const user = (await h.s.accounts.findByEmail(email))!;
    const [mail] = await verifyMails(email);
    await db().updateTable('users').set({ email_verified_at: h.clock.now() }).where('id', '=', user.id).execute();
    const s = await signInApi(email, SQUATTER_PW);
    expect(s.status).toBe(201);
    const token = s.json.token as string;
    const device = decodeURIComponent(String(([] as string[]).concat(s.headers['set-cookie'] as string[]).find((c) => c.startsWith(`${DEVICE_COOKIE}=`))!.split(';')[0]!.split('=')[1]));
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    const code = TOTP.generate({ secret: Secret.fromBase32(en.json.secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: h.clock.now() });
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code }, bearer(token))).status).toBe(200);
    const key = new SoftAuthenticator('floodgate.test', PUBLIC);
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    expect((await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(token))).status).toBe(201);
    await db().updateTable('users').set({ email_verified_at: null }).where('id', '=', user.id).execute();
    h.clock.advance(MINUTE);
    return { userId: user.id, token, device, key, link: linkOf(mail!) };
  }

  it('gives a squatter no session: the right password answers exactly like a wrong one, and mails the link again under the resend rules', async () => {
    const victim = 'victim@corp.example';
    expect((await signUp(victim, SQUATTER_PW)).status).toBe(202);
    const userId = (await h.s.accounts.findByEmail(victim))!.id;
    expect(await verifyMails(victim)).toHaveLength(1);

    const right = await signInApi(victim, SQUATTER_PW);
    const wrong = await signInApi(victim, 'not the password at all');
    const unknown = await signInApi('nobody@corp.example', SQUATTER_PW);
    for (const r of [right, wrong, unknown]) expect(r.status).toBe(401);
    expect(strip(right.json)).toEqual(strip(wrong.json));
    expect(strip(right.json)).toEqual(strip(unknown.json));
    expect(stableHeaders(right.headers)).toEqual(stableHeaders(wrong.headers));
    expect(right.headers['set-cookie']).toBeUndefined();
    expect(await db().selectFrom('sessions').select('id').where('user_id', '=', userId).execute()).toEqual([]);
    expect((await eventsOf(userId)).filter((e) => e.type === 'signin.failed').map((e) => e.data.reason)).toEqual(['unverified', 'password']);

    // Reuse, don't re-mail: the link from sign-up is fresh, so no second mail yet; later the right
    // password (whoever knows it made the account) brings a new link, a wrong one never does.
    expect(await verifyMails(victim)).toHaveLength(1);
    h.clock.advance(6 * MINUTE);
    expect((await signInApi(victim, 'still not the password')).status).toBe(401);
    expect(await verifyMails(victim)).toHaveLength(1);
    expect((await signInApi(victim, SQUATTER_PW)).status).toBe(401);
    const mails = await verifyMails(victim);
    expect(mails).toHaveLength(2);
    expect(mails[1]).toMatchObject({ cause_kind: 'anonymous', user_id: userId });

    // The hosted page: the same 401 page for the right and the wrong password, with words for the
    // person who just signed up that say nothing about this address.
    // (An hour apart: this address has had its free attempts, and the growing delays are not the point here.)
    const login = async (email: string, password: string) => {
      h.clock.advance(HOUR);
      return page(h.app, 'POST', '/login', { email, password }, SAME_SITE, nextIp());
    };
    const pRight = await login(victim, SQUATTER_PW);
    const pWrong = await login(victim, 'not the password at all');
    const pUnknown = await login('nobody@corp.example', SQUATTER_PW);
    expect(pRight.status).toBe(401);
    expect(pRight.text).toBe(pWrong.text);
    expect(pRight.text.replace(victim, 'X')).toBe(pUnknown.text.replace('nobody@corp.example', 'X'));
    expect(pRight.text).toContain('If you just created your account, confirm your email address first: <a href="/verify/resend">we can send the link again</a>.');
    expect(pRight.cookies[SESSION_COOKIE]).toBeUndefined();

    // An account an operator created without emailVerified is unconfirmed too.
    await createUser(h, 'imported@corp.example', OWNER_PW, false);
    const imp = await signInApi('imported@corp.example', OWNER_PW);
    expect(imp.status).toBe(401);
    expect(strip(imp.json)).toEqual(strip(wrong.json));
  });

  it('asks for the link again on /verify/resend with one page for every address', async () => {
    expect((await signUp('resend-page@corp.example', SQUATTER_PW)).status).toBe(202);
    await createUser(h, 'confirmed@corp.example', OWNER_PW);
    h.clock.advance(6 * MINUTE);
    const g = await page(h.app, 'GET', '/verify/resend');
    expect(g.status).toBe(200);
    expect(g.text).toContain('<form method="post" action="/verify/resend">');
    const ip = nextIp();
    const answers = [];
    for (const email of ['resend-page@corp.example', 'confirmed@corp.example', 'nobody@corp.example']) {
      const r = await page(h.app, 'POST', '/verify/resend', { email }, SAME_SITE, ip);
      expect(r.status).toBe(200);
      answers.push(r.text);
    }
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toContain('If that address has an account waiting for confirmation, a new link is on its way.');
    expect(await verifyMails('resend-page@corp.example')).toHaveLength(2);
    expect(await verifyMails('confirmed@corp.example')).toHaveLength(0);
    expect((await page(h.app, 'POST', '/verify/resend', { email: 'x@corp.example' }, { origin: 'https://evil.example' }, ip)).status).toBe(403);
    expect((await page(h.app, 'POST', '/verify/resend', { email: 'not an address' }, SAME_SITE, ip)).status).toBe(400);
  });

  it('refuses what a squatter set up before this version: its passkey, its password and code, its session when it tries', async () => {
    const email = 'squatted-before@corp.example';
    const sq = await squat(email);
    const pk = await passkeyIn(sq.key);
    expect(pk.status).toBe(401);
    expect(pk.json).toMatchObject({ code: 'invalid_credentials', detail: 'The passkey could not be verified. Try again.' });
    expect(pk.headers['set-cookie']).toBeUndefined();
    const pw = await signInApi(email, SQUATTER_PW, { cookie: `${DEVICE_COOKIE}=${encodeURIComponent(sq.device)}` });
    expect(pw.status).toBe(401);
    expect(pw.json.code).toBe('invalid_credentials');
  });

  it('clears everything made before the address was confirmed when the mailbox owner confirms it, with a security event', async () => {
    const email = 'squatted-verify@corp.example';
    const sq = await squat(email);
    expect(await factorRows(sq.userId)).toEqual({ totp: 1, passkeys: 1, codes: 10, devices: 1 });
    // The owner opens the link the squatter's sign-up mailed to them, and confirms.
    const ok = await page(h.app, 'POST', '/verify', { token: new URL(sq.link).searchParams.get('token')! }, SAME_SITE);
    expect(ok.status).toBe(200);
    expect((await h.s.accounts.findById(sq.userId))!.email_verified_at).not.toBeNull();
    expect(await factorRows(sq.userId)).toEqual({ totp: 0, passkeys: 0, codes: 0, devices: 0 });
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(sq.token))).status).toBe(401);
    expect((await passkeyIn(sq.key)).status).toBe(401);
    const events = await eventsOf(sq.userId);
    expect(events).toContainEqual({ type: 'account.email_verified', data: { via: 'verification' } });
    expect(events).toContainEqual({ type: 'account.pre_verification_cleared', data: { via: 'verification', sessions: 1, devices: 1, totp: 1, passkeys: 1, recoveryCodes: 10 } });
    const revoked = await db().selectFrom('sessions').select(['revoked_reason']).where('user_id', '=', sq.userId).execute();
    expect(revoked).toEqual([{ revoked_reason: 'email_verified' }]);
  });

  it('lets the mailbox owner reset without the squatter\'s second factor, and clears it all with the reset', async () => {
    const email = 'squatted-reset@corp.example';
    const sq = await squat(email);
    await requestReset(h, email);
    const { token, resetLink } = await lastResetMail(h, email);
    // The reset page asks for no one-time code: the factor is not the owner's.
    const form = await page(h.app, 'GET', resetLink.slice(PUBLIC.length));
    expect(form.status).toBe(200);
    expect(form.text).not.toContain('name="otp"');
    const done = await from(h.app, freshIp(), 'POST', '/api/v1/password-resets/confirm', { token, password: OWNER_PW });
    expect(done.status).toBe(204);
    expect((await h.s.accounts.findById(sq.userId))!.email_verified_at).not.toBeNull();
    expect(await factorRows(sq.userId)).toEqual({ totp: 0, passkeys: 0, codes: 0, devices: 0 });
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(sq.token))).status).toBe(401);
    expect((await passkeyIn(sq.key)).status).toBe(401);
    expect((await signInApi(email, SQUATTER_PW)).status).toBe(401);
    // The owner is in with the new password alone, and the old confirmation link died with the reset.
    const owner = await signInApi(email, OWNER_PW);
    expect(owner.status).toBe(201);
    expect((await call(h.app, 'POST', '/api/v1/accounts/verify', { token: new URL(sq.link).searchParams.get('token')! })).status).toBe(400);
    const events = await eventsOf(sq.userId);
    expect(events).toContainEqual({ type: 'account.email_verified', data: { via: 'reset' } });
    expect(events.find((e) => e.type === 'account.pre_verification_cleared')?.data).toMatchObject({ via: 'reset', devices: 1, totp: 1, passkeys: 1, recoveryCodes: 10 });
  });
});
