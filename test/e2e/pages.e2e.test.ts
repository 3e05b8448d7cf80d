/**
 * Real Chromium against a real listening Floodgate: a person's password reset from /forgot
 * through the mailed link to /login and /security; an operator releasing a held broadcast in the
 * console; the ALTCHA widget solving a challenge on /forgot. Screenshots go to
 * artifacts/screenshots/.
 */
import { Secret, TOTP } from 'otpauth';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleAccess } from '../../src/web/console/index.js';
import { admin } from '../helpers/harness.js';
import { launchChromium, serve, shot, submit, until, type Served } from '../helpers/browser.js';
import { linksOf, waitFor } from '../helpers/smtp.js';

let browser: Browser;
beforeAll(async () => { browser = await launchChromium(); }, 60_000);
afterAll(async () => { await browser?.close(); });

describe('a person in Chromium', () => {
  let srv: Served;
  beforeAll(async () => { srv = await serve(); }, 60_000);
  afterAll(async () => { await srv?.close(); });

  it('resets a forgotten password from /forgot through the mailed link, signs in with the keyboard and sees this device on /security', async () => {
    const email = 'e2e-person@example.test';
    expect((await srv.api('POST', '/api/v1/admin/users', { email, password: 'the first passphrase 11', emailVerified: true }, admin)).status).toBe(201);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text()); });

    await page.goto(srv.url + '/forgot');
    await shot(page, 'forgot');
    await page.fill('input[name=email]', email);
    expect(await submit(page)).toBe(200);
    expect(await page.textContent('main')).toContain('If an account exists for that address');
    await shot(page, 'forgot-sent');

    const mail = await waitFor(() => srv.sink.to(email).find((m) => linksOf(m).some((u) => u.includes('/reset?token='))), 20_000);
    const link = linksOf(mail!).find((u) => u.includes('/reset?token='))!;
    expect(link.startsWith(srv.url + '/reset?token=')).toBe(true);
    await page.goto(link);
    await shot(page, 'reset');
    for (const el of await page.$$('input[type=password]')) await el.fill('the second passphrase 22');
    expect(await submit(page)).toBe(200);
    expect(await page.textContent('main')).toContain('Your password has been changed');
    await shot(page, 'reset-done');

    // Sign in with the keyboard only: the email field has focus, Tab moves on, Enter submits.
    await page.goto(srv.url + '/login');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('email');
    await shot(page, 'login');
    await page.keyboard.type(email);
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe('password');
    await page.keyboard.type('the second passphrase 22');
    const answered = page.waitForResponse((r) => r.request().method() === 'POST');
    await page.keyboard.press('Enter');
    expect((await answered).status()).toBe(303);
    await page.waitForURL(srv.url + '/security');
    const body = (await page.textContent('main'))!;
    expect(body).toContain('This device');
    expect(body).toMatch(/Chrom/);
    await waitFor(() => srv.sink.to(email).find((m) => m.parsed.subject === 'Your password was changed'), 20_000);
    await page.reload();
    const mailSection = (await page.textContent('#mail'))!;
    expect(mailSection).toContain('Reset your password');
    expect(mailSection).toContain('Your password was changed');
    expect(mailSection).toContain('Sent');
    await shot(page, 'security');
    // Two-step set-up shows a QR code the camera of a phone can read (an <img> of the SVG).
    expect(await submit(page, 'form[action="/security/totp"] button[type=submit]')).toBe(200);
    const qr = page.locator('img.qr');
    expect(await qr.evaluate((img: any) => img.complete && img.naturalWidth > 0)).toBe(true);
    await shot(page, 'totp-setup');
    await page.goto(srv.url + '/security');

    // The same page on a phone: no horizontal scrolling of the page itself.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    const overflow = await page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth');
    expect(Number(overflow)).toBeLessThanOrEqual(0);
    await shot(page, 'security-phone');
    await page.goto(srv.url + '/status');
    await shot(page, 'status-phone');
    await page.setViewportSize({ width: 1280, height: 720 });
    await page.goto(srv.url + '/signup');
    await shot(page, 'signup');
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(srv.url + '/security');
    await shot(page, 'security-dark');
    expect(cspErrors).toEqual([]);
    await ctx.close();
  }, 120_000);

  it('solves the ALTCHA challenge on /forgot when the guard asks for one', async () => {
    const email = 'e2e-challenge@example.test';
    expect((await srv.api('POST', '/api/v1/admin/users', { email, password: 'the challenge passphrase 3', emailVerified: true }, admin)).status).toBe(201);
    await srv.fg.services.guard.override('reset', 'challenge', 'test');
    try {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      const cspErrors: string[] = [];
      page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()); });
      await page.goto(srv.url + '/forgot');
      await page.fill('input[name=email]', email);
      expect(await submit(page)).toBe(428);
      await page.waitForSelector('altcha-widget input[type=checkbox]');
      await shot(page, 'forgot-challenge');
      expect(srv.sink.to(email)).toHaveLength(0);
      // As a person does: click the box's label (the drawn box sits over the native checkbox).
      await page.click('altcha-widget label[for^="altcha-checkbox"]');
      await until(page, "(document.querySelector('input[name=altcha]') || {}).value", 60_000);
      await shot(page, 'forgot-challenge-solved');
      expect(await submit(page)).toBe(200);
      expect(await page.textContent('main')).toContain('If an account exists for that address');
      await waitFor(() => srv.sink.to(email).find((m) => linksOf(m).some((u) => u.includes('/reset?token='))), 20_000);
      expect(cspErrors).toEqual([]);
      await ctx.close();
    } finally {
      await srv.fg.services.guard.override('reset', null, 'test');
    }
  }, 120_000);
});

describe('a person with a passkey in Chromium', () => {
  let srv: Served;
  // Passkeys need a domain for their relying-party id: the public URL is http://localhost:PORT
  // (a secure context for WebAuthn, like any loopback origin).
  beforeAll(async () => { srv = await serve({}, 'localhost'); }, 60_000);
  afterAll(async () => { await srv?.close(); });

  it('adds a passkey on /security, signs out, and signs in with it on /login', async () => {
    const email = 'e2e-passkey@example.test';
    const pw = 'the passkey passphrase 5';
    expect((await srv.api('POST', '/api/v1/admin/users', { email, password: pw, emailVerified: true }, admin)).status).toBe(201);
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()); });
    // A software authenticator with this device's "screen lock" (user verification) built in.
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true } });

    await page.goto(srv.url + '/login');
    await page.fill('#email', email);
    await page.fill('#password', pw);
    await Promise.all([page.waitForURL(srv.url + '/security'), page.click('form[action="/login"] button[type=submit]')]);
    expect(await page.textContent('#passkeys')).toContain('No passkey yet');
    await page.waitForSelector('#passkey-add:not([hidden])');
    await page.fill('#passkey-name', 'e2e laptop');
    await page.click('#passkey-add-button');
    // The first second factor: its recovery codes are shown once, on the page.
    await page.waitForSelector('#passkey-codes:not([hidden])');
    expect(await page.locator('#passkey-codes-list li').count()).toBe(10);
    await shot(page, 'passkey-added');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    expect(credentials).toHaveLength(1);
    expect(credentials[0]!.isResidentCredential).toBe(true);
    await Promise.all([page.waitForURL(/done=passkey_added/), page.click('#passkey-codes-done')]);
    expect(await page.textContent('#passkeys')).toContain('e2e laptop');

    // Sign out, then back in with the passkey alone: no email, no password.
    await Promise.all([page.waitForURL(/\/login/), page.click('form[action="/logout"] button[type=submit]')]);
    await page.goto(srv.url + '/login');
    await page.waitForSelector('#passkey-signin:not([hidden])');
    await shot(page, 'login-passkey');
    await Promise.all([page.waitForURL(srv.url + '/security'), page.click('#passkey-signin-button')]);
    expect(await page.textContent('main')).toContain('This device');
    const events = await srv.fg.services.events.listForUser(srv.fg.services.storage.db, (await srv.fg.services.accounts.findByEmail(email))!.id, 10);
    expect(events.some((e) => e.type === 'signin.succeeded' && JSON.stringify(e.data ?? {}).includes('passkey'))).toBe(true);

    // Made an operator, the same passkey alone opens the console.
    await consoleAccess(srv.fg.services).grant(email, { id: 'cli', name: 'cli' }, 'e2e');
    await page.goto(srv.url + '/console/login');
    await page.waitForSelector('#console-passkey:not([hidden])');
    await Promise.all([page.waitForURL(srv.url + '/console'), page.click('#console-passkey-button')]);
    expect(await page.textContent('main')).toContain('open incident');
    await shot(page, 'console-passkey');
    await page.goto(srv.url + '/security');

    // And remove it again from /security (a recent sign-in: no password asked).
    await page.click('#passkeys details summary');
    await Promise.all([page.waitForURL(/done=passkey_removed/), page.click('#passkeys form[action="/security/passkeys/remove"] button[type=submit]')]);
    expect(await page.textContent('main')).toContain('The passkey was removed');
    expect(cspErrors).toEqual([]);
    await ctx.close();
  }, 120_000);
});

describe('an operator in Chromium', () => {
  let srv: Served;
  beforeAll(async () => { srv = await serve({ FLOODGATE_BLAST_RADIUS: '3' }); }, 60_000);
  afterAll(async () => { await srv?.close(); });

  it('signs in to the console with a TOTP code, watches the live charts, and releases a held broadcast', async () => {
    const opEmail = 'e2e-operator@example.test';
    const pw = 'operator passphrase 4242';
    for (const email of [opEmail, 'e2e-u1@example.test', 'e2e-u2@example.test', 'e2e-u3@example.test', 'e2e-u4@example.test']) {
      expect((await srv.api('POST', '/api/v1/admin/users', { email, password: pw, emailVerified: true }, admin)).status).toBe(201);
    }
    // The operator turns on an authenticator app (through the API, as their own client would).
    const sess = await srv.api('POST', '/api/v1/sessions', { email: opEmail, password: pw });
    const auth = { authorization: `Bearer ${sess.json.token}` };
    const en = await srv.api('POST', '/api/v1/me/mfa/totp', {}, auth);
    const code = (ms: number) => TOTP.generate({ secret: Secret.fromBase32(en.json.secret), algorithm: 'SHA1', digits: 6, period: 30, timestamp: ms });
    expect((await srv.api('POST', '/api/v1/me/mfa/totp/confirm', { code: code(Date.now()) }, auth)).status).toBe(200);
    await consoleAccess(srv.fg.services).grant(opEmail, { id: 'cli', name: 'cli' }, 'e2e');

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const cspErrors: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) cspErrors.push(m.text()); });
    await page.goto(srv.url + '/console/login');
    await shot(page, 'console-login');
    await page.fill('#email', opEmail);
    await page.fill('#password', pw);
    // The next time step (within the accepted drift): the current one was spent on enrolment.
    await page.fill('#otp', code(Date.now() + 30_000));
    expect(await submit(page)).toBe(303);
    await page.waitForURL(srv.url + '/console');
    // Live: at least two samples arrived over Server-Sent Events and uPlot drew its canvases.
    await until(page, "Number(document.getElementById('live-status').dataset.samples || 0) >= 2", 20_000);
    expect(await page.locator('#chart-requests canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart-mail canvas').count()).toBeGreaterThan(0);
    await shot(page, 'console-overview');
    await page.emulateMedia({ colorScheme: 'dark' });
    await shot(page, 'console-overview-dark');
    await page.emulateMedia({ colorScheme: 'light' });

    await page.goto(srv.url + '/console/broadcasts');
    await page.fill('#b-subject', 'About the password reset emails');
    await page.fill('#b-text', 'Some of you received password reset emails you did not ask for. You can ignore them: your account is safe.\n\nWe never ask for your password by email.');
    await page.fill('#b-reason', 'incident 7: tell users they can ignore the reset emails');
    expect(await submit(page, 'form[action="/console/broadcasts"] button[type=submit]')).toBe(303);
    expect(await page.textContent('main')).toContain('The broadcast was queued.');
    // Three go out (the blast radius), two are held.
    await waitFor(() => srv.sink.messages.filter((m) => m.parsed.subject === 'About the password reset emails').length === 3, 20_000);
    await waitFor(async () => (await srv.fg.services.broadcasts.list(1))[0]?.held === 2, 20_000);
    await page.goto(srv.url + '/console/holds');
    expect(await page.textContent('main')).toContain('Held by type: broadcast 2');
    await shot(page, 'console-holds');
    await page.goto(srv.url + '/console/broadcasts');
    await shot(page, 'console-broadcasts');

    const approve = page.locator('form[action="/console/broadcasts/approve"]');
    await approve.locator('input[name=reason]').fill('text checked with the incident lead');
    expect(await submit(page, 'form[action="/console/broadcasts/approve"] button[type=submit]')).toBe(303);
    expect(await page.textContent('main')).toContain('Approved: the held recipients get the broadcast now');
    await waitFor(() => srv.sink.messages.filter((m) => m.parsed.subject === 'About the password reset emails').length === 5, 20_000);
    const recipients = new Set(srv.sink.messages.filter((m) => m.parsed.subject === 'About the password reset emails').flatMap((m) => m.to));
    expect(recipients.size).toBe(5);
    await page.reload();
    await shot(page, 'console-broadcasts-approved');

    await page.goto(srv.url + '/console/audit');
    const audit = (await page.textContent('main'))!;
    expect(audit).toContain('text checked with the incident lead');
    expect(audit).toContain('broadcast.create');
    await shot(page, 'console-audit');
    await page.goto(srv.url + '/console/switches');
    await shot(page, 'console-switches');
    await page.goto(srv.url + '/console/incidents');
    await shot(page, 'console-incidents');
    await page.goto(srv.url + '/console/users?email=' + encodeURIComponent('e2e-u1@example.test'));
    expect(await page.textContent('main')).toContain('About the password reset emails');
    await shot(page, 'console-users');
    await page.goto(srv.url + '/console/status');
    await page.fill('#sn-title', 'Password reset emails you did not ask for');
    await page.fill('#sn-body', 'On 12 January a bug let outsiders trigger genuine reset emails. Nothing was exposed.\n\nYou can ignore these emails. We never ask for your password by email.');
    expect(await submit(page, 'form[action="/console/status"] button[type=submit]')).toBe(303);
    await shot(page, 'console-status');
    await page.goto(srv.url + '/status');
    expect(await page.textContent('main')).toContain('Password reset emails you did not ask for');
    await shot(page, 'status');
    expect(cspErrors).toEqual([]);
    await ctx.close();
  }, 180_000);
});
