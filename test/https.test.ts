/**
 * On an https public URL (issue 13.11): every cookie is `__Host-` prefixed, Secure, Path=/ and
 * without Domain, so a sibling subdomain or a plain-http page cannot plant or overwrite it; a
 * cookie under the plain name (what such a page could set) is not believed; HSTS is sent.
 */
import cookie from '@fastify/cookie';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearCookie, decorateCookies, readCookie, writeCookie } from '../src/http/cookies.js';
import { call, DIALECTS, makeHarness, type Harness } from './helpers/harness.js';

const HTTPS = { FLOODGATE_PUBLIC_URL: 'https://floodgate.test', FLOODGATE_ADMIN_TOKEN: 'https-test-admin-token-0123456789abcdef' };
const admin = { authorization: `Bearer ${HTTPS.FLOODGATE_ADMIN_TOKEN}` };

function cookiesOf(setCookie: string | string[] | undefined): Map<string, string> {
  const list = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie];
  return new Map(list.map((c) => [c.slice(0, c.indexOf('=')), c]));
}

describe.each(DIALECTS)('cookies and headers on an https public URL on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await makeHarness(dialect, { env: HTTPS });
    const r = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'ada@example.test', password: 'an https test passphrase 1', emailVerified: true }, admin);
    expect(r.status).toBe(201);
  });
  afterAll(async () => { await h.close(); });

  it('sets __Host- cookies (Secure, Path=/, no Domain) and believes no cookie under the plain name', async () => {
    const r = await call(h.app, 'POST', '/api/v1/sessions', { email: 'ada@example.test', password: 'an https test passphrase 1' });
    expect(r.status).toBe(201);
    const set = cookiesOf(r.headers['set-cookie']);
    expect([...set.keys()].sort()).toEqual(['__Host-floodgate_device', '__Host-floodgate_session']);
    for (const c of set.values()) {
      expect(c).toMatch(/; Secure/);
      expect(c).toMatch(/; Path=\//);
      expect(c).toMatch(/; HttpOnly/);
      expect(c).not.toMatch(/Domain=/i);
    }
    const token = r.json.token as string;
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, { cookie: `__Host-floodgate_session=${token}` })).status).toBe(200);
    // What a sibling subdomain or a plain-http page could plant: not believed on https.
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, { cookie: `floodgate_session=${token}` })).status).toBe(401);
    const out = await call(h.app, 'DELETE', '/api/v1/sessions?scope=current', undefined, { cookie: `__Host-floodgate_session=${token}`, origin: 'https://floodgate.test' });
    expect(out.status).toBeLessThan(300);
    expect(cookiesOf(out.headers['set-cookie']).get('__Host-floodgate_session')).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/);
  });

  it('sends HSTS on pages and API answers', async () => {
    for (const url of ['/login', '/api/v1/status', '/healthz']) {
      expect((await h.app.inject({ method: 'GET', url })).headers['strict-transport-security'], url).toMatch(/max-age=31536000/);
    }
  });
});

describe('the console cookie', () => {
  it('is __Host-floodgate_console with Path=/ on https, and floodgate_console on /console on http', async () => {
    for (const https of [true, false]) {
      const app = Fastify();
      await app.register(cookie);
      decorateCookies(app, https);
      app.get('/set', async (_req, reply) => { writeCookie(reply, 'console', 'tok', { sameSite: 'strict', httpPath: '/console', maxAge: 60 }); return 'ok'; });
      app.get('/read', async (req) => readCookie(req, 'console') ?? 'none');
      app.get('/clear', async (_req, reply) => { clearCookie(reply, 'console', { httpPath: '/console' }); return 'ok'; });
      const set = String((await app.inject({ url: '/set' })).headers['set-cookie']);
      if (https) expect(set).toMatch(/^__Host-floodgate_console=tok; Max-Age=60; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
      else expect(set).toMatch(/^floodgate_console=tok; Max-Age=60; Path=\/console; HttpOnly; SameSite=Strict$/);
      expect((await app.inject({ url: '/read', headers: { cookie: https ? '__Host-floodgate_console=a' : 'floodgate_console=a' } })).body).toBe('a');
      expect((await app.inject({ url: '/read', headers: { cookie: https ? 'floodgate_console=a' : '__Host-floodgate_console=a' } })).body).toBe('none');
      expect(String((await app.inject({ url: '/clear' })).headers['set-cookie'])).toMatch(https ? /^__Host-floodgate_console=; .*Path=\/; .*Secure/ : /^floodgate_console=; .*Path=\/console/);
      await app.close();
    }
  });
});
