import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/context.js';
import { CONSOLE_COOKIE, consoleAccess } from '../../src/web/console/index.js';
import { csrfToken } from '../../src/web/csrf.js';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../helpers/harness.js';
import { cookie, csrfIn, expectCleanPage, nextIp, ORIGIN, page, SAME_SITE } from '../helpers/web.js';
import { SoftAuthenticator } from '../helpers/webauthn.js';

const PW = 'console operator passphrase 1';
const CLI = { id: 'cli', name: 'cli' };

describe.each(DIALECTS)('operator console on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_BLAST_RADIUS: '3' } }); });
  afterAll(async () => { await h.close(); });

  /** An account with an authenticator app; returns a function giving a fresh code each call. */
  async function withTotp(email: string): Promise<() => string> {
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    const code = (ms: number) => TOTP.generate({ secret: Secret.fromBase32(en.json.secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: code(h.clock.now()) }, bearer(token))).status).toBe(200);
    return () => { h.clock.advance(30_000); return code(h.clock.now()); };
  }

  async function operator(email: string): Promise<{ hdr: Record<string, string>; csrf: string; next: () => string }> {
    const next = await withTotp(email);
    await consoleAccess(h.s).grant(email, CLI, 'test');
    const r = await page(h.app, 'POST', '/console/login', { email, password: PW, otp: next() }, SAME_SITE, nextIp());
    expect(r.status).toBe(303);
    const hdr = cookie(CONSOLE_COOKIE, r.cookies[CONSOLE_COOKIE]!.value);
    const csrf = csrfIn((await page(h.app, 'GET', '/console', undefined, hdr)).text);
    return { hdr, csrf, next };
  }

  it('signs an operator in with password and TOTP into a separate, strict, 12-hour cookie', async () => {
    const next = await withTotp('op1@example.test');
    const g = await page(h.app, 'GET', '/console/login');
    expect(g.status).toBe(200);
    expectCleanPage(g.text);
    expect(g.text).toMatch(/<label for="otp">One-time code<\/label>/);
    // Not yet granted: the right password and code are answered exactly like a wrong password.
    const notGranted = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: PW, otp: next() }, SAME_SITE, nextIp());
    expect(notGranted.status).toBe(401);
    expect(notGranted.text).toContain('The email, password or code is incorrect.');
    expect(notGranted.text).not.toContain('no access');
    await consoleAccess(h.s).grant('op1@example.test', CLI, 'test');
    const wrongPw = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: 'not the password 1', otp: next() }, SAME_SITE, nextIp());
    expect(wrongPw.status).toBe(401);
    expect(wrongPw.text).toContain('The email, password or code is incorrect.');
    const noCode = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: PW }, SAME_SITE, nextIp());
    expect(noCode.status).toBe(401);
    const badCode = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: PW, otp: '000000' }, SAME_SITE, nextIp());
    expect(badCode.status).toBe(401);
    expect(badCode.cookies[CONSOLE_COOKIE]).toBeUndefined();
    const cross = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: PW, otp: next() }, { origin: 'https://evil.example' }, nextIp());
    expect(cross.status).toBe(403);

    const ok = await page(h.app, 'POST', '/console/login', { email: 'op1@example.test', password: PW, otp: next() }, SAME_SITE, nextIp());
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/console');
    const c = ok.cookies[CONSOLE_COOKIE]!;
    expect(c.attrs).toMatch(/Max-Age=43200/);
    expect(c.attrs).toMatch(/Path=\/console/);
    expect(c.attrs).toMatch(/HttpOnly/);
    expect(c.attrs).toMatch(/SameSite=Strict/);
    expect(ok.cookies[SESSION_COOKIE]).toBeUndefined();
    // Stored hashed: the secret half of the token is nowhere in the table.
    const rows = await h.s.storage.db.selectFrom('console_sessions').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(c.value.split('.')[1]);
    expect(rows.find((r) => c.value.startsWith(r.id + '.'))?.auth_method).toBe('password+totp');
    // The console cookie is not a user session, and a user session is not a console session.
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, c.value))).status).toBe(401);
    const userSess = await signIn(h, 'op1@example.test', PW, { otp: next() });
    expect((await page(h.app, 'GET', '/console', undefined, cookie(CONSOLE_COOKIE, userSess))).headers.location).toBe('/console/login');
    const home = await page(h.app, 'GET', '/console', undefined, cookie(CONSOLE_COOKIE, c.value));
    expect(home.status).toBe(200);
    expectCleanPage(home.text);
    expect(home.text).toContain('<script type="module" src="/assets/console.js"></script>');
    expect(home.text).toMatch(/<tr data-flow="reset">/);
    // Recorded on the operator's account and in the audit log.
    const events = await h.s.events.listForUser(h.s.storage.db, (await h.s.accounts.findByEmail('op1@example.test'))!.id, 5);
    expect(events.map((e) => e.type)).toContain('console.signed_in');
    expect((await h.s.audit.list()).find((a) => a.action === 'console.sign_in')).toMatchObject({ operator: 'op1@example.test', target: 'op1@example.test' });
  });

  it('signs an operator in with a passkey alone, for a challenge issued by the console, and only with the grant', async () => {
    const email = 'op-passkey@example.test';
    const userId = await createUser(h, email, PW);
    const token = await signIn(h, email, PW);
    const key = new SoftAuthenticator('floodgate.test', ORIGIN);
    const regOpts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    expect((await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(regOpts.json) }, bearer(token))).status).toBe(201);
    const headers = (ip: string) => ({ ...SAME_SITE, 'x-forwarded-for': ip });
    const consoleTry = async (ip = nextIp()) => {
      const opts = await call(h.app, 'POST', '/console/login/passkey/options', {}, headers(ip));
      expect(opts.status).toBe(200);
      expect(opts.json.userVerification).toBe('required');
      return call(h.app, 'POST', '/console/login/passkey', { response: key.assert(opts.json) }, headers(ip));
    };
    // A passkey-only account: the password form says what else works.
    await consoleAccess(h.s).grant(email, CLI, 'test');
    const pwOnly = await page(h.app, 'POST', '/console/login', { email, password: PW }, SAME_SITE, nextIp());
    expect(pwOnly.status).toBe(401);
    expect(pwOnly.text).toContain('or sign in with your passkey');
    expect(pwOnly.text).toContain('id="console-passkey"');
    expect(pwOnly.text).toContain('<script type="module" src="/assets/passkey.js"></script>');
    await consoleAccess(h.s).revokeGrant(email, CLI, 'test');

    // Without the grant: a valid passkey gets no console session, and the passkey's one generic failure.
    const refused = await consoleTry();
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ code: 'invalid_credentials', detail: 'The passkey could not be verified. Try again.' });
    expect(String(refused.headers['set-cookie'] ?? '')).not.toContain(CONSOLE_COOKIE);

    await consoleAccess(h.s).grant(email, CLI, 'test');
    // While the sign-in flow asks for proof of work (a stuffing flood), a passkey still opens the
    // console: the passkey script cannot solve a challenge, and an assertion cannot be stuffed.
    await h.s.guard.override('signin', 'challenge', 'test');
    const duringFlood = await consoleTry();
    expect(duringFlood.status).toBe(204);
    await h.s.guard.override('signin', null, 'test');
    const ok = await consoleTry();
    expect(ok.status).toBe(204);
    const set = ([] as string[]).concat(ok.headers['set-cookie'] ?? []).find((c) => c.startsWith(`${CONSOLE_COOKIE}=`))!;
    expect(set).toMatch(/HttpOnly/);
    expect(set).toMatch(/SameSite=Strict/);
    expect(set).toMatch(/Path=\/console/);
    const value = decodeURIComponent(set.split(';')[0]!.split('=')[1]!);
    const home = await page(h.app, 'GET', '/console', undefined, cookie(CONSOLE_COOKIE, value));
    expect(home.status).toBe(200);
    const rows = await h.s.storage.db.selectFrom('console_sessions').selectAll().where('user_id', '=', userId).execute();
    expect(rows.find((r) => value.startsWith(r.id + '.'))?.auth_method).toBe('passkey');
    expect((await h.s.audit.list()).find((a) => a.action === 'console.sign_in' && a.target === email)?.reason).toBe('signed in with passkey');
    const events = await h.s.events.listForUser(h.s.storage.db, userId, 10);
    expect(events.map((e) => e.type)).toContain('console.signed_in');

    // A challenge from the account sign-in does not open the console, nor a console one the account.
    const userOpts = await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {}, headers(nextIp()));
    const crossed = await call(h.app, 'POST', '/console/login/passkey', { response: key.assert(userOpts.json) }, headers(nextIp()));
    expect(crossed.status).toBe(401);
    const consoleOpts = await call(h.app, 'POST', '/console/login/passkey/options', {}, headers(nextIp()));
    expect((await call(h.app, 'POST', '/api/v1/sessions/passkey', { response: key.assert(consoleOpts.json) }, headers(nextIp()))).status).toBe(401);
    // Another site cannot start or finish it.
    expect((await call(h.app, 'POST', '/console/login/passkey/options', {}, { origin: 'https://evil.example' })).status).toBe(403);
    const evilOpts = await call(h.app, 'POST', '/console/login/passkey/options', {}, headers(nextIp()));
    expect((await call(h.app, 'POST', '/console/login/passkey', { response: key.assert(evilOpts.json) }, { origin: 'https://evil.example' })).status).toBe(403);
    // A wrong signature is the generic 401, and no session.
    const badOpts = await call(h.app, 'POST', '/console/login/passkey/options', {}, headers(nextIp()));
    const bad = key.assert(badOpts.json);
    bad.response.signature = Buffer.from('not a signature').toString('base64url');
    const badTry = await call(h.app, 'POST', '/console/login/passkey', { response: bad }, headers(nextIp()));
    expect(badTry.status).toBe(401);
    expect(badTry.headers['set-cookie']).toBeUndefined();
  });

  it('refuses an operator without two-step verification, with a message saying what to do', async () => {
    await createUser(h, 'nomfa@example.test', PW);
    await consoleAccess(h.s).grant('nomfa@example.test', CLI, 'test');
    const r = await page(h.app, 'POST', '/console/login', { email: 'nomfa@example.test', password: PW, otp: '123456' }, SAME_SITE, nextIp());
    expect(r.status).toBe(403);
    expect(r.text).toContain('The console needs two-step verification on your account');
    expect(r.cookies[CONSOLE_COOKIE]).toBeUndefined();
  });

  it('answers a non-operator\'s right password exactly like a wrong one: same page, same throttle, same events (no password oracle)', async () => {
    const email = 'not-an-operator@example.test';
    const userId = await createUser(h, email, PW);
    const attempt = (password: string) => page(h.app, 'POST', '/console/login', { email, password, otp: '123456' }, SAME_SITE, nextIp());
    const right = await attempt(PW);
    const wrong = await attempt('not the password at all 1');
    expect(right.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(right.text).toBe(wrong.text);
    expect(right.text).toContain('The email, password or code is incorrect.');
    expect(right.cookies[CONSOLE_COOKIE]).toBeUndefined();
    // Counted by the sign-in throttle, like /login's failures: past the free attempts the account
    // is slowed down everywhere, the right password at the console included.
    for (let i = 0; i < 3; i++) expect((await attempt(`wrong guess number ${i}`)).status).toBe(401);
    expect((await attempt(PW)).status).toBe(429);
    const api = await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW }, { 'x-forwarded-for': nextIp() });
    expect(api.status).toBe(429);
    expect(Number(api.headers['retry-after'])).toBeGreaterThan(0);
    const failed = (await h.s.events.listForUser(h.s.storage.db, userId, 20)).filter((e) => e.type === 'signin.failed');
    expect(failed.map((e) => e.data)).toContainEqual({ reason: 'no_access', where: 'console' });
    expect(failed.map((e) => e.data)).toContainEqual({ reason: 'password', where: 'console' });
    h.clock.advance(60 * 60_000);
  });

  it('counts an operator\'s wrong codes towards the account\'s delays and lock, like wrong passwords', async () => {
    const email = 'code-guesser@example.test';
    const next = await withTotp(email);
    await consoleAccess(h.s).grant(email, CLI, 'test');
    const userId = (await h.s.accounts.findByEmail(email))!.id;
    // Whoever has the password guesses codes at the console.
    for (let i = 0; i < 4; i++) expect((await page(h.app, 'POST', '/console/login', { email, password: PW, otp: String(100000 + i) }, SAME_SITE, nextIp())).status).toBe(401);
    expect((await h.s.events.listForUser(h.s.storage.db, userId, 20)).filter((e) => e.type === 'signin.failed').map((e) => e.data))
      .toContainEqual({ reason: 'second_factor', where: 'console' });
    // The fifth failure, and the account is slowed down everywhere.
    expect((await page(h.app, 'POST', '/console/login', { email, password: 'wrong password now 5', otp: '1' }, SAME_SITE, nextIp())).status).toBe(401);
    expect((await call(h.app, 'POST', '/api/v1/sessions', { email, password: PW }, { 'x-forwarded-for': nextIp() })).status).toBe(429);
    h.clock.advance(60 * 60_000);
    expect((await page(h.app, 'POST', '/console/login', { email, password: PW, otp: next() }, SAME_SITE, nextIp())).status).toBe(303);
  });

  it('limits failed console sign-ins per account', async () => {
    await withTotp('limited@example.test');
    await consoleAccess(h.s).grant('limited@example.test', CLI, 'test');
    let last = 0;
    for (let i = 0; i < 11; i++) last = (await page(h.app, 'POST', '/console/login', { email: 'limited@example.test', password: `wrong password ${i}`, otp: '1' }, SAME_SITE, nextIp())).status;
    expect(last).toBe(429);
  });

  it('sends every console page to sign-in without a console session', async () => {
    for (const p of ['/console', '/console/holds', '/console/broadcasts', '/console/switches', '/console/incidents', '/console/users', '/console/status', '/console/audit']) {
      const r = await page(h.app, 'GET', p);
      expect(r.status, p).toBe(303);
      expect(r.headers.location, p).toBe('/console/login');
    }
    expect((await page(h.app, 'GET', '/console/events')).status).toBe(401);
    const post = await page(h.app, 'POST', '/console/switches', { name: 'type:broadcast', action: 'pause', reason: 'nope nope' }, SAME_SITE);
    expect(post.status).toBe(303);
    expect(await h.s.outbound.listKillSwitches()).toEqual([]);
  });

  it('refuses console actions without the console CSRF token or from another site', async () => {
    const op = await operator('op-csrf@example.test');
    // The operator's own person-scoped tokens (of their user session, or of this console session) do not pass.
    const userSessionId = (await signIn(h, 'op-csrf@example.test', PW, { otp: op.next() })).split('.')[0]!;
    const consoleSessionId = op.hdr.cookie!.split('=')[1]!.split('.')[0]!;
    const fields = { name: 'type:broadcast', action: 'pause', reason: 'csrf test' };
    for (const [label, f, hdr] of [
      ['no token', fields, { ...SAME_SITE, ...op.hdr }],
      ['wrong token', { ...fields, csrf: '0'.repeat(64) }, { ...SAME_SITE, ...op.hdr }],
      ['user session token', { ...fields, csrf: csrfToken(h.s.box.key, userSessionId) }, { ...SAME_SITE, ...op.hdr }],
      ['user-scoped token of the console session', { ...fields, csrf: csrfToken(h.s.box.key, consoleSessionId) }, { ...SAME_SITE, ...op.hdr }],
      ['cross-site', { ...fields, csrf: op.csrf }, { origin: 'https://evil.example', ...op.hdr }],
    ] as [string, Record<string, string>, Record<string, string>][]) {
      expect((await page(h.app, 'POST', '/console/switches', f, hdr)).status, label).toBe(403);
    }
    expect(await h.s.outbound.listKillSwitches()).toEqual([]);
    // A reason is required.
    const short = await page(h.app, 'POST', '/console/switches', { ...fields, csrf: op.csrf, reason: 'x' }, { ...SAME_SITE, ...op.hdr });
    expect(short.headers.location).toBe('/console/switches?error=reason');
    expect(await h.s.outbound.listKillSwitches()).toEqual([]);
    const ok = await page(h.app, 'POST', '/console/switches', { ...fields, csrf: op.csrf }, { ...SAME_SITE, ...op.hdr });
    expect(ok.headers.location).toBe('/console/switches?done=switch_set');
    expect(await h.s.outbound.listKillSwitches()).toMatchObject([{ name: 'type:broadcast', action: 'pause', reason: 'csrf test', setBy: 'op-csrf@example.test' }]);
    const resume = await page(h.app, 'POST', '/console/switches', { name: 'type:broadcast', action: 'resume', reason: 'csrf test over', csrf: op.csrf }, { ...SAME_SITE, ...op.hdr });
    expect(resume.status).toBe(303);
    expect(await h.s.outbound.listKillSwitches()).toEqual([]);
    const sw = await page(h.app, 'GET', '/console/switches?done=switch_set', undefined, op.hdr);
    expect(sw.text).toContain('The kill switch was changed.');
    expectCleanPage(sw.text);
  });

  it('creates a broadcast past the blast radius, shows the hold, and approves it; every step audited', async () => {
    const op = await operator('op-bc@example.test');
    for (let i = 0; i < 4; i++) await createUser(h, `bc-${i}@example.test`, PW);
    const create = await page(h.app, 'POST', '/console/broadcasts', { csrf: op.csrf, subject: 'About the reset emails', text: 'You can ignore them.\n\nWe never ask for passwords.', audience: 'emails', emails: 'bc-0@example.test\nbc-1@example.test\nbc-2@example.test\nbc-3@example.test\nop-bc@example.test', reason: 'incident 42 notice' }, { ...SAME_SITE, ...op.hdr });
    expect(create.status).toBe(303);
    await h.s.courier.drain();
    const [b] = await h.s.broadcasts.list(1);
    expect(b).toMatchObject({ subject: 'About the reset emails', recipients: 5, state: 'awaiting_approval', sent: 3, held: 2 });
    const holds = await page(h.app, 'GET', '/console/holds', undefined, op.hdr);
    expect(holds.text).toContain(`blast:user:`);
    expect(holds.text).toContain('Held by type: broadcast 2');
    // A broadcast's hold is not released from Holds: only by approving it.
    expect(holds.text).toContain('This is a broadcast: <a href="/console/broadcasts">approve it on Broadcasts</a>');
    const holdName = /name="name" value="(blast:[^"]+)"/.exec(holds.text)![1]!;
    const sideDoor = await page(h.app, 'POST', '/console/holds/release', { csrf: op.csrf, name: holdName, reason: 'release my own broadcast' }, { ...SAME_SITE, ...op.hdr });
    expect(sideDoor.headers.location).toBe('/console/holds?error=broadcast_hold');
    const list = await page(h.app, 'GET', '/console/broadcasts', undefined, op.hdr);
    expect(list.text).toContain('Approve and send the held 2');
    expect(list.text).toContain('cannot approve it alone while another operator exists');
    // Another operator exists: the creator's own approval is refused.
    const other = await operator('op-bc2@example.test');
    const own = await page(h.app, 'POST', '/console/broadcasts/approve', { csrf: op.csrf, id: b!.id, reason: 'my own text is fine' }, { ...SAME_SITE, ...op.hdr });
    expect(own.headers.location).toBe('/console/broadcasts?error=own_broadcast');
    expect((await page(h.app, 'GET', own.headers.location as string, undefined, op.hdr)).text).toContain('You created this broadcast: another operator must approve it.');
    await h.s.courier.drain();
    expect(await h.s.broadcasts.get(b!.id)).toMatchObject({ state: 'awaiting_approval', sent: 3, held: 2, approvals: [] });
    const approve = await page(h.app, 'POST', '/console/broadcasts/approve', { csrf: other.csrf, id: b!.id, reason: 'checked the text with legal' }, { ...SAME_SITE, ...other.hdr });
    expect(approve.headers.location).toBe('/console/broadcasts?done=broadcast_approved');
    await h.s.courier.drain();
    expect((await h.s.broadcasts.get(b!.id))).toMatchObject({ state: 'approved', sent: 5, held: 0, approvedBy: 'op-bc2@example.test', approvals: [{ by: 'op-bc2@example.test' }] });
    const audit = (await h.s.audit.list()).filter((a) => a.target === b!.id || a.operator === 'op-bc2@example.test').map((a) => `${a.operator}:${a.action}:${a.reason}`);
    expect(audit).toEqual(expect.arrayContaining([
      'op-bc@example.test:broadcast.create:incident 42 notice', 'op-bc@example.test:broadcast.approve_refused:my own text is fine',
      'op-bc2@example.test:broadcast.approve:checked the text with legal', 'op-bc2@example.test:breaker.release:checked the text with legal',
    ]));
    const auditPage = await page(h.app, 'GET', '/console/audit', undefined, op.hdr);
    expect(auditPage.text).toContain('checked the text with legal');
  });

  it('looks a user up (audited), signs out their sessions and starts a reset for them', async () => {
    const op = await operator('op-users@example.test');
    await createUser(h, 'looked-up@example.test', PW);
    const userTok = await signIn(h, 'looked-up@example.test', PW, {}, { 'user-agent': '<img src=x onerror=alert(1)>' });
    const r = await page(h.app, 'GET', '/console/users?email=' + encodeURIComponent('looked-up@example.test'), undefined, op.hdr);
    expect(r.status).toBe(200);
    expectCleanPage(r.text);
    expect(r.text).toContain('Sign out every session (1)');
    expect(r.text).not.toContain('<img src=x');
    expect((await h.s.audit.list()).find((a) => a.action === 'user.lookup')).toMatchObject({ operator: 'op-users@example.test', target: 'looked-up@example.test' });
    const none = await page(h.app, 'GET', '/console/users?email=' + encodeURIComponent('nobody@example.test'), undefined, op.hdr);
    expect(none.text).toContain('No account has this address.');

    const revoke = await page(h.app, 'POST', '/console/users/revoke-sessions', { csrf: op.csrf, email: 'looked-up@example.test', reason: 'owner reported a stolen laptop' }, { ...SAME_SITE, ...op.hdr });
    expect(revoke.headers.location).toBe('/console/users?email=looked-up%40example.test&done=sessions_revoked');
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, bearer(userTok))).status).toBe(401);
    const reset = await page(h.app, 'POST', '/console/users/reset', { csrf: op.csrf, email: 'looked-up@example.test', reason: 'owner asked by phone' }, { ...SAME_SITE, ...op.hdr });
    expect(reset.headers.location).toBe('/console/users?email=looked-up%40example.test&done=reset_started');
    await h.s.resetIntake.processOnce();
    expect(await h.s.storage.db.selectFrom('outbox').select('type').where('recipient', '=', 'looked-up@example.test').where('type', '=', 'password_reset').execute()).toHaveLength(1);
    const actions = (await h.s.audit.list()).filter((a) => a.operator === 'op-users@example.test').map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['user.revoke_sessions', 'user.reset_requested']));
  });

  it('publishes and resolves status notices, escaped, overrides guard modes and shows incidents', async () => {
    const op = await operator('op-status@example.test');
    const pub = await page(h.app, 'POST', '/console/status', { csrf: op.csrf, title: 'Unexpected <i>reset</i> emails', body: 'A bug sent reset emails.\n\nYou need do nothing.', severity: 'warning' }, { ...SAME_SITE, ...op.hdr });
    expect(pub.headers.location).toBe('/console/status?done=notice_published');
    const st = await page(h.app, 'GET', '/status');
    expect(st.text).toContain('Unexpected &lt;i&gt;reset&lt;/i&gt; emails');
    const cs = await page(h.app, 'GET', '/console/status', undefined, op.hdr);
    const id = /name="id" value="([^"]+)"/.exec(cs.text)![1]!;
    const res = await page(h.app, 'POST', '/console/status/resolve', { csrf: op.csrf, id, reason: 'fixed in 1.2.3' }, { ...SAME_SITE, ...op.hdr });
    expect(res.headers.location).toBe('/console/status?done=notice_resolved');
    expect((await call(h.app, 'GET', '/api/v1/status')).json.notices.find((n: any) => n.id === id).resolvedAt).not.toBeNull();

    const mode = await page(h.app, 'POST', '/console/switches/mode', { csrf: op.csrf, flow: 'reset', mode: 'hold', reason: 'flood in progress' }, { ...SAME_SITE, ...op.hdr });
    expect(mode.headers.location).toBe('/console/switches?done=override_set');
    expect(await h.s.guard.mode('reset')).toBe('hold');
    const inc = await page(h.app, 'GET', '/console/incidents', undefined, op.hdr);
    expect(inc.text).toContain('Guard: reset flow escalated to hold');
    expect(inc.text).toMatch(/<span class="badge warn">(External flood|Unclear)<\/span>/);
    await page(h.app, 'POST', '/console/switches/mode', { csrf: op.csrf, flow: 'reset', mode: 'auto', reason: 'flood over' }, { ...SAME_SITE, ...op.hdr });
    expect(await h.s.guard.mode('reset')).toBe('normal');
    const actions = (await h.s.audit.list()).filter((a) => a.operator === 'op-status@example.test').map((a) => `${a.action}:${a.target}`);
    expect(actions).toEqual(expect.arrayContaining(['status.publish:' + id, 'status.resolve:' + id, 'guard.override:flow:reset']));
  });

  it('ends console sessions when the grant is revoked or the password changes, and on sign-out', async () => {
    const a = await operator('op-end@example.test');
    expect((await page(h.app, 'GET', '/console/audit', undefined, a.hdr)).status).toBe(200);
    await consoleAccess(h.s).revokeGrant('op-end@example.test', CLI, 'left the team');
    expect((await page(h.app, 'GET', '/console/audit', undefined, a.hdr)).status).toBe(303);
    await consoleAccess(h.s).grant('op-end@example.test', CLI, 'back');
    const b = await page(h.app, 'POST', '/console/login', { email: 'op-end@example.test', password: PW, otp: a.next() }, SAME_SITE, nextIp());
    const hdr = cookie(CONSOLE_COOKIE, b.cookies[CONSOLE_COOKIE]!.value);
    expect((await page(h.app, 'GET', '/console', undefined, hdr)).status).toBe(200);
    h.clock.advance(1);
    const user = await h.s.accounts.findByEmail('op-end@example.test');
    await h.s.accounts.setPassword(h.s.storage.db, user!.id, await h.s.hasher.hash('another passphrase 77'));
    expect((await page(h.app, 'GET', '/console', undefined, hdr)).status).toBe(303);
    // Sign-out needs the console token.
    const c = await page(h.app, 'POST', '/console/login', { email: 'op-end@example.test', password: 'another passphrase 77', otp: a.next() }, SAME_SITE, nextIp());
    const hdr2 = cookie(CONSOLE_COOKIE, c.cookies[CONSOLE_COOKIE]!.value);
    const csrf = csrfIn((await page(h.app, 'GET', '/console', undefined, hdr2)).text);
    expect((await page(h.app, 'POST', '/console/logout', {}, { ...SAME_SITE, ...hdr2 })).status).toBe(403);
    const out = await page(h.app, 'POST', '/console/logout', { csrf }, { ...SAME_SITE, ...hdr2 });
    expect(out.headers.location).toBe('/console/login?signed_out=1');
    expect((await page(h.app, 'GET', '/console', undefined, hdr2)).status).toBe(303);
    // 12 hours is the most a console session lives, however busy.
    const d = await page(h.app, 'POST', '/console/login', { email: 'op-end@example.test', password: 'another passphrase 77', otp: a.next() }, SAME_SITE, nextIp());
    const hdr3 = cookie(CONSOLE_COOKIE, d.cookies[CONSOLE_COOKIE]!.value);
    const started = h.clock.now();
    while (h.clock.now() - started < 12 * 3_600_000 - 20 * 60_000) {
      h.clock.advance(20 * 60_000);
      expect((await page(h.app, 'GET', '/console/audit', undefined, hdr3)).status).toBe(200);
    }
    h.clock.set(started + 12 * 3_600_000);
    expect((await page(h.app, 'GET', '/console', undefined, hdr3)).status).toBe(303);
  });

  it('ends a console session after 30 minutes without a request (sliding, server side); the live feed does not keep it alive', async () => {
    const op = await operator('op-idle@example.test');
    const token = op.hdr.cookie!.split('=')[1]!;
    // Each request slides the idle timeout: an hour of use, a request every 29 minutes.
    h.clock.advance(29 * 60_000);
    expect((await page(h.app, 'GET', '/console/audit', undefined, op.hdr)).status).toBe(200);
    h.clock.advance(29 * 60_000);
    expect((await page(h.app, 'GET', '/console/audit', undefined, op.hdr)).status).toBe(200);
    // The live feed re-checks the session without counting as activity.
    h.clock.advance(20 * 60_000);
    expect(await consoleAccess(h.s).authenticate(token, { touch: false })).not.toBeNull();
    h.clock.advance(10 * 60_000);
    expect(await consoleAccess(h.s).authenticate(token, { touch: false })).toBeNull();
    // Idle 30 minutes: every console page and action sends the operator to sign in again.
    const g = await page(h.app, 'GET', '/console/audit', undefined, op.hdr);
    expect(g.status).toBe(303);
    expect(g.headers.location).toBe('/console/login');
    const post = await page(h.app, 'POST', '/console/switches/mode', { csrf: op.csrf, flow: 'reset', mode: 'hold', reason: 'after lunch' }, { ...SAME_SITE, ...op.hdr });
    expect(post.headers.location).toBe('/console/login');
    expect(await h.s.guard.mode('reset')).toBe('normal');
    // A new sign-in starts afresh.
    const again = await page(h.app, 'POST', '/console/login', { email: 'op-idle@example.test', password: PW, otp: op.next() }, SAME_SITE, nextIp());
    expect((await page(h.app, 'GET', '/console', undefined, cookie(CONSOLE_COOKIE, again.cookies[CONSOLE_COOKIE]!.value))).status).toBe(200);
  });

  it('streams live figures as Server-Sent Events to a signed-in operator', async () => {
    const op = await operator('op-live@example.test');
    await call(h.app, 'POST', '/api/v1/password-resets', { email: 'someone@example.test' });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const ctl = new AbortController();
    const res = await fetch(`${address}/console/events`, { headers: op.hdr, signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let buf = '';
    while (!buf.includes('event: sample')) buf += new TextDecoder().decode((await reader.read()).value);
    while (!/event: sample\ndata: .*\n\n/.test(buf)) buf += new TextDecoder().decode((await reader.read()).value);
    ctl.abort();
    const sample = JSON.parse(/event: sample\ndata: (.*)\n\n/.exec(buf)![1]!);
    expect(sample.flows.map((f: any) => f.flow)).toEqual(['reset', 'signup', 'signin', 'verify_resend']);
    expect(sample.flows[0]).toMatchObject({ mode: 'normal' });
    expect(sample.flows[0].requests).toBeGreaterThanOrEqual(1);
    expect(sample).toMatchObject({ resetRequests: 0, signinFailures: 0, mail: { queued: 0, sent: 0, held: 0 } });
    expect(typeof sample.held).toBe('number');
  });
});

describe('console: admin API tokens are not console sessions', () => {
  it('does not open the console with the admin bearer token', async () => {
    const h = await makeHarness('sqlite');
    try {
      const r = await page(h.app, 'GET', '/console', undefined, admin);
      expect(r.status).toBe(303);
    } finally {
      await h.close();
    }
  });
});
