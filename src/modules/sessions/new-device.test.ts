/**
 * New-sign-in notices and "this wasn't me", end to end: sign-in over HTTP, the outbox, the courier
 * over real SMTP, the link from the received mail followed through the page and the API, the
 * reset intake; on every database, with the manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, MINUTE } from '../../kernel/clock.js';
import { bearer, call, createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { form, freshIp, from } from '../../../test/helpers/recovery.js';
import { linksOf, startSmtpSink, type SmtpSink } from '../../../test/helpers/smtp.js';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';
import { DEVICE_COOKIE } from '../../http/context.js';
import { DeviceCookies, DEVICE_TTL_MS, DEVICES_PER_ACCOUNT } from './devices.js';

const PUBLIC = 'http://floodgate.test';
const PW = 'new device passphrase 7';
const CHROME = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
const FIREFOX = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0';
const SAFARI = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15';

describe.each(DIALECTS)('new-sign-in notices on %s', (dialect) => {
  let h: Harness;
  let sink: SmtpSink;
  const db = () => h.s.storage.db;

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await makeHarness(dialect, { env: { FLOODGATE_SMTP_URL: sink.url } });
  });
  afterAll(async () => {
    await h.close();
    await sink.close();
  });

  // A browser per user agent, each with its cookie jar: the device cookie is what makes a device known.
  const jar = new Map<string, string>();
  const deviceCookieIn = (r: { headers: Record<string, unknown> }) => {
    const c = ([] as string[]).concat((r.headers['set-cookie'] as string[] | string | undefined) ?? []).find((x) => x.startsWith(`${DEVICE_COOKIE}=`));
    return c ? { value: decodeURIComponent(c.split(';')[0]!.slice(DEVICE_COOKIE.length + 1)), attrs: c.split(';').slice(1).map((a) => a.trim()) } : null;
  };
  const cookieHeader = (value: string | null | undefined): Record<string, string> => (value ? { cookie: `${DEVICE_COOKIE}=${encodeURIComponent(value)}` } : {});
  /** Signs in from the browser `ua` (its own cookie jar), or with exactly the device cookie given (`cookie`, null: none). */
  async function signInAs(email: string, ua: string, ip = freshIp(), opts: { cookie?: string | null } = {}): Promise<{ token: string; sessionId: string; ip: string; device: string }> {
    const sent = opts.cookie !== undefined ? opts.cookie : jar.get(ua);
    const r = await from(h.app, ip, 'POST', '/api/v1/sessions', { email, password: PW }, { 'user-agent': ua, ...cookieHeader(sent) });
    expect(r.status, r.text).toBe(201);
    const device = deviceCookieIn(r)!.value;
    if (opts.cookie === undefined) jar.set(ua, device);
    return { token: r.json.token, sessionId: r.json.sessionId, ip, device };
  }
  const notices = (userId: string) => db().selectFrom('outbox').selectAll().where('user_id', '=', userId).where('type', '=', 'new_signin').orderBy('id').execute();
  const resets = (userId: string) => db().selectFrom('outbox').selectAll().where('user_id', '=', userId).where('type', '=', 'password_reset').orderBy('id').execute();
  const live = async (token: string) => (await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(token))).status === 200;
  /** The not-me token of a queued (not yet delivered) notice, from its sealed secret. */
  const tokenOf = (row: { id: string; sealed: string | null }) => new URL(h.s.outbox.openSecret(row)!.revokeLink!).searchParams.get('token')!;
  const eventsOf = async (userId: string) => (await db().selectFrom('security_events').selectAll().where('user_id', '=', userId).orderBy('id').execute()).map((e) => ({ type: e.type, data: JSON.parse(e.data) }));

  it('mails a notice for a new device, with one "this wasn\'t me" link on publicUrl; nothing for a known device or the first sign-in', async () => {
    const email = 'newdev@example.test';
    const userId = await createUser(h, email, PW);
    await signInAs(email, CHROME); // the account's first sign-in: nothing to compare with
    await signInAs(email, CHROME); // a device it knows
    expect(await notices(userId)).toHaveLength(0);

    const ff = await signInAs(email, FIREFOX);
    const [row] = await notices(userId);
    expect(row).toMatchObject({ channel: 'email', lane: 'priority', recipient: email, cause_kind: 'user', idempotency_key: `new_signin:${ff.sessionId}` });
    expect(JSON.parse(row!.payload)).toEqual({ device: 'Firefox 121 on Windows 10', at: new Date(h.clock.now()).toISOString(), ip: ff.ip });
    const token = tokenOf(row!);
    // Only the hash rests in the database, bound to that session; the raw token only sealed in the mail.
    const stored = await db().selectFrom('signin_notices').selectAll().where('user_id', '=', userId).execute();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ id: token.split('.')[0], session_id: ff.sessionId, expires_at: h.clock.now() + 7 * DAY });
    expect(JSON.stringify(stored)).not.toContain(token.split('.')[1]);
    expect(row!.payload).not.toContain(token.split('.')[1]);

    await signInAs(email, FIREFOX); // known now
    expect(await notices(userId)).toHaveLength(1);

    await h.s.courier.drain();
    const mails = sink.to(email);
    expect(mails).toHaveLength(1);
    const m = mails[0]!;
    expect(m.parsed.subject).toBe('New sign-in to your account');
    expect(m.parsed.text).toContain('Firefox 121 on Windows 10');
    expect(m.parsed.text).toContain(ff.ip);
    const links = linksOf(m);
    expect(links.every((u) => u.startsWith(`${PUBLIC}/`))).toBe(true);
    expect(links.filter((u) => u.includes('/signin/not-me'))).toEqual([`${PUBLIC}/signin/not-me?token=${token}`]);
    expect((await db().selectFrom('outbox').select('sealed').where('id', '=', row!.id).executeTakeFirstOrThrow()).sealed).toBeNull();
  });

  it('follows the link from the mail: GET changes nothing; the form revokes exactly that session, starts a reset, and works once', async () => {
    const email = 'notme-page@example.test';
    const userId = await createUser(h, email, PW);
    const mine = await signInAs(email, CHROME);
    const theirs = await signInAs(email, FIREFOX);
    const other = await signInAs(email, SAFARI);
    await h.s.courier.drain();
    const ffMail = sink.to(email).find((m) => (m.parsed.text ?? '').includes('Firefox 121'));
    expect(ffMail).toBeDefined();
    const link = linksOf(ffMail!).find((u) => u.startsWith(`${PUBLIC}/signin/not-me?token=`))!;
    const url = link.slice(PUBLIC.length);
    const token = new URL(link).searchParams.get('token')!;

    const snapshot = async () => ({
      sessions: await db().selectFrom('sessions').select(['id', 'revoked_at']).where('user_id', '=', userId).orderBy('id').execute(),
      tokens: await db().selectFrom('signin_notices').selectAll().where('user_id', '=', userId).orderBy('id').execute(),
      events: (await eventsOf(userId)).length,
      outbox: (await db().selectFrom('outbox').select('id').execute()).length,
      intake: (await db().selectFrom('reset_intake').select('id').execute()).length,
    });
    const before = await snapshot();
    for (let i = 0; i < 3; i++) {
      // Mail scanners and link previews open links: opening one must never act.
      const page = await from(h.app, freshIp(), 'GET', url);
      expect(page.status).toBe(200);
      expect(page.headers['cache-control']).toBe('no-store');
      expect(page.headers['referrer-policy']).toBe('no-referrer');
      expect(page.text).toContain('Firefox 121 on Windows 10');
      expect(page.text).toContain('<form method="post" action="/signin/not-me">');
      expect(page.text).not.toMatch(/<script|\son[a-z]+=/i);
    }
    expect(await snapshot()).toEqual(before);
    expect(await live(theirs.token)).toBe(true);

    // A post from another site is refused before it acts.
    const cross = await from(h.app, freshIp(), 'POST', '/signin/not-me', form({ token }), { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(await live(theirs.token)).toBe(true);

    const done = await from(h.app, freshIp(), 'POST', '/signin/not-me', form({ token }), { origin: PUBLIC });
    expect(done.status).toBe(200);
    expect(done.text).toContain('We signed that device out and sent you a link to choose a new password');
    expect(await live(theirs.token)).toBe(false);
    expect(await live(mine.token)).toBe(true);
    expect(await live(other.token)).toBe(true);
    const events = await eventsOf(userId);
    expect(events).toContainEqual({ type: 'session.revoked', data: { session: theirs.sessionId, reason: 'not_me' } });
    expect(events).toContainEqual({ type: 'signin.reported_not_me', data: expect.objectContaining({ session: theirs.sessionId, revoked: true }) });

    // The owner's reset: decided by the intake, mailed with its links.
    await h.s.resetIntake.processOnce();
    const [reset] = await resets(userId);
    expect(reset).toMatchObject({ recipient: email, cause_kind: 'user', state: 'queued' });
    await h.s.courier.drain();
    expect(sink.to(email).filter((m) => m.parsed.subject === 'Reset your password')).toHaveLength(1);

    // Single use, on the page and through the API alike.
    const again = await from(h.app, freshIp(), 'POST', '/signin/not-me', form({ token }), { origin: PUBLIC });
    expect(again.status).toBe(400);
    expect((await from(h.app, freshIp(), 'GET', url)).status).toBe(400);
    const api = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token });
    expect(api.status).toBe(400);
    expect(api.json.code).toBe('invalid_token');
    await h.s.resetIntake.processOnce();
    expect(await resets(userId)).toHaveLength(1);
  });

  it('answers the API with 204 once, then one generic 400 like any forged or malformed token', async () => {
    const email = 'notme-api@example.test';
    const userId = await createUser(h, email, PW);
    const mine = await signInAs(email, CHROME);
    const theirs = await signInAs(email, FIREFOX);
    const token = tokenOf((await notices(userId))[0]!);
    const [id, secret] = token.split('.') as [string, string];
    const forged = `${id}.${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    const strip = (j: any) => ({ ...j, requestId: undefined });
    const answers = [];
    for (const t of [forged, 'garbage', `${'A'.repeat(16)}.${'B'.repeat(43)}`]) {
      const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token: t });
      expect(r.status).toBe(400);
      answers.push(strip(r.json));
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0].code).toBe('invalid_token');
    expect(await live(theirs.token)).toBe(true);
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token }, { origin: 'https://evil.example' })).status).toBe(403);
    expect(await live(theirs.token)).toBe(true);

    const ok = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token });
    expect(ok.status).toBe(204);
    expect(await live(theirs.token)).toBe(false);
    expect(await live(mine.token)).toBe(true);
    await h.s.resetIntake.processOnce();
    expect(await resets(userId)).toHaveLength(1);
    const twice = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token });
    expect(twice.status).toBe(400);
    expect(strip(twice.json)).toEqual(answers[0]);
  });

  it('starts the owner\'s reset even while the reset flow is challenged, and through a quiet period', async () => {
    const email = 'notme-guarded@example.test';
    const userId = await createUser(h, email, PW);
    await signInAs(email, CHROME);
    const theirs = await signInAs(email, FIREFOX);
    const token = tokenOf((await notices(userId))[0]!);
    // The owner said "I didn't request this" to an earlier reset: reset mail is quiet for a day.
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email })).status).toBe(202);
    await h.s.resetIntake.processOnce();
    const [first] = await resets(userId);
    const denyToken = new URL(h.s.outbox.openSecret(first!)!.denyLink!).searchParams.get('token')!;
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets/deny', { token: denyToken })).status).toBe(204);
    h.clock.advance(5 * MINUTE);
    // And the reset flow is under attack: anonymous requests must solve a challenge.
    await h.s.guard.override('reset', 'challenge', 'test');
    try {
      expect((await from(h.app, freshIp(), 'POST', '/api/v1/password-resets', { email })).status).toBe(428);
      expect((await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token })).status).toBe(204);
      expect(await live(theirs.token)).toBe(false);
      await h.s.resetIntake.processOnce();
      const all = await resets(userId);
      expect(all).toHaveLength(2);
      expect(all[1]).toMatchObject({ cause_kind: 'user', state: 'queued' });
    } finally {
      await h.s.guard.override('reset', null, 'test');
    }
  });

  it('notifies a passkey sign-in from a new device too', async () => {
    const email = 'notme-passkey@example.test';
    const userId = await createUser(h, email, PW);
    const first = await signInAs(email, CHROME);
    const key = new SoftAuthenticator('floodgate.test', PUBLIC);
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(first.token));
    expect(opts.status).toBe(200);
    expect((await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(first.token))).status).toBe(201);
    const passkeyIn = async (ua: string) => {
      const o = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey/options', {}, { 'user-agent': ua });
      const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/passkey', { response: key.assert(o.json) }, { 'user-agent': ua, ...cookieHeader(jar.get(ua)) });
      expect(r.status, r.text).toBe(201);
      jar.set(ua, deviceCookieIn(r)!.value);
      return r.json.sessionId as string;
    };
    await passkeyIn(CHROME); // the browser it knows (its device cookie)
    expect(await notices(userId)).toHaveLength(0);
    const sessionId = await passkeyIn(SAFARI);
    const rows = await notices(userId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ idempotency_key: `new_signin:${sessionId}`, lane: 'priority' });
    expect(JSON.parse(rows[0]!.payload).device).toBe('Safari 17 on Mac OS 10.15.7 (Apple Macintosh)');
    const stored = await db().selectFrom('signin_notices').select('session_id').where('user_id', '=', userId).execute();
    expect(stored).toEqual([{ session_id: sessionId }]);
    const ev = (await eventsOf(userId)).filter((e) => e.type === 'signin.succeeded').at(-1)!;
    expect(ev.data).toMatchObject({ session: sessionId, method: 'passkey', newDevice: true, passkey: expect.any(String) });
    // The passkey sign-in left its own device cookie: Safari is known now.
    await passkeyIn(SAFARI);
    expect(await notices(userId)).toHaveLength(1);
  });

  it('calls a sign-in new when it brings no device cookie known for the account, whatever its user agent', async () => {
    const email = 'devcookie@example.test';
    const other = 'devcookie-other@example.test';
    const userId = await createUser(h, email, PW);
    await createUser(h, other, PW);
    const mine = await signInAs(email, CHROME); // the owner's browser, first sign-in: no notice
    expect(await notices(userId)).toHaveLength(0);
    // Someone who copies the owner's user agent, without the owner's cookie: a new device.
    const copycat = await signInAs(email, CHROME, freshIp(), { cookie: null });
    let rows = await notices(userId);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.idempotency_key).toBe(`new_signin:${copycat.sessionId}`);
    expect(JSON.parse(rows[0]!.payload).device).toBe('Chrome 120 on Linux');
    // Another account's cookie, and a forged one (a real device id, a wrong secret), prove nothing.
    const theirs = await signInAs(other, FIREFOX, freshIp(), { cookie: null });
    await signInAs(email, CHROME, freshIp(), { cookie: theirs.device });
    const [id] = mine.device.split('.');
    await signInAs(email, CHROME, freshIp(), { cookie: `${id}.${'A'.repeat(43)}` });
    await signInAs(email, CHROME, freshIp(), { cookie: 'garbage~' + 'x'.repeat(2000) });
    rows = await notices(userId);
    expect(rows).toHaveLength(4);
    // The owner's own browser, even with another user agent after an update: known.
    const again = await signInAs(email, FIREFOX, freshIp(), { cookie: mine.device });
    expect(await notices(userId)).toHaveLength(4);
    const ev = (await eventsOf(userId)).filter((e) => e.type === 'signin.succeeded').at(-1)!;
    expect(ev.data).toMatchObject({ session: again.sessionId, newDevice: false });
    // One browser remembers several accounts: the owner's token stays next to the other one's.
    const shared = await signInAs(other, FIREFOX, freshIp(), { cookie: again.device });
    expect(shared.device.split('~').slice(0, 2)).toEqual([expect.any(String), again.device.split('~')[0]]);
    await signInAs(email, FIREFOX, freshIp(), { cookie: shared.device });
    expect(await notices(userId)).toHaveLength(4);

    // The cookie: HttpOnly, SameSite=Lax, Path=/, long-lived; only its hash is stored, bound to the account.
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions', { email, password: PW }, { 'user-agent': CHROME, ...cookieHeader(mine.device) });
    const c = deviceCookieIn(r)!;
    expect(c.attrs).toEqual(expect.arrayContaining(['HttpOnly', 'SameSite=Lax', 'Path=/', `Max-Age=${365 * 24 * 3600}`]));
    expect(c.attrs).not.toContain('Secure'); // the harness's public URL is http
    expect(c.value).toBe(mine.device);
    const stored = await db().selectFrom('devices').selectAll().where('user_id', '=', userId).execute();
    expect(stored.map((d) => d.id)).toContain(id);
    expect(JSON.stringify(stored)).not.toContain(mine.device.split('.')[1]);
  });

  it('remembers at most 50 devices per account, forgets expired ones, and a device stays known a year from its last sign-in', async () => {
    const userId = await createUser(h, 'many-devices@example.test', PW);
    const devices = new DeviceCookies(h.clock);
    const count = async () => (await db().selectFrom('devices').select('id').where('user_id', '=', userId).execute()).length;
    const first = await devices.remember(db(), null, userId);
    h.clock.advance(MINUTE);
    for (let i = 0; i < DEVICES_PER_ACCOUNT + 5; i++) {
      // All in the same millisecond: the one just added is never the one pruned.
      const d = await devices.remember(db(), null, userId);
      expect(await devices.known(db(), d.cookie, userId)).toBe(d.deviceId);
    }
    expect(await count()).toBe(DEVICES_PER_ACCOUNT);
    expect(await devices.known(db(), first.cookie, userId)).toBeNull(); // the least recently used went first
    const kept = await devices.remember(db(), null, userId);
    h.clock.advance(DEVICE_TTL_MS - MINUTE);
    const again = await devices.remember(db(), kept.cookie, userId); // used again: another year
    expect(again).toMatchObject({ known: true, deviceId: kept.deviceId, cookie: kept.cookie });
    h.clock.advance(DEVICE_TTL_MS - MINUTE);
    expect(await devices.known(db(), kept.cookie, userId)).toBe(kept.deviceId);
    h.clock.advance(2 * MINUTE);
    expect(await devices.known(db(), kept.cookie, userId)).toBeNull();
    await devices.remember(db(), null, userId); // a new one prunes the expired
    expect(await count()).toBe(1);
  });

  it('still reports a sign-in whose session already ended, and still starts the reset', async () => {
    const email = 'notme-gone@example.test';
    const userId = await createUser(h, email, PW);
    await signInAs(email, CHROME);
    const theirs = await signInAs(email, FIREFOX);
    const token = tokenOf((await notices(userId))[0]!);
    expect((await call(h.app, 'DELETE', '/api/v1/sessions/current', undefined, bearer(theirs.token))).status).toBe(204);
    const done = await from(h.app, freshIp(), 'POST', '/signin/not-me', form({ token }), { origin: PUBLIC });
    expect(done.status).toBe(200);
    expect(done.text).toContain('That device was already signed out. We sent you a link to choose a new password.');
    expect((await eventsOf(userId)).filter((e) => e.type === 'signin.reported_not_me')).toEqual([{ type: 'signin.reported_not_me', data: expect.objectContaining({ session: theirs.sessionId, revoked: false }) }]);
    await h.s.resetIntake.processOnce();
    expect(await resets(userId)).toHaveLength(1);
  });

  it('expires the link after 7 days: the page and the API refuse it and nothing is revoked', async () => {
    const email = 'notme-late@example.test';
    const userId = await createUser(h, email, PW);
    await signInAs(email, CHROME);
    const theirs = await signInAs(email, FIREFOX);
    const token = tokenOf((await notices(userId))[0]!);
    h.clock.advance(7 * DAY - MINUTE);
    expect((await from(h.app, freshIp(), 'GET', `/signin/not-me?token=${encodeURIComponent(token)}`)).status).toBe(200);
    h.clock.advance(2 * MINUTE);
    expect((await from(h.app, freshIp(), 'GET', `/signin/not-me?token=${encodeURIComponent(token)}`)).status).toBe(400);
    const api = await from(h.app, freshIp(), 'POST', '/api/v1/sessions/not-me', { token });
    expect(api.status).toBe(400);
    expect(api.json.code).toBe('invalid_token');
    const page = await from(h.app, freshIp(), 'POST', '/signin/not-me', form({ token }), { origin: PUBLIC });
    expect(page.status).toBe(400);
    const s = await db().selectFrom('sessions').select('revoked_at').where('id', '=', theirs.sessionId).executeTakeFirstOrThrow();
    expect(s.revoked_at).toBeNull();
    expect(await resets(userId)).toHaveLength(0);
    // The next notice of the account takes the dead token away.
    await signInAs(email, SAFARI);
    const left = await db().selectFrom('signin_notices').select('session_id').where('user_id', '=', userId).execute();
    expect(left).toHaveLength(1);
    expect(left[0]!.session_id).not.toBe(theirs.sessionId);
  });
});
