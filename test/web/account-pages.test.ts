import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE } from '../../src/http/context.js';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../helpers/harness.js';
import { cookie, csrfIn, expectCleanPage, nextIp, page, SAME_SITE } from '../helpers/web.js';

const PW = 'account pages passphrase 1';
const codeAt = (secret: string, ms: number) => TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });

describe.each(DIALECTS)('hosted account pages on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('serves /login with labelled fields, no inline script, and signs in with the same cookie as the API', async () => {
    await createUser(h, 'login-page@example.test', PW);
    const g = await page(h.app, 'GET', '/login');
    expect(g.status).toBe(200);
    expectCleanPage(g.text);
    expect(g.text).toMatch(/<label for="email">Email address<\/label>/);
    expect(g.text).toMatch(/<input id="password" name="password" type="password" autocomplete="current-password"/);
    expect(g.headers['cache-control']).toBe('no-store');
    expect(String(g.headers['content-security-policy'])).toMatch(/frame-ancestors 'none'/);

    const ok = await page(h.app, 'POST', '/login', { email: 'login-page@example.test', password: PW }, SAME_SITE, nextIp());
    expect(ok.status).toBe(303);
    expect(ok.headers.location).toBe('/security');
    const c = ok.cookies[SESSION_COOKIE]!;
    expect(c.attrs).toMatch(/HttpOnly/);
    expect(c.attrs).toMatch(/SameSite=Lax/);
    expect(c.attrs).toMatch(/Path=\//);
    // The API sets the very same cookie.
    const api = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', payload: { email: 'login-page@example.test', password: PW }, remoteAddress: nextIp() });
    const apiAttrs = String(([] as string[]).concat(api.headers['set-cookie'] as string)[0]).split(';').slice(1).map((x) => x.trim()).join('; ');
    expect(c.attrs).toBe(apiAttrs);
    // The cookie is a live session: the API accepts it.
    expect((await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, c.value))).json.email).toBe('login-page@example.test');
    // Signed in: /login goes on to the security page.
    expect((await page(h.app, 'GET', '/login', undefined, cookie(SESSION_COOKIE, c.value))).headers.location).toBe('/security');
  });

  it('answers any wrong credential with one generic 401 page, keeps the email, escapes it', async () => {
    await createUser(h, 'wrong-pw@example.test', PW);
    const ip = nextIp();
    const wrong = await page(h.app, 'POST', '/login', { email: 'wrong-pw@example.test', password: 'not the password 1' }, SAME_SITE, ip);
    const unknown = await page(h.app, 'POST', '/login', { email: 'nobody-here@example.test', password: 'not the password 1' }, SAME_SITE, ip);
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.text).toContain('The email or password is incorrect.');
    expect(wrong.text.replace('wrong-pw@example.test', 'X')).toBe(unknown.text.replace('nobody-here@example.test', 'X'));
    expect(wrong.text).not.toContain('not the password 1');
    const evil = `"><script>alert(1)</script>@example.test`;
    const esc = await page(h.app, 'POST', '/login', { email: evil, password: 'whatever whatever' }, SAME_SITE, ip);
    expect(esc.text).not.toContain('<script>alert(1)');
    expect(esc.text).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@example.test"');
    expectCleanPage(esc.text);
  });

  it('refuses a cross-site sign-in post and keeps `next` on this site', async () => {
    await createUser(h, 'next@example.test', PW);
    const cross = await page(h.app, 'POST', '/login', { email: 'next@example.test', password: PW }, { origin: 'https://evil.example' }, nextIp());
    expect(cross.status).toBe(403);
    expect(cross.cookies[SESSION_COOKIE]).toBeUndefined();
    const sibling = await page(h.app, 'POST', '/login', { email: 'next@example.test', password: PW }, { 'sec-fetch-site': 'same-site' }, nextIp());
    expect(sibling.status).toBe(403);
    for (const [next, to] of [['/security#mail', '/security'], ['//evil.example/x', '/security'], ['https://evil.example', '/security'], ['/\\evil.example', '/security'], ['/status', '/status']] as const) {
      const r = await page(h.app, 'POST', '/login', { email: 'next@example.test', password: PW, next }, SAME_SITE, nextIp());
      expect(r.status, next).toBe(303);
      expect(r.headers.location, next).toBe(to);
    }
    const g = await page(h.app, 'GET', '/login?next=' + encodeURIComponent('"><b>x'));
    expect(g.text).not.toContain('<b>x');
  });

  it('asks for the one-time code after a right password, carrying it sealed; a right code signs in', async () => {
    const email = 'mfa-page@example.test';
    await createUser(h, email, PW);
    const token = await signIn(h, email, PW, {}, { 'x-forwarded-for': '1' });
    const en = await call(h.app, 'POST', '/api/v1/me/mfa/totp', {}, bearer(token));
    expect((await call(h.app, 'POST', '/api/v1/me/mfa/totp/confirm', { code: codeAt(en.json.secret, h.clock.now()) }, bearer(token))).status).toBe(200);
    h.clock.advance(30_000);

    const step1 = await page(h.app, 'POST', '/login', { email, password: PW }, SAME_SITE, nextIp());
    expect(step1.status).toBe(200);
    expect(step1.cookies[SESSION_COOKIE]).toBeUndefined();
    expect(step1.text).toMatch(/<label for="otp">One-time code<\/label>/);
    expect(step1.text).toMatch(/autocomplete="one-time-code"/);
    expect(step1.text).not.toContain(PW);
    expect(step1.text).not.toMatch(/type="password"/);
    const ticket = /name="ticket" value="([^"]+)"/.exec(step1.text)![1]!;

    const wrong = await page(h.app, 'POST', '/login', { ticket, otp: '000000' }, SAME_SITE, nextIp());
    expect(wrong.status).toBe(401);
    expect(wrong.text).toContain('That code is not right');
    expect(wrong.text).toMatch(/aria-describedby="otp-hint otp-error" aria-invalid="true"/);
    const tampered = await page(h.app, 'POST', '/login', { ticket: ticket.slice(0, -2) + (ticket.endsWith('A') ? 'BB' : 'AA'), otp: codeAt(en.json.secret, h.clock.now()) }, SAME_SITE, nextIp());
    expect(tampered.status).toBe(400);
    expect(tampered.cookies[SESSION_COOKIE]).toBeUndefined();

    const ok = await page(h.app, 'POST', '/login', { ticket, otp: codeAt(en.json.secret, h.clock.now()) }, SAME_SITE, nextIp());
    expect(ok.status).toBe(303);
    const sess = ok.cookies[SESSION_COOKIE]!.value;
    const list = await call(h.app, 'GET', '/api/v1/sessions', undefined, cookie(SESSION_COOKIE, sess));
    expect(list.json.sessions.find((x: any) => x.current).authMethod).toBe('password+totp');

    // The ticket dies after 5 minutes.
    const again = await page(h.app, 'POST', '/login', { email, password: PW }, SAME_SITE, nextIp());
    const t2 = /name="ticket" value="([^"]+)"/.exec(again.text)![1]!;
    h.clock.advance(5 * 60_000 + 1);
    const late = await page(h.app, 'POST', '/login', { ticket: t2, otp: codeAt(en.json.secret, h.clock.now()) }, SAME_SITE, nextIp());
    expect(late.status).toBe(400);
    expect(late.text).toContain('That took too long');
  });

  it('signs up with the same page for new and existing addresses, and ties a weak password to its field', async () => {
    await createUser(h, 'taken@example.test', PW);
    const g = await page(h.app, 'GET', '/signup');
    expectCleanPage(g.text);
    expect(g.text).toMatch(/aria-describedby="password-hint"/);
    const ip = nextIp();
    const fresh = await page(h.app, 'POST', '/signup', { email: 'fresh-signup@example.test', password: PW }, SAME_SITE, ip);
    const taken = await page(h.app, 'POST', '/signup', { email: 'taken@example.test', password: PW }, SAME_SITE, ip);
    expect(fresh.status).toBe(200);
    expect(taken.text).toBe(fresh.text);
    const rows = await h.s.storage.db.selectFrom('outbox').select(['type', 'recipient']).where('recipient', 'in', ['fresh-signup@example.test', 'taken@example.test']).orderBy('recipient').execute();
    expect(rows).toEqual([{ type: 'verify_email', recipient: 'fresh-signup@example.test' }, { type: 'signup_existing', recipient: 'taken@example.test' }]);
    const weak = await page(h.app, 'POST', '/signup', { email: 'weak@example.test', password: 'short' }, SAME_SITE, ip);
    expect(weak.status).toBe(400);
    expect(weak.text).toMatch(/<p id="password-error" class="field-error">Use at least 8 characters/);
    expect(weak.text).toMatch(/aria-describedby="password-hint password-error" aria-invalid="true"/);
    expect(weak.text).toContain('value="weak@example.test"');
    expect(weak.text).not.toContain('value="short"');
    expect((await page(h.app, 'POST', '/signup', { email: 'x@example.test', password: PW }, { origin: 'https://evil.example' }, ip)).status).toBe(403);
  });

  it('shows a button on GET /verify and confirms only on POST', async () => {
    await page(h.app, 'POST', '/signup', { email: 'verify-page@example.test', password: PW }, SAME_SITE, nextIp());
    const row = await h.s.storage.db.selectFrom('outbox').selectAll().where('recipient', '=', 'verify-page@example.test').executeTakeFirstOrThrow();
    const link = h.s.outbox.openSecret(row)!.link!;
    const path = link.slice('http://floodgate.test'.length);
    for (let i = 0; i < 2; i++) {
      const g = await page(h.app, 'GET', path);
      expect(g.status).toBe(200);
      expect(g.text).toMatch(/<form method="post" action="\/verify">/);
    }
    const user = await h.s.accounts.findByEmail('verify-page@example.test');
    expect(user!.email_verified_at).toBeNull();
    const token = new URL(link).searchParams.get('token')!;
    expect((await page(h.app, 'POST', '/verify', { token }, { origin: 'https://evil.example' })).status).toBe(403);
    const ok = await page(h.app, 'POST', '/verify', { token }, SAME_SITE);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('your email address is confirmed');
    expect((await h.s.accounts.findByEmail('verify-page@example.test'))!.email_verified_at).not.toBeNull();
    const used = await page(h.app, 'POST', '/verify', { token }, SAME_SITE);
    expect(used.status).toBe(400);
    expect(used.text).toContain('invalid, was already used, or has expired');
  });

  it('signs out only with the session\'s CSRF token from this site', async () => {
    await createUser(h, 'logout@example.test', PW);
    const login = await page(h.app, 'POST', '/login', { email: 'logout@example.test', password: PW }, SAME_SITE, nextIp());
    const sess = login.cookies[SESSION_COOKIE]!.value;
    const sec = await page(h.app, 'GET', '/security', undefined, cookie(SESSION_COOKIE, sess));
    const csrf = csrfIn(sec.text);
    const live = async () => (await call(h.app, 'GET', '/api/v1/me', undefined, cookie(SESSION_COOKIE, sess))).status === 200;
    expect((await page(h.app, 'POST', '/logout', { csrf: 'f'.repeat(64) }, { ...SAME_SITE, ...cookie(SESSION_COOKIE, sess) })).status).toBe(403);
    expect((await page(h.app, 'POST', '/logout', {}, { ...SAME_SITE, ...cookie(SESSION_COOKIE, sess) })).status).toBe(403);
    expect((await page(h.app, 'POST', '/logout', { csrf }, { origin: 'https://evil.example', ...cookie(SESSION_COOKIE, sess) })).status).toBe(403);
    expect(await live()).toBe(true);
    const out = await page(h.app, 'POST', '/logout', { csrf }, { ...SAME_SITE, ...cookie(SESSION_COOKIE, sess) });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/login?signed_out=1');
    expect(out.cookies[SESSION_COOKIE]!.value).toBe('');
    expect(await live()).toBe(false);
    expect((await page(h.app, 'GET', '/login?signed_out=1')).text).toContain('You are signed out.');
  });
});
