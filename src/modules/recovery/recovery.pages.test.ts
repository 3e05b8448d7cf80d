import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { form, freshIp, from, lastResetMail, requestReset, resetRows, stableHeaders } from '../../../test/helpers/recovery.js';

const PW = 'pages test passphrase 1';
const NEW = 'pages test new passphrase 2';

describe.each(DIALECTS)('recovery pages on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const snapshot = async () => ({
    flows: await h.s.storage.db.selectFrom('recovery_flows').selectAll().orderBy('id').execute(),
    accounts: await h.s.storage.db.selectFrom('recovery_accounts').selectAll().orderBy('user_id').execute(),
    events: (await h.s.storage.db.selectFrom('security_events').select('id').execute()).length,
    outbox: (await h.s.storage.db.selectFrom('outbox').select('id').execute()).length,
  });
  const expectTokenPage = (r: { headers: Record<string, unknown> }) => {
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(String(r.headers['content-security-policy'])).not.toMatch(/unsafe-inline/);
  };
  const noInline = (body: string) => {
    expect(body).not.toMatch(/<script|<style|\sstyle=|\son[a-z]+=/i);
    expect(body).toContain('<link rel="stylesheet" href="/assets/app.css">');
  };

  it('serves /forgot with a labelled email form, and answers its post alike for known and unknown emails', async () => {
    await createUser(h, 'page@example.test', PW);
    const g = await from(h.app, freshIp(), 'GET', '/forgot');
    expect(g.status).toBe(200);
    noInline(g.text);
    expect(g.text).toMatch(/<form method="post" action="\/forgot">/);
    expect(g.text).toMatch(/<label for="email">/);
    expect(g.text).toMatch(/<input id="email" name="email" type="email"/);
    const prefilled = await from(h.app, freshIp(), 'GET', '/forgot?email=' + encodeURIComponent('page@example.test'));
    expect(prefilled.text).toContain('value="page@example.test"');
    const ip = freshIp();
    const known = await from(h.app, ip, 'POST', '/forgot', form({ email: 'page@example.test' }), { origin: 'http://floodgate.test' });
    const unknown = await from(h.app, ip, 'POST', '/forgot', form({ email: 'nobody-page@example.test' }), { origin: 'http://floodgate.test' });
    expect(known.status).toBe(200);
    expect(known.text).toContain('If an account exists for that address, we sent a link');
    expect(unknown.text).toBe(known.text);
    expect(stableHeaders(unknown.headers)).toEqual(stableHeaders(known.headers));
    expect(known.text).not.toContain('page@example.test');
    await h.s.resetIntake.processOnce();
    expect(await resetRows(h, 'page@example.test')).toHaveLength(1);
    const bad = await from(h.app, freshIp(), 'POST', '/forgot', form({ email: 'not an email' }));
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('Enter a valid email address.');
    expect(bad.text).toContain('value="not an email"');
    const cross = await from(h.app, freshIp(), 'POST', '/forgot', form({ email: 'page@example.test' }), { origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
  });

  it('shows the reset form on GET without touching the token, and acts only on POST', async () => {
    await createUser(h, 'reset-page@example.test', PW);
    const session = await signIn(h, 'reset-page@example.test', PW);
    await requestReset(h, 'reset-page@example.test');
    const { token, resetLink, denyLink } = await lastResetMail(h, 'reset-page@example.test');
    const before = await snapshot();
    const path = (link: string) => link.slice('http://floodgate.test'.length);
    for (let i = 0; i < 3; i++) {
      const g = await from(h.app, freshIp(), 'GET', path(resetLink));
      expect(g.status).toBe(200);
      expectTokenPage(g);
      noInline(g.text);
      expect(g.text).toContain(`<input type="hidden" name="token" value="${token}">`);
      expect(g.text.match(/type="password"/g)).toHaveLength(2);
      expect(g.text).toMatch(/<label for="password">/);
      expect(g.text).toMatch(/<label for="confirm">/);
      expect(g.text).toMatch(/autocomplete="new-password"/);
      const d = await from(h.app, freshIp(), 'GET', path(denyLink));
      expect(d.status).toBe(200);
      expectTokenPage(d);
      expect(d.text).toMatch(/<form method="post" action="\/reset\/deny">/);
      expect(d.text).toContain('24 hours');
      await from(h.app, freshIp(), 'HEAD', path(resetLink));
    }
    expect(await snapshot()).toEqual(before);

    const mismatch = await from(h.app, freshIp(), 'POST', '/reset', form({ token, password: NEW, confirm: NEW + 'x' }));
    expect(mismatch.status).toBe(400);
    expect(mismatch.text).toContain('The two passwords do not match.');
    expect(mismatch.text).not.toContain(NEW);
    const weak = await from(h.app, freshIp(), 'POST', '/reset', form({ token, password: 'short', confirm: 'short' }));
    expect(weak.status).toBe(400);
    expect(weak.text).toMatch(/at least 8 characters/i);
    const cross = await from(h.app, freshIp(), 'POST', '/reset', form({ token, password: NEW, confirm: NEW }), { 'sec-fetch-site': 'cross-site' });
    expect(cross.status).toBe(403);
    expect(await snapshot()).toEqual(before);

    const ok = await from(h.app, freshIp(), 'POST', '/reset', form({ token, password: NEW, confirm: NEW, otp: '' }), { origin: 'http://floodgate.test', 'sec-fetch-site': 'same-origin' });
    expect(ok.status).toBe(200);
    expectTokenPage(ok);
    expect(ok.text).toContain('Your password has been changed');
    expect(ok.text).toContain('<a href="/login">');
    expect((await from(h.app, freshIp(), 'GET', '/api/v1/sessions', undefined, { authorization: `Bearer ${session}` })).status).toBe(401);
    await signIn(h, 'reset-page@example.test', NEW);

    const used = await from(h.app, freshIp(), 'GET', path(resetLink));
    expect(used.status).toBe(400);
    expect(used.text).toContain('invalid, was already used, or has expired');
    expect(used.text).toContain('<a href="/forgot">');
    const again = await from(h.app, freshIp(), 'POST', '/reset', form({ token, password: NEW, confirm: NEW }));
    expect(again.status).toBe(400);
  });

  it('cancels and reports through the deny page', async () => {
    await createUser(h, 'deny-page@example.test', PW);
    await requestReset(h, 'deny-page@example.test');
    const { token, denyToken } = await lastResetMail(h, 'deny-page@example.test');
    const cross = await from(h.app, freshIp(), 'POST', '/reset/deny', form({ token: denyToken }), { origin: 'null' });
    expect(cross.status).toBe(403);
    const ok = await from(h.app, freshIp(), 'POST', '/reset/deny', form({ token: denyToken }));
    expect(ok.status).toBe(200);
    expectTokenPage(ok);
    expect(ok.text).toContain('The reset link no longer works');
    const r = await from(h.app, freshIp(), 'GET', `/reset?token=${encodeURIComponent(token)}`);
    expect(r.status).toBe(400);
    const bad = await from(h.app, freshIp(), 'POST', '/reset/deny', form({ token: 'nonsense' }));
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('invalid, was already used, or has expired');
  });

  it('escapes whatever comes back into a page', async () => {
    const evil = '"><script>alert(1)</script>';
    const r = await from(h.app, freshIp(), 'POST', '/forgot', form({ email: evil }));
    expect(r.status).toBe(400);
    expect(r.text).not.toContain('<script>');
    expect(r.text).toContain('&quot;&gt;&lt;script&gt;');
    const g = await from(h.app, freshIp(), 'GET', `/reset/deny?token=${encodeURIComponent(evil)}`);
    expect(g.text).not.toContain('<script>');
  });

  it('serves a small stylesheet that the CSP allows', async () => {
    const css = await from(h.app, freshIp(), 'GET', '/assets/app.css');
    expect(css.status).toBe(200);
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(css.text).toMatch(/prefers-color-scheme: dark/);
    expect(css.text).toMatch(/:focus-visible/);
    expect(css.text.length).toBeLessThan(8000);
    const cached = await from(h.app, freshIp(), 'GET', '/assets/app.css', undefined, { 'if-none-match': String(css.headers.etag) });
    expect(cached.status).toBe(304);
  });
});
