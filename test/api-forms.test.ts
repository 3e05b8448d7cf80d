/**
 * Cross-site form posts to the JSON API (issue 13.7). A page on any site can post an HTML form
 * (application/x-www-form-urlencoded) without a CORS preflight. On the old code the form parser
 * served every route, so such a form could sign the visitor in to the attacker's account (login
 * CSRF) or make every visitor a fresh source of sign-up and verification mail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, DIALECTS, makeHarness, type Harness } from './helpers/harness.js';
import { form, freshIp, from } from './helpers/recovery.js';

const CROSS_SITE = { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' };

describe.each(DIALECTS)('the JSON API refuses forms on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'attacker@example.test', 'the attacker passphrase 1');
    await createUser(h, 'pending@example.test', 'the pending passphrase 22', false);
  });
  afterAll(async () => { await h.close(); });

  const outboxCount = async () => (await h.s.storage.db.selectFrom('outbox').select('id').execute()).length;
  const sessionCount = async () => (await h.s.storage.db.selectFrom('sessions').select('id').execute()).length;

  it('answers a cross-site form to sign-in, sign-up and resend with 415, and does nothing', async () => {
    const [mail0, sess0] = [await outboxCount(), await sessionCount()];
    const attempts = [
      ['/api/v1/sessions', { email: 'attacker@example.test', password: 'the attacker passphrase 1' }],
      ['/api/v1/accounts', { email: 'victim-of-csrf@example.test', password: 'a fine long passphrase 3' }],
      ['/api/v1/accounts/verify/resend', { email: 'pending@example.test' }],
      ['/api/v1/password-resets', { email: 'attacker@example.test' }],
    ] as const;
    for (const [url, fields] of attempts) {
      for (const type of ['application/x-www-form-urlencoded', 'application/x-www-form-urlencoded; charset=UTF-8', 'Application/X-WWW-Form-Urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
        const r = await from(h.app, freshIp(), 'POST', url, form(fields), { ...CROSS_SITE, 'content-type': type });
        expect(r.status, `${type} ${url}`).toBe(415);
        expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
        expect(r.headers['set-cookie'], url).toBeUndefined();
      }
    }
    await h.s.resetIntake.processOnce();
    expect(await outboxCount()).toBe(mail0);
    expect(await sessionCount()).toBe(sess0);
  });

  it('still takes JSON (with or without a charset) and leaves the hosted pages their forms', async () => {
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/sessions', { email: 'attacker@example.test', password: 'the attacker passphrase 1' });
    expect(r.status).toBe(201);
    const cs = await h.app.inject({ method: 'POST', url: '/api/v1/sessions', remoteAddress: freshIp(), headers: { 'content-type': 'application/json; charset=utf-8' }, payload: JSON.stringify({ email: 'attacker@example.test', password: 'the attacker passphrase 1' }) });
    expect(cs.statusCode).toBe(201);
    const page = await from(h.app, freshIp(), 'POST', '/forgot', form({ email: 'attacker@example.test' }), { origin: 'http://floodgate.test', 'sec-fetch-site': 'same-origin' });
    expect(page.status).toBeLessThan(500);
    expect(page.status).not.toBe(415);
  });
});
