import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';

describe.each(DIALECTS)('sessions on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('signs in, lists, revokes others and signs out', async () => {
    await createUser(h, 'ada@example.test', 'correct horse battery 1');
    const t1 = await signIn(h, 'ada@example.test', 'correct horse battery 1', {}, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36' });
    const t2 = await signIn(h, 'ADA@Example.test ', 'correct horse battery 1');
    const list = await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2));
    expect(list.status).toBe(200);
    expect(list.json.sessions).toHaveLength(2);
    expect(list.json.sessions.filter((s: any) => s.current)).toHaveLength(1);
    expect(list.json.sessions.map((s: any) => s.device)).toContain('Chrome 120 on Linux');
    const rev = await call(h.app, 'DELETE', '/api/v1/sessions?scope=others', undefined, bearer(t2));
    expect(rev.json).toEqual({ revoked: 1 });
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t1))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2))).status).toBe(200);
    expect((await call(h.app, 'DELETE', '/api/v1/sessions/current', undefined, bearer(t2))).status).toBe(204);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2))).status).toBe(401);
  });

  it('sets a HttpOnly SameSite=Lax cookie that authenticates, and refuses cross-site cookie writes', async () => {
    await createUser(h, 'cookie@example.test', 'correct horse battery 2');
    const r = await call(h.app, 'POST', '/api/v1/sessions', { email: 'cookie@example.test', password: 'correct horse battery 2' });
    const setCookie = String(r.headers['set-cookie']);
    expect(setCookie).toMatch(/floodgate_session=/);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).not.toMatch(/Secure/); // public URL is http in the harness
    const cookie = { cookie: `floodgate_session=${r.json.token}` };
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, cookie)).status).toBe(200);
    const cross = await call(h.app, 'DELETE', '/api/v1/sessions?scope=others', undefined, { ...cookie, origin: 'https://evil.example' });
    expect(cross.status).toBe(403);
    expect(cross.json.code).toBe('csrf_failed');
    const same = await call(h.app, 'DELETE', '/api/v1/sessions?scope=others', undefined, { ...cookie, origin: 'http://floodgate.test' });
    expect(same.status).toBe(200);
  });

  it('expires sessions after the idle timeout and at the absolute limit', async () => {
    await createUser(h, 'idle@example.test', 'correct horse battery 3');
    const t = await signIn(h, 'idle@example.test', 'correct horse battery 3');
    h.clock.advance(6 * DAY);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t))).status).toBe(200);
    h.clock.advance(7 * DAY + MINUTE);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t))).status).toBe(401);
    const t2 = await signIn(h, 'idle@example.test', 'correct horse battery 3');
    for (let i = 0; i < 5; i++) {
      h.clock.advance(5 * DAY);
      expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2))).status).toBe(200);
    }
    h.clock.advance(5 * DAY - HOUR);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2))).status).toBe(200);
    h.clock.advance(HOUR);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t2))).status).toBe(401);
  });

  it('answers a wrong password and an unknown email with the same 401 body', async () => {
    await createUser(h, 'same@example.test', 'correct horse battery 4');
    const a = await call(h.app, 'POST', '/api/v1/sessions', { email: 'same@example.test', password: 'wrong password here' });
    const b = await call(h.app, 'POST', '/api/v1/sessions', { email: 'nobody@example.test', password: 'wrong password here' });
    expect(a.status).toBe(401);
    expect(b.status).toBe(401);
    expect(a.headers['content-type']).toMatch(/application\/problem\+json/);
    const strip = (j: any) => ({ ...j, requestId: undefined });
    expect(strip(a.json)).toEqual(strip(b.json));
  });

  it('does not accept a token with a wrong secret or a revoked session', async () => {
    await createUser(h, 'tamper@example.test', 'correct horse battery 5');
    const t = await signIn(h, 'tamper@example.test', 'correct horse battery 5');
    const [id] = t.split('.');
    const forged = `${id}.${'A'.repeat(43)}`;
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(forged))).status).toBe(401);
    expect((await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer('garbage'))).status).toBe(401);
  });

  it('lists the caller\'s own security events', async () => {
    await createUser(h, 'events@example.test', 'correct horse battery 6');
    await call(h.app, 'POST', '/api/v1/sessions', { email: 'events@example.test', password: 'nope nope nope' });
    const t = await signIn(h, 'events@example.test', 'correct horse battery 6');
    const r = await call(h.app, 'GET', '/api/v1/me/security-events', undefined, bearer(t));
    expect(r.status).toBe(200);
    const types = r.json.events.map((e: any) => e.type);
    expect(types).toEqual(['signin.succeeded', 'signin.failed', 'account.created']);
    expect(JSON.stringify(r.json)).not.toContain('nope nope nope');
  });

  it('refuses the admin API without the operator token', async () => {
    const r = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'x@example.test', password: 'correct horse battery' }, bearer('wrong-token-0123456789'));
    expect(r.status).toBe(401);
    const ok = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'x@example.test', password: 'correct horse battery' }, admin);
    expect(ok.status).toBe(201);
    const dup = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'X@example.test', password: 'correct horse battery' }, admin);
    expect(dup.status).toBe(409);
  });
});
