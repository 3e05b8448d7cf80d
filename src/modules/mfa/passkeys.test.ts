import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE, SECOND } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { from } from '../../../test/helpers/recovery.js';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';

const PW = 'a passphrase for keys 42';
const ORIGIN = 'http://floodgate.test';
const RP = 'floodgate.test';

describe.each(DIALECTS)('passkeys on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  async function register(token: string, key: SoftAuthenticator, extra: Record<string, unknown> = {}) {
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    expect(opts.status).toBe(200);
    return call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json), ...extra }, bearer(token));
  }

  async function passkeySignIn(key: SoftAuthenticator, email?: string, over: Parameters<SoftAuthenticator['assert']>[1] = {}) {
    const opts = await call(h.app, 'POST', '/api/v1/sessions/passkey/options', email ? { email } : {});
    expect(opts.status).toBe(200);
    return { opts: opts.json, res: await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: key.assert(opts.json, over) }) };
  }

  it('registers a passkey made by a software authenticator, lists, renames and removes it', async () => {
    const email = 'keys@example.test';
    const userId = await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const key = new SoftAuthenticator(RP, ORIGIN);
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    expect(opts.json).toMatchObject({ rp: { id: RP, name: 'Floodgate' }, user: { name: email }, attestation: 'none', authenticatorSelection: { userVerification: 'required', residentKey: 'required', requireResidentKey: true } });
    expect(opts.json.challenge).toMatch(/^[A-Za-z0-9_-]{32,}$/);
    const reg = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json), name: 'My laptop' }, bearer(token));
    expect(reg.status).toBe(201);
    expect(reg.json.passkey).toMatchObject({ name: 'My laptop', transports: ['internal'], lastUsedAt: null });
    // The first factor turns MFA on: recovery codes come with it.
    expect(reg.json.recoveryCodes).toHaveLength(10);
    // The same challenge cannot register twice.
    const again = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(token));
    expect(again).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
    // Registering the same credential again is refused.
    const dup = await register(token, key);
    expect(dup.status).toBe(409);

    const list = await call(h.app, 'GET', '/api/v1/me/passkeys', undefined, bearer(token));
    expect(list.json.passkeys).toHaveLength(1);
    const id = list.json.passkeys[0].id;
    const renamed = await call(h.app, 'PATCH', `/api/v1/me/passkeys/${id}`, { name: '  Work\u0000 key  ' }, bearer(token));
    expect(renamed).toMatchObject({ status: 200, json: { name: 'Work key' } });
    const mfa = await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token));
    expect(mfa.json).toMatchObject({ enabled: true, passkeys: 1, recoveryCodesLeft: 10 });
    // The public key is stored, nothing secret: the key pair never left the authenticator.
    const row = await h.s.storage.db.selectFrom('mfa_passkeys').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
    expect(row.credential_id).toBe(key.id);

    const del = await call(h.app, 'DELETE', `/api/v1/me/passkeys/${id}`, undefined, bearer(token));
    expect(del.status).toBe(204);
    expect((await call(h.app, 'DELETE', `/api/v1/me/passkeys/${id}`, undefined, bearer(token))).status).toBe(404);
    expect((await call(h.app, 'GET', '/api/v1/me/mfa', undefined, bearer(token))).json).toMatchObject({ enabled: false, passkeys: 0, recoveryCodesLeft: 0 });
    const notices = await h.s.storage.db.selectFrom('outbox').select(['payload', 'lane', 'cause_kind']).where('recipient', '=', email).where('type', '=', 'mfa_changed').execute();
    expect(notices.map((n) => JSON.parse(n.payload).change).sort()).toEqual(['passkey_added', 'passkey_removed']);
    expect(notices.every((n) => n.lane === 'priority' && n.cause_kind === 'user')).toBe(true);
    const events = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(token));
    expect(events.json.events.map((e: any) => e.type)).toEqual(expect.arrayContaining(['mfa.passkey_added', 'mfa.passkey_removed']));
  });

  it('signs in with a passkey alone (discoverable: no email)', async () => {
    const email = 'alone@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const key = new SoftAuthenticator(RP, ORIGIN);
    expect((await register(token, key)).status).toBe(201);
    const { opts, res } = await passkeySignIn(key);
    expect(opts).toMatchObject({ rpId: RP, userVerification: 'required' });
    expect(opts.allowCredentials ?? []).toEqual([]);
    expect(res.status).toBe(201);
    expect(String(res.headers['set-cookie'])).toMatch(/floodgate_session=.*HttpOnly/);
    const sessions = await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(res.json.token));
    expect(sessions.json.sessions.find((s: any) => s.current).authMethod).toBe('passkey');
    const keys = await call(h.app, 'GET', '/api/v1/me/passkeys', undefined, bearer(res.json.token));
    expect(keys.json.passkeys[0].lastUsedAt).not.toBeNull();
  });

  it('signs in with a passkey as the second factor after the password', async () => {
    const email = 'second@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    // TOTP first, then a passkey: either can complete a sign-in that the password began.
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: TOTP.generate({ secret: Secret.fromBase32(en.json.secret), timestamp: h.clock.now() }) }, bearer(token));
    const key = new SoftAuthenticator(RP, ORIGIN, { counter: false });
    const reg = await register(token, key);
    expect(reg.status).toBe(201);
    expect(reg.json.recoveryCodes).toBeNull(); // MFA was already on, with codes
    const pw = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW });
    expect(pw).toMatchObject({ status: 401, json: { code: 'mfa_required' } });
    // Discoverable: the browser finds the passkey itself; an email in the request changes nothing.
    const { opts, res } = await passkeySignIn(key, email);
    expect(opts.allowCredentials ?? []).toEqual([]);
    expect(res.status).toBe(201);
    // Platform passkeys report a counter of 0 forever: that is allowed.
    expect((await passkeySignIn(key, email)).res.status).toBe(201);
  });

  it('refuses a replayed assertion, a wrong origin, no user verification, an expired challenge and a counter that goes back', async () => {
    const email = 'refuse@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const key = new SoftAuthenticator(RP, ORIGIN);
    expect((await register(token, key)).status).toBe(201);

    const opts = (await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {})).json;
    const assertion = key.assert(opts);
    expect((await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: assertion })).status).toBe(201);
    const replay = await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: assertion });
    expect(replay).toMatchObject({ status: 401, json: { code: 'invalid_credentials' } });

    expect((await passkeySignIn(key, undefined, { origin: 'https://evil.example' })).res.status).toBe(401);
    expect((await passkeySignIn(key, undefined, { rpId: 'evil.example' })).res.status).toBe(401);
    key.userVerification = false;
    expect((await passkeySignIn(key)).res.status).toBe(401);
    key.userVerification = true;

    const late = (await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {})).json;
    h.clock.advance(5 * MINUTE + SECOND);
    expect((await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: key.assert(late) })).status).toBe(401);

    // A cloned authenticator shows up as a counter that does not grow.
    const fresh = (await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {})).json;
    key.signCount = 0; // the next assertion says 1: not above what the server saw
    expect((await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: key.assert(fresh) })).status).toBe(401);
    const failures = await h.s.storage.db.selectFrom('security_events').select('data').where('type', '=', 'signin.failed').orderBy('id', 'desc').limit(1).execute();
    expect(JSON.parse(failures[0]!.data).detail).toMatch(/counter/i);

    // A key of another account under the right credential id does not verify.
    const stranger = new SoftAuthenticator(RP, ORIGIN);
    const o = (await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {})).json;
    const forged = stranger.assert(o);
    expect((await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: { ...forged, id: key.id, rawId: key.id } })).status).toBe(401);

    const events = await call(h.app, 'GET', '/api/v1/me/security-events?limit=50', undefined, bearer(token));
    expect(events.json.events.filter((e: any) => e.type === 'signin.failed' && e.data.reason === 'passkey').length).toBeGreaterThanOrEqual(5);
  });

  it('sign-in options do not tell who has passkeys: the same for an account with passkeys, without, an unknown email and none', async () => {
    await createUser(h, 'has-keys@example.test', PW);
    const token = await signIn(h, 'has-keys@example.test', PW);
    const k1 = new SoftAuthenticator(RP, ORIGIN);
    const k2 = new SoftAuthenticator(RP, ORIGIN, { counter: false });
    expect((await register(token, k1)).status).toBe(201);
    expect((await register(token, k2)).status).toBe(201);
    await createUser(h, 'nokeys@example.test', PW);
    const ask = async (body: Record<string, unknown>) => {
      const r = await call(h.app, 'POST', '/api/v1/sessions/passkey/options', body);
      expect(r.status).toBe(200);
      const { challenge, ...rest } = r.json;
      expect(challenge).toMatch(/^[A-Za-z0-9_-]{32,}$/);
      return { rest, headers: Object.keys(r.headers).filter((k) => k !== 'date' && k !== 'x-request-id' && k !== 'content-length').sort() };
    };
    const withKeys = await ask({ email: 'has-keys@example.test' });
    expect(JSON.stringify(withKeys)).not.toContain(k1.id);
    expect(JSON.stringify(withKeys)).not.toContain(k2.id);
    expect(withKeys.rest.allowCredentials ?? []).toEqual([]);
    for (const body of [{ email: 'nokeys@example.test' }, { email: 'nobody@example.test' }, {}]) expect(await ask(body)).toEqual(withKeys);
    // And the passkey still signs in, found by the browser (discoverable), whatever email was sent.
    expect((await passkeySignIn(k1, 'nobody@example.test')).res.status).toBe(201);
  });

  it('counts passkey sign-in ceremonies per IPv6 /64: rotating addresses in one /64 buys nothing', async () => {
    const in64 = (i: number) => `2001:db8:77:1:${(i + 1).toString(16)}::${(i * 7 + 3).toString(16)}`;
    const options = (ip: string) => from(h.app, ip, 'POST', '/api/v1/sessions/passkey/options', {});
    // 30 ceremonies a minute per source: the 31st address of the same /64 is refused.
    for (let i = 0; i < 30; i++) expect((await options(in64(i))).status).toBe(200);
    const refused = await options(in64(30));
    expect(refused).toMatchObject({ status: 429, json: { code: 'rate_limited' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another /64 (of another network) is its own source.
    expect((await options('2001:db8:99:2::1')).status).toBe(200);
    h.clock.advance(MINUTE + SECOND);
    expect((await options(in64(31))).status).toBe(200);
  });

  it('counts failed passkey sign-ins per IPv6 /64: 21 addresses of one /64 are one source', async () => {
    const options = (ip: string) => from(h.app, ip, 'POST', '/api/v1/sessions/passkey/options', {});
    // 20 failed sign-ins per 10 minutes per source, from 21 addresses of one /64.
    const stranger = new SoftAuthenticator(RP, ORIGIN); // never registered
    const fail = async (ip: string) => {
      const o = await options(ip);
      return (await from(h.app, ip, 'POST', '/api/v1/sessions/passkey', { response: stranger.assert(o.json) })).status;
    };
    for (let i = 0; i < 20; i++) expect(await fail(`2001:db8:78:5:${i.toString(16)}::1`)).toBe(401);
    expect(await fail('2001:db8:78:5:ffff::1')).toBe(429);
    // IPv4 counts address by address (a /24 is a network, not a source).
    expect(await fail('198.51.100.20')).toBe(401);
    h.clock.advance(10 * MINUTE + SECOND);
    expect(await fail('2001:db8:78:5:abcd::1')).toBe(401);
  });

  it('adding or removing a passkey needs a recent sign-in, and can sign out other sessions', async () => {
    const email = 'recent@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    h.clock.advance(11 * MINUTE);
    const other = await signIn(h, email, PW);
    const stale = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    expect(stale).toMatchObject({ status: 403, json: { reason: 'reauthentication_required' } });
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', { password: PW }, bearer(token));
    expect(opts.status).toBe(200);
    const key = new SoftAuthenticator(RP, ORIGIN);
    // The challenge belongs to the session that asked for it.
    const elsewhere = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(other));
    expect(elsewhere.status).toBe(400);
    const opts2 = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', { password: PW }, bearer(token));
    const reg = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts2.json), revokeOtherSessions: true }, bearer(token));
    expect(reg.status).toBe(201);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(other))).status).toBe(401);
    const id = reg.json.passkey.id;
    expect((await call(h.app, 'DELETE', `/api/v1/me/passkeys/${id}`, {}, bearer(token))).status).toBe(403);
    expect((await call(h.app, 'DELETE', `/api/v1/me/passkeys/${id}`, { password: 'wrong password 123' }, bearer(token))).status).toBe(403);
    expect((await call(h.app, 'DELETE', `/api/v1/me/passkeys/${id}`, { password: PW }, bearer(token))).status).toBe(204);
  });

  it('limits passkey sign-in failures per source', async () => {
    const key = new SoftAuthenticator(RP, ORIGIN); // never registered
    let last = 0;
    for (let i = 0; i < 21; i++) last = (await passkeySignIn(key)).res.status;
    expect(last).toBe(429);
    h.clock.advance(21 * MINUTE);
    expect((await passkeySignIn(key)).res.status).toBe(401);
  });
});
