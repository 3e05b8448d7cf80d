import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/schema.js';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { LocalBreachedList, PwnedRangeList, loadZxcvbnPasswords } from './breached.js';
import { defaultBreachedList } from './index.js';

const sha1 = (s: string) => createHash('sha1').update(s).digest('hex').toUpperCase();

describe('the local breached-password list (zxcvbn-ts common passwords)', () => {
  const list = new LocalBreachedList();

  it('holds the whole zxcvbn-ts list', () => {
    const raw = loadZxcvbnPasswords();
    expect(raw.length).toBeGreaterThan(40_000);
    expect(list.size).toBe(new Set(raw.map((p) => p.toLowerCase())).size);
  });

  it('finds breached and common passwords, whatever their case', async () => {
    for (const p of ['password1', 'iloveyou12', 'PASSWORD1', 'ILoveYou12', 'qwertyuiop', 'trustno1']) expect(await list.isBreached(p)).toBe(true);
  });

  it('does not flag passwords that are not on it', async () => {
    for (const p of ['correct horse battery staple 42', 'a passphrase for mfa 42', 'Zx9!vQ2#mL7$', 'password1 but longer and mine']) expect(await list.isBreached(p)).toBe(false);
  });

  it('can be built from a custom list', async () => {
    const mine = new LocalBreachedList(['Hunter2Hunter2']);
    expect(await mine.isBreached('hunter2hunter2')).toBe(true);
    expect(await mine.isBreached('password1')).toBe(false);
  });
});

describe('the Pwned Passwords range API (k-anonymity)', () => {
  let server: Server;
  let base: string;
  const asked: string[] = [];
  let mode: 'ok' | 'error' | 'hang' = 'ok';
  const remoteOnly = 'only the range api knows this one';

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      asked.push(`${req.url} padding=${req.headers['add-padding']}`);
      if (mode === 'hang') return; // never answers
      if (mode === 'error') { res.writeHead(503).end(); return; }
      const prefix = (req.url ?? '').split('/').pop()!;
      const h = sha1(remoteOnly);
      const lines = ['0018A45C4D1DEF81644B54AB7F969B88D65:1', '00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0'];
      if (h.startsWith(prefix)) lines.push(`${h.slice(5)}:12`);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(lines.join('\r\n'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('sends only the first 5 hex digits of SHA-1 and matches the suffix', async () => {
    mode = 'ok';
    asked.length = 0;
    const list = new PwnedRangeList(base, new LocalBreachedList([]));
    expect(await list.isBreached(remoteOnly)).toBe(true);
    expect(asked).toEqual([`/range/${sha1(remoteOnly).slice(0, 5)} padding=true`]);
    expect(await list.isBreached('nobody has this one 7')).toBe(false);
    // Padding lines (count 0) are not hits.
    expect(asked.every((a) => !a.includes(sha1(remoteOnly).slice(5)))).toBe(true);
  });

  it('asks the local list first, and does not ask the API for a local hit', async () => {
    mode = 'ok';
    asked.length = 0;
    const list = new PwnedRangeList(base, new LocalBreachedList());
    expect(await list.isBreached('iloveyou12')).toBe(true);
    expect(asked).toEqual([]);
  });

  it('never blocks: an error or 2 s without an answer falls back to the local list', async () => {
    const errors: string[] = [];
    const list = new PwnedRangeList(base, new LocalBreachedList(), { onError: (e) => errors.push(e) });
    mode = 'error';
    expect(await list.isBreached(remoteOnly)).toBe(false);
    expect(await list.isBreached('password1')).toBe(true);
    mode = 'hang';
    const t0 = Date.now();
    expect(await list.isBreached(remoteOnly)).toBe(false);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1900);
    expect(took).toBeLessThan(4000);
    expect(errors).toEqual(['range API answered 503', 'timeout']);
    const down = new PwnedRangeList('http://127.0.0.1:1', new LocalBreachedList());
    expect(await down.isBreached(remoteOnly)).toBe(false);
  }, 10_000);

  it('is configured by FLOODGATE_PWNED_RANGE_URL, off by default', () => {
    expect(loadConfig({}).pwnedRangeUrl).toBeNull();
    expect(loadConfig({ FLOODGATE_PWNED_RANGE_URL: 'https://api.pwnedpasswords.com/' }).pwnedRangeUrl).toBe('https://api.pwnedpasswords.com');
    expect(() => loadConfig({ FLOODGATE_PWNED_RANGE_URL: 'ftp://x' })).toThrow(/FLOODGATE_PWNED_RANGE_URL/);
    expect(() => loadConfig({ FLOODGATE_PWNED_RANGE_URL: 'https://x/?a=1' })).toThrow(/FLOODGATE_PWNED_RANGE_URL/);
    expect(defaultBreachedList(null)).toBeInstanceOf(LocalBreachedList);
    expect(defaultBreachedList('https://api.pwnedpasswords.com')).toBeInstanceOf(PwnedRangeList);
  });
});

describe.each(DIALECTS)('breached passwords in the account flows on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('refuses a breached password at sign-up and creation with reason "breached"', async () => {
    for (const password of ['password1', 'iloveyou12', 'IloveYou12']) {
      const r = await call(h.app, 'POST', '/api/v1/accounts', { email: 'new@example.test', password });
      expect(r).toMatchObject({ status: 400, json: { code: 'weak_password', reason: 'breached' } });
    }
    const op = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'op@example.test', password: 'iloveyou12' }, admin);
    expect(op.status).toBe(400);
    const fine = await call(h.app, 'POST', '/api/v1/accounts', { email: 'new@example.test', password: 'my own long passphrase 9' });
    expect(fine.status).toBe(202);
  });

  it('refuses a breached password at password change', async () => {
    await createUser(h, 'change@example.test', 'a passphrase for change 1');
    const token = await signIn(h, 'change@example.test', 'a passphrase for change 1');
    const r = await call(h.app, 'POST', '/api/v1/me/password', { current: 'a passphrase for change 1', password: 'iloveyou12' }, bearer(token));
    expect(r).toMatchObject({ status: 400, json: { code: 'weak_password', reason: 'breached', errors: [{ field: 'password' }] } });
  });
});
