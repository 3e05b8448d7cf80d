/**
 * Operator authentication (issue 13, item 11): long tokens, and failed bearer authentication
 * throttled per source and per network, checked before any token is compared.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configProblems as problems, configWarnings, loadConfig } from '../../config/schema.js';
import { MINUTE, SECOND } from '../../kernel/clock.js';
import { ADMIN_TOKEN, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { from } from '../../../test/helpers/recovery.js';

describe('the bootstrap admin token', () => {
  const long = 'x'.repeat(31) + 'y';
  it('needs 32 characters when the public URL is https, and never echoes the token', () => {
    const p = problems({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com', FLOODGATE_ADMIN_TOKEN: 'twenty-eight-chars-token-123' });
    expect(p).toEqual([expect.stringMatching(/^FLOODGATE_ADMIN_TOKEN: must be at least 32 characters when FLOODGATE_PUBLIC_URL is https/)]);
    expect(p.join('\n')).not.toContain('twenty-eight');
    expect(loadConfig({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com', FLOODGATE_ADMIN_TOKEN: long }).adminToken).toBe(long);
    expect(configWarnings(loadConfig({ FLOODGATE_PUBLIC_URL: 'https://auth.example.com', FLOODGATE_ADMIN_TOKEN: long }))).toEqual([]);
  });

  it('on http accepts 16 to 31 characters with a warning (development), and refuses fewer than 16', () => {
    const c = loadConfig({ FLOODGATE_PUBLIC_URL: 'http://localhost:8080', FLOODGATE_ADMIN_TOKEN: 'twenty-eight-chars-token-123' });
    expect(c.adminToken).toBe('twenty-eight-chars-token-123');
    const w = configWarnings(c);
    expect(w).toEqual([expect.stringMatching(/^FLOODGATE_ADMIN_TOKEN is shorter than 32 characters/)]);
    expect(w.join()).not.toContain('twenty-eight');
    expect(problems({ FLOODGATE_ADMIN_TOKEN: 'fifteen-chars-x' })).toEqual([expect.stringMatching(/^FLOODGATE_ADMIN_TOKEN: must be at least 16 characters/)]);
  });

  it('logs the warning when the server boots, without the token', async () => {
    let out = '';
    const sink = new Writable({ write(chunk, _enc, done) { out += String(chunk); done(); } });
    const h = await makeHarness('sqlite', { logger: pino({ level: 'warn' }, sink) });
    try {
      const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
      expect(lines).toContainEqual(expect.objectContaining({ level: 40, config: 'warning', msg: expect.stringMatching(/^FLOODGATE_ADMIN_TOKEN is shorter than 32 characters/) }));
      expect(out).not.toContain(ADMIN_TOKEN);
    } finally {
      await h.close();
    }
  });
});

describe.each(DIALECTS)('operator authentication on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  const guard = (ip: string, token: string) => from(h.app, ip, 'GET', '/api/v1/admin/guard', undefined, { authorization: `Bearer ${token}` });

  it('mints named operator tokens of 64 characters with a 256-bit secret', async () => {
    const { token } = await h.s.operators.create('long-token-check');
    expect(token).toMatch(/^fgo_[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect((await guard('192.0.2.200', token)).status).toBe(200);
  });

  it('throttles failed bearer authentication per source: past 20 wrong tokens even the right one waits, other sources do not', async () => {
    const ip = '192.0.2.10';
    for (let i = 0; i < 20; i++) expect((await guard(ip, `wrong-operator-token-${i}-xxxxxxxxxxxx`)).status).toBe(401);
    const refused = await guard(ip, 'wrong-operator-token-21-xxxxxxxxxxxx');
    expect(refused).toMatchObject({ status: 429, json: { code: 'rate_limited' } });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(String(refused.headers['content-type'])).toMatch(/^application\/problem\+json/);
    // Checked before the compare: the right token from that source is refused the same way.
    const right = await guard(ip, ADMIN_TOKEN);
    expect(right.status).toBe(429);
    expect(right.json.detail).toBe(refused.json.detail);
    const named = (await h.s.operators.create('throttled-named')).token;
    expect((await guard(ip, named)).status).toBe(429);
    // Another source is not affected; a successful authentication is never counted.
    for (let i = 0; i < 25; i++) expect((await guard('192.0.2.11', ADMIN_TOKEN)).status).toBe(200);
    // A sliding window: the failures weigh less and less, and are forgotten after two windows.
    h.clock.advance(20 * MINUTE + SECOND);
    expect((await guard(ip, ADMIN_TOKEN)).status).toBe(200);
  });

  it('counts an IPv6 /64 as one source, and throttles a network (/24) that spreads its guesses', async () => {
    for (let i = 0; i < 20; i++) expect((await guard(`2001:db8:5:7:${(i + 1).toString(16)}::9`, `guess-${i}-yyyyyyyyyyyyyyyyyyyy`)).status).toBe(401);
    expect((await guard('2001:db8:5:7:ffff::1', ADMIN_TOKEN)).status).toBe(429);
    expect((await guard('2001:db8:5:8::1', ADMIN_TOKEN)).status).toBe(200);
    h.clock.advance(20 * MINUTE + SECOND);

    // 200 failures per 10 minutes per network: ten addresses of 198.51.100.0/24, 20 each.
    for (let a = 1; a <= 10; a++) for (let i = 0; i < 20; i++) expect((await guard(`198.51.100.${a}`, `spread-${a}-${i}-zzzzzzzzzzzzzzzz`)).status).toBe(401);
    expect((await guard('198.51.100.77', ADMIN_TOKEN)).status).toBe(429);
    expect((await guard('198.51.101.77', ADMIN_TOKEN)).status).toBe(200);
  });
});
