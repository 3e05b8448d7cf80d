import { Secret, TOTP } from 'otpauth';
import { solveChallenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/context.js';
import { csrfToken } from '../../src/web/csrf.js';
import { admin, call, createUser, DIALECTS, makeHarness, type Harness } from '../helpers/harness.js';
import { cookie, csrfIn, expectCleanPage, nextIp, page, SAME_SITE } from '../helpers/web.js';
import { lastResetMail, requestReset } from '../helpers/recovery.js';

const PW = 'security page passphrase 1';
const CHROME_UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36';
const FIREFOX_UA = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';

describe.each(DIALECTS)('security page on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_DEV_MAILBOX: 'true' } }); });
  afterAll(async () => { await h.close(); });

  async function signedIn(email: string, ua = CHROME_UA): Promise<{ sess: string; hdr: Record<string, string> }> {
    const r = await page(h.app, 'POST', '/login', { email, password: PW }, { ...SAME_SITE, 'user-agent': ua }, nextIp());
    if (r.status !== 303) throw new Error(`login ${email}: ${r.status}`);
    const sess = r.cookies[SESSION_COOKIE]!.value;
    return { sess, hdr: { ...cookie(SESSION_COOKIE, sess), 'user-agent': ua } };
  }
  const sessionsOf = async (sess: string) => (await call(h.app, 'GET', '/api/v1/sessions', undefined, cookie(SESSION_COOKIE, sess))).json.sessions as any[];

  it('sends signed-out visitors to /login and back', async () => {
    const r = await page(h.app, 'GET', '/security');
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/login?next=%2Fsecurity');
    const bad = await page(h.app, 'GET', '/security', undefined, cookie(SESSION_COOKIE, 'AAAAAAAAAAAAAAAA.' + 'B'.repeat(43)));
    expect(bad.status).toBe(303);
  });

  it('lists devices with this one marked, and signs out another one or all others', async () => {
    await createUser(h, 'devices@example.test', PW);
    const other = await signedIn('devices@example.test', FIREFOX_UA);
    const third = await signedIn('devices@example.test', FIREFOX_UA);
    const me = await signedIn('devices@example.test');
    const g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(g.status).toBe(200);
    expectCleanPage(g.text);
    expect(g.headers['cache-control']).toBe('no-store');
    expect(g.text).toMatch(/<td data-label="Device">Chrome 126 on Linux <span class="badge ok">This device<\/span><\/td>/);
    expect(g.text.match(/aria-label="Sign out Firefox 128 on Windows 10"/g)).toHaveLength(2);
    expect(g.text).toContain('Sign out all other devices (2)');
    const csrf = csrfIn(g.text);
    expect(csrf).toBe(csrfToken(h.s.box.key, (await sessionsOf(me.sess)).find((x) => x.current).id));
    const otherId = (await sessionsOf(other.sess)).find((x) => x.current).id;

    const one = await page(h.app, 'POST', '/security/sessions/revoke', { csrf, id: otherId }, { ...SAME_SITE, ...me.hdr });
    expect(one.status).toBe(303);
    expect(one.headers.location).toBe('/security?done=session_revoked#devices');
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, other.sess))).status).toBe(401);
    expect((await page(h.app, 'GET', '/security?done=session_revoked', undefined, me.hdr)).text).toContain('That device was signed out.');
    // Unknown `done` keys show nothing (nothing from the URL is reflected).
    expect((await page(h.app, 'GET', '/security?done=%3Cb%3Ex', undefined, me.hdr)).text).not.toContain('<b>x');

    const all = await page(h.app, 'POST', '/security/sessions/revoke-others', { csrf }, { ...SAME_SITE, ...me.hdr });
    expect(all.status).toBe(303);
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, third.sess))).status).toBe(401);
    expect((await sessionsOf(me.sess))).toHaveLength(1);
  });

  it('refuses every form post without the session\'s token, with another session\'s token, or cross-site', async () => {
    await createUser(h, 'csrf@example.test', PW);
    const victim = await signedIn('csrf@example.test', FIREFOX_UA);
    const me = await signedIn('csrf@example.test');
    const otherCsrf = csrfIn((await page(h.app, 'GET', '/security', undefined, victim.hdr)).text);
    const csrf = csrfIn((await page(h.app, 'GET', '/security', undefined, me.hdr)).text);
    const cases: [string, Record<string, string>][] = [
      ['/security/sessions/revoke-others', {}],
      ['/security/password', { current: PW, password: 'a brand new passphrase 9', confirm: 'a brand new passphrase 9' }],
      ['/security/totp', {}],
      ['/security/notifications/read', { id: 'x' }],
    ];
    for (const [url, fields] of cases) {
      for (const [label, f, hdr] of [
        ['no token', fields, { ...SAME_SITE, ...me.hdr }],
        ['wrong token', { ...fields, csrf: 'a'.repeat(64) }, { ...SAME_SITE, ...me.hdr }],
        ["another session's token", { ...fields, csrf: otherCsrf }, { ...SAME_SITE, ...me.hdr }],
        ['cross-site', { ...fields, csrf }, { origin: 'https://evil.example', ...me.hdr }],
        ['same-site sibling', { ...fields, csrf }, { 'sec-fetch-site': 'same-site', ...me.hdr }],
        ['null origin', { ...fields, csrf }, { origin: 'null', ...me.hdr }],
      ] as [string, Record<string, string>, Record<string, string>][]) {
        const r = await page(h.app, 'POST', url, f, hdr);
        expect(r.status, `${url} ${label}`).toBe(403);
        expect(r.text).toContain('Nothing was changed.');
      }
    }
    // Nothing happened: both sessions live, password unchanged, no TOTP pending.
    expect(await sessionsOf(me.sess)).toHaveLength(2);
    expect((await h.s.accounts.verifyCredentials('csrf@example.test', PW, { requestId: 't', ip: null, userAgent: null })).ok).toBe(true);
    expect((await h.s.mfa.factors.status((await h.s.accounts.findByEmail('csrf@example.test'))!.id)).totp.pending).toBe(false);
    // With the token, from this site: it works.
    const ok = await page(h.app, 'POST', '/security/sessions/revoke-others', { csrf }, { ...SAME_SITE, ...me.hdr });
    expect(ok.status).toBe(303);
    expect(await sessionsOf(me.sess)).toHaveLength(1);
  });

  it('changes the password, with errors tied to their fields', async () => {
    await createUser(h, 'change@example.test', PW);
    const other = await signedIn('change@example.test', FIREFOX_UA);
    const me = await signedIn('change@example.test');
    const csrf = csrfIn((await page(h.app, 'GET', '/security', undefined, me.hdr)).text);
    const post = (f: Record<string, string>) => page(h.app, 'POST', '/security/password', { csrf, ...f }, { ...SAME_SITE, ...me.hdr });
    const mismatch = await post({ current: PW, password: 'new passphrase number 1', confirm: 'new passphrase number 2' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.text).toMatch(/aria-describedby="confirm-error" aria-invalid="true"/);
    const wrong = await post({ current: 'not my password at all', password: 'new passphrase number 1', confirm: 'new passphrase number 1' });
    expect(wrong.status).toBe(403);
    expect(wrong.text).toMatch(/<p id="current-error" class="field-error">/);
    const weak = await post({ current: PW, password: 'change@example.test', confirm: 'change@example.test' });
    expect(weak.status).toBe(400);
    expect(weak.text).toMatch(/<p id="new-password-error" class="field-error">The password must not be your email address.<\/p>/);
    const ok = await post({ current: PW, password: 'new passphrase number 1', confirm: 'new passphrase number 1', signout_others: 'on' });
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/security?done=password_changed#password');
    expect((await h.s.accounts.verifyCredentials('change@example.test', 'new passphrase number 1', { requestId: 't', ip: null, userAgent: null })).ok).toBe(true);
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, other.sess))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, me.sess))).status).toBe(200);
    const notices = await h.s.storage.db.selectFrom('outbox').select('type').where('recipient', '=', 'change@example.test').execute();
    expect(notices.map((n) => n.type)).toContain('password_changed');
  });

  it('kills live reset links when the password is changed on the page', async () => {
    await createUser(h, 'change-kills@example.test', PW);
    await requestReset(h, 'change-kills@example.test');
    const { token } = await lastResetMail(h, 'change-kills@example.test');
    const me = await signedIn('change-kills@example.test');
    const csrf = csrfIn((await page(h.app, 'GET', '/security', undefined, me.hdr)).text);
    const ok = await page(h.app, 'POST', '/security/password', { csrf, current: PW, password: 'new passphrase number 7', confirm: 'new passphrase number 7' }, { ...SAME_SITE, ...me.hdr });
    expect(ok.status).toBe(303);
    const late = await call(h.app, 'POST', '/api/v1/password-resets/confirm', { token, password: 'someone else chose 3' });
    expect(late).toMatchObject({ status: 400, json: { code: 'invalid_token' } });
  });

  it('sets up an authenticator app: QR code image, then recovery codes shown once', async () => {
    await createUser(h, 'totp-page@example.test', PW);
    const me = await signedIn('totp-page@example.test');
    const g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(g.text).toContain('<span class="badge warn">Off</span>');
    const csrf = csrfIn(g.text);
    const start = await page(h.app, 'POST', '/security/totp', { csrf }, { ...SAME_SITE, ...me.hdr });
    expect(start.status).toBe(200);
    expectCleanPage(start.text);
    expect(start.headers['cache-control']).toBe('no-store');
    const img = /<img class="qr" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)" width="200" height="200" alt="([^"]+)">/.exec(start.text)!;
    expect(Buffer.from(img[1]!, 'base64').toString()).toMatch(/^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(img[2]).toMatch(/QR code/);
    const secret = /<code class="secret">([A-Z2-7 ]+)<\/code>/.exec(start.text)![1]!.replace(/ /g, '');
    const bad = await page(h.app, 'POST', '/security/totp/confirm', { csrf, code: '000000' }, { ...SAME_SITE, ...me.hdr });
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(/aria-invalid="true"/);
    const code = TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: h.clock.now() });
    const done = await page(h.app, 'POST', '/security/totp/confirm', { csrf, code }, { ...SAME_SITE, ...me.hdr });
    expect(done.status).toBe(200);
    const codes = [...done.text.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    const after = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(after.text).toContain('An authenticator app is set up');
    expect(after.text).toContain('Recovery codes left: <strong>10</strong>');
    for (const c of codes) expect(after.text).not.toContain(c);
    // An old session must confirm the password to change factors.
    h.clock.advance(11 * 60_000);
    const stale = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(stale.text).toMatch(/<input id="remove-password" name="password" type="password" autocomplete="current-password" required/);
    const noPw = await page(h.app, 'POST', '/security/totp/remove', { csrf }, { ...SAME_SITE, ...me.hdr });
    expect(noPw.status).toBe(403);
    expect(noPw.text).toContain('Enter your password to confirm it is you.');
    const removed = await page(h.app, 'POST', '/security/totp/remove', { csrf, password: PW }, { ...SAME_SITE, ...me.hdr });
    expect(removed.status).toBe(303);
    expect((await h.s.mfa.factors.status((await h.s.accounts.findByEmail('totp-page@example.test'))!.id)).enabled).toBe(false);
  });

  it('shows the "was it you?" reset prompt and acts on Yes and No; lists the mail we sent, without links', async () => {
    const email = 'prompt@example.test';
    await createUser(h, email, PW);
    const me = await signedIn(email);
    // In-app only for resets: a request turns into a prompt in the inbox.
    await h.s.outbound.setKillSwitch('flow:reset', 'inbox_only', { id: 'test', name: 'test' }, 'test prompts');
    const ask = async () => {
      expect((await page(h.app, 'POST', '/forgot', { email }, SAME_SITE, nextIp())).status).toBe(200);
      await h.s.resetIntake.processOnce();
      await h.s.courier.drain();
    };
    await ask();
    let g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(g.text).toContain('Someone asked to reset your password — was it you?');
    const csrf = csrfIn(g.text);
    const id = /name="id" value="([^"]+)"><input type="hidden" name="answer" value="no">/.exec(g.text)![1]!;
    const no = await page(h.app, 'POST', '/security/prompts/answer', { csrf, id, answer: 'no' }, { ...SAME_SITE, ...me.hdr });
    expect(no.headers.location).toBe('/security?done=prompt_no');
    const events = await h.s.events.listForUser(h.s.storage.db, (await h.s.accounts.findByEmail(email))!.id, 10);
    expect(events.find((e) => e.type === 'password.reset_denied')?.data).toMatchObject({ via: 'in_app_prompt' });
    g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    expect(g.text).not.toContain('— was it you?');
    // Answering the same prompt again changes nothing.
    expect((await page(h.app, 'POST', '/security/prompts/answer', { csrf, id, answer: 'yes' }, { ...SAME_SITE, ...me.hdr })).headers.location).toBe('/security?done=prompt_gone');

    await h.s.outbound.setKillSwitch('flow:reset', null, { id: 'test', name: 'test' }, 'done');
    h.clock.advance(2 * 86_400_000);
    await h.s.outbound.setKillSwitch('flow:reset', 'inbox_only', { id: 'test', name: 'test' }, 'test prompts');
    await ask();
    g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    const id2 = /name="id" value="([^"]+)"><input type="hidden" name="answer" value="yes">/.exec(g.text)![1]!;
    const yes = await page(h.app, 'POST', '/security/prompts/answer', { csrf, id: id2, answer: 'yes' }, { ...SAME_SITE, ...me.hdr });
    expect(yes.headers.location).toBe('/security?done=prompt_yes');
    await h.s.outbound.setKillSwitch('flow:reset', null, { id: 'test', name: 'test' }, 'done');
    await h.s.resetIntake.processOnce();
    const resets = await h.s.storage.db.selectFrom('outbox').select('type').where('recipient', '=', email).where('type', '=', 'password_reset').execute();
    expect(resets).toHaveLength(1);

    // "Mail we sent you": subjects, channel and state; never a link or token.
    g = await page(h.app, 'GET', '/security', undefined, me.hdr);
    const mail = g.text.slice(g.text.indexOf('id="mail"'), g.text.indexOf('id="events"'));
    expect(mail).toContain('<td data-label="Subject">Reset your password</td>');
    expect(mail).toContain('Someone asked to reset your password. Was it you?');
    expect(mail).toContain('In-app');
    expect(mail).not.toMatch(/token|https?:\/\//);
  });

  it('GET /api/v1/me/messages lists my messages of the last 90 days, subjects rendered without secrets', async () => {
    const email = 'messages@example.test';
    const uid = await createUser(h, email, PW);
    await createUser(h, 'someone-else@example.test', PW);
    const me = await signedIn(email);
    await page(h.app, 'POST', '/forgot', { email }, SAME_SITE, nextIp());
    await page(h.app, 'POST', '/forgot', { email: 'someone-else@example.test' }, SAME_SITE, nextIp());
    await h.s.resetIntake.processOnce();
    const r = await call(h.app, 'GET', '/api/v1/me/messages', undefined, cookie(SESSION_COOKIE, me.sess));
    expect(r.status).toBe(200);
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.json.windowDays).toBe(90);
    const reset = r.json.messages.find((m: any) => m.type === 'password_reset');
    expect(reset).toMatchObject({ channel: 'email', state: 'queued', subject: 'Reset your password', to: email, sentAt: null });
    expect(r.text).not.toMatch(/token|someone-else/);
    expect(r.json.messages.every((m: any) => ['email', 'inbox'].includes(m.channel))).toBe(true);
    await h.s.courier.drain();
    const sent = await call(h.app, 'GET', '/api/v1/me/messages', undefined, cookie(SESSION_COOKIE, me.sess));
    expect(sent.json.messages.find((m: any) => m.type === 'password_reset')).toMatchObject({ state: 'sent' });
    expect((await call(h.app, 'GET', '/api/v1/me/messages')).status).toBe(401);
    // 91 days later the mail is out of the window.
    await h.s.storage.db.updateTable('outbox').set({ created_at: h.clock.now() - 91 * 86_400_000 }).where('user_id', '=', uid).execute();
    const old = await call(h.app, 'GET', '/api/v1/me/messages', undefined, cookie(SESSION_COOKIE, me.sess));
    expect(old.json.messages).toEqual([]);
  });

  it('/forgot shows the ALTCHA widget when the guard asks for a challenge, and a solved one passes', async () => {
    await createUser(h, 'challenge-page@example.test', PW);
    await h.s.guard.override('reset', 'challenge', 'test');
    try {
      const ip = nextIp();
      const first = await page(h.app, 'POST', '/forgot', { email: 'challenge-page@example.test' }, SAME_SITE, ip);
      expect(first.status).toBe(428);
      expectCleanPage(first.text);
      expect(first.text).toContain('<script type="module" src="/assets/altcha-init.js"></script>');
      expect(first.text).toContain('<link rel="stylesheet" href="/assets/altcha.css">');
      const attr = /<altcha-widget name="altcha" challenge="([^"]+)"/.exec(first.text)![1]!;
      const challenge = JSON.parse(attr.replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
      expect(challenge.parameters.algorithm).toBe('PBKDF2/SHA-256');
      expect(first.text).toContain('value="challenge-page@example.test"');
      const solution = await solveChallenge({ challenge, deriveKey });
      const altcha = Buffer.from(JSON.stringify({ challenge, solution })).toString('base64');
      const ok = await page(h.app, 'POST', '/forgot', { email: 'challenge-page@example.test', altcha }, SAME_SITE, ip);
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('If an account exists for that address');
      // A solution works once.
      expect((await page(h.app, 'POST', '/forgot', { email: 'challenge-page@example.test', altcha }, SAME_SITE, ip)).status).toBe(428);
    } finally {
      await h.s.guard.override('reset', null, 'test');
    }
    for (const [path, type] of [['/assets/altcha.js', 'javascript'], ['/assets/altcha-init.js', 'javascript'], ['/assets/altcha-pbkdf2.js', 'javascript'], ['/assets/altcha.css', 'css'], ['/assets/uplot.js', 'javascript'], ['/assets/uplot.css', 'css'], ['/assets/console.js', 'javascript'], ['/assets/console.css', 'css']]) {
      const a = await h.app.inject({ method: 'GET', url: path! });
      expect(a.statusCode, path).toBe(200);
      expect(String(a.headers['content-type']), path).toContain(type);
      expect(a.body.length, path).toBeGreaterThan(100);
      expect((await h.app.inject({ method: 'GET', url: path!, headers: { 'if-none-match': String(a.headers.etag) } })).statusCode).toBe(304);
    }
    expect((await h.app.inject({ method: 'GET', url: '/assets/uplot.js' })).body.trimEnd().endsWith('export default uPlot;')).toBe(true);
  });

  it('shows operator notices on /status, escaped, like GET /api/v1/status; the footer links the dev mailbox only in development', async () => {
    const pub = await call(h.app, 'POST', '/api/v1/admin/status-notices', { title: 'Reset emails <b>you did not ask for</b>', body: 'We fixed a bug.\n\nYou need do nothing. <script>x</script>', severity: 'warning' }, admin);
    expect(pub.status).toBe(201);
    const st = await page(h.app, 'GET', '/status');
    expect(st.status).toBe(200);
    expectCleanPage(st.text);
    expect(st.text).toContain('Reset emails &lt;b&gt;you did not ask for&lt;/b&gt;');
    expect(st.text).toContain('<p>We fixed a bug.</p>');
    expect(st.text).toContain('<p>You need do nothing. &lt;script&gt;x&lt;/script&gt;</p>');
    expect(st.text).toContain('1 ongoing issue');
    const api = await call(h.app, 'GET', '/api/v1/status');
    expect(api.json.notices[0]).toMatchObject({ id: pub.json.id, severity: 'warning', resolvedAt: null });
    expect(h.s.config.devMailbox).toBe(true);
    expect(st.text).toContain('<a href="/dev/mailbox">Dev mailbox</a>');
    expect((await page(h.app, 'GET', '/forgot')).text).toContain('<a href="/dev/mailbox">Dev mailbox</a>');
  });
});

describe('page footer outside development', () => {
  it('has no dev mailbox link when the dev mailbox is off', async () => {
    const h = await makeHarness('sqlite', { env: { FLOODGATE_DEV_MAILBOX: 'false' } });
    try {
      const st = await page(h.app, 'GET', '/status');
      expect(st.text).toContain('<a href="/status">Service status</a>');
      expect(st.text).not.toContain('/dev/mailbox');
    } finally {
      await h.close();
    }
  });
});
