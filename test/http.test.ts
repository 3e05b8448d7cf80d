import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, bearer, call, createUser, makeHarness, signIn, type Harness } from './helpers/harness.js';

describe('HTTP surface', () => {
  let h: Harness;
  const lines: string[] = [];
  beforeAll(async () => {
    const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
    h = await makeHarness('sqlite', { logger: pino({ level: 'debug' }, sink) });
  });
  afterAll(async () => { await h.close(); });

  it('serves health, metrics and an OpenAPI document covering every public API route', async () => {
    const hz = await call(h.app, 'GET', '/healthz');
    expect(hz).toMatchObject({ status: 200, json: { status: 'ok' } });
    expect(await call(h.app, 'GET', '/readyz')).toMatchObject({ status: 200, json: { status: 'ready', checks: { database: 'ok', counters: 'in-process' } } });
    const oa = await call(h.app, 'GET', '/openapi.json');
    expect(oa.status).toBe(200);
    expect(oa.json.openapi).toBe('3.1.0');
    const documented = new Set(Object.entries(oa.json.paths as Record<string, object>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)));
    const routes = ((h.app as any).floodgateRoutes as { method: string; url: string }[]).filter((r) => r.url.startsWith('/api/'));
    for (const r of routes) expect(documented, `${r.method} ${r.url} is missing from /openapi.json`).toContain(`${r.method} ${r.url.replace(/:([A-Za-z]+)/g, '{$1}')}`);
    await call(h.app, 'POST', '/api/v1/sessions', { email: 'nobody@example.test', password: 'whatever whatever' });
    const m = await call(h.app, 'GET', '/metrics', undefined, admin); // the whole set is for operators (test/metrics.test.ts)
    expect(m.status).toBe(200);
    expect(m.text).toMatch(/# TYPE floodgate_http_requests_total counter/);
    expect(m.text).toMatch(/floodgate_signins_total\{outcome="failed"\} 1/);
    expect(m.text).toMatch(/floodgate_password_hashes\{state="waiting"\} 0/);
    expect(m.text).toMatch(/floodgate_http_requests_total\{method="POST",route="\/api\/v1\/sessions",status="401"\} 1/);
  });

  it('sends security headers and a request id on every answer', async () => {
    const r = await call(h.app, 'GET', '/healthz');
    expect(r.headers['x-request-id']).toMatch(/^[A-Za-z0-9_-]{12,}$/);
    expect(r.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(r.headers['content-security-policy']).toMatch(/frame-ancestors 'none'/);
    expect(r.headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    const err = await call(h.app, 'GET', '/nope');
    expect(err.json.requestId).toBe(err.headers['x-request-id']);
  });

  it('answers the JSON API with the headers that matter for JSON: no sniffing, framing, caching or cross-origin reads', async () => {
    const r = await call(h.app, 'POST', '/api/v1/sessions', { email: 'nobody@example.test', password: 'wrong passphrase 1' });
    expect(r.status).toBe(401);
    expect(r.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.headers['cross-origin-resource-policy']).toBe('same-origin');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['x-request-id']).toMatch(/^[A-Za-z0-9_-]{12,}$/);
  });

  it('never writes passwords, tokens or emails into the logs', async () => {
    await createUser(h, 'secretive@example.test', 'logged passphrase 99');
    const t = await signIn(h, 'secretive@example.test', 'logged passphrase 99');
    await call(h.app, 'POST', '/api/v1/sessions', { email: 'unknown-person@example.test', password: 'another logged secret' });
    await call(h.app, 'GET', '/api/v1/sessions', undefined, bearer(t));
    await call(h.app, 'POST', '/api/v1/accounts', { email: 'signup@example.test', password: 'signup secret 1234' });
    await call(h.app, 'POST', '/api/v1/admin/users', { email: 'x', password: 'bad' }, admin);
    const log = lines.join('');
    expect(log.length).toBeGreaterThan(100);
    for (const secret of ['logged passphrase 99', 'another logged secret', 'signup secret 1234', t, t.split('.')[1]!, 'unknown-person@example.test', 'signup@example.test', 'secretive@example.test', 'test-admin-token']) {
      expect(log).not.toContain(secret);
    }
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const plain = await makeHarness('sqlite');
    const proxied = await makeHarness('sqlite', { env: { FLOODGATE_TRUST_PROXY: 'loopback' } });
    try {
      for (const [hh, expected] of [[plain, '127.0.0.1'], [proxied, '203.0.113.9']] as const) {
        await createUser(hh, 'ip@example.test', 'ip passphrase 123');
        const t = (await hh.app.inject({ method: 'POST', url: '/api/v1/sessions', remoteAddress: '127.0.0.1', headers: { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.9' }, payload: JSON.stringify({ email: 'ip@example.test', password: 'ip passphrase 123' }) })).json().token;
        const list = await call(hh.app, 'GET', '/api/v1/sessions', undefined, bearer(t));
        expect(list.json.sessions[0].ip).toBe(expected);
      }
    } finally {
      await plain.close();
      await proxied.close();
    }
  });
});

describe('docs/api.md', () => {
  it('lists exactly the API endpoints of /openapi.json', async () => {
    const { readFileSync } = await import('node:fs');
    const { endpointTable } = await import('../src/http/api-doc.js');
    // As scripts/sync-api-doc.mjs builds it: with the development-only routes.
    const h = await makeHarness('sqlite', { env: { FLOODGATE_DEV_MAILBOX: 'true' } });
    try {
      const table = endpointTable(h.app.swagger());
      const doc = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
      expect(doc, 'run `npm run docs:api` to regenerate the table').toContain(`<!-- endpoints:start -->\n${table}\n<!-- endpoints:end -->`);
    } finally {
      await h.close();
    }
  });
});

describe('shutdown', () => {
  it('cuts a client that never finishes its request after the grace period, so it cannot hold the shutdown', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const net = await import('node:net');
    const { loadConfig } = await import('../src/config/schema.js');
    const { createFloodgate } = await import('../src/main.js');
    const dir = mkdtempSync(join(tmpdir(), 'fg-shutdown-'));
    const fg = await createFloodgate(loadConfig({ FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir, FLOODGATE_LOG_LEVEL: 'silent' }), { logger: pino({ level: 'silent' }), shutdownGraceMs: 300 });
    await fg.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (fg.app.server.address() as { port: number }).port;
    // A slow client: headers started, never finished.
    const slow = net.connect(port, '127.0.0.1');
    await new Promise<void>((res) => slow.on('connect', () => { slow.write('POST /api/v1/password-resets HTTP/1.1\r\nHost: x\r\n'); res(); }));
    const cut = new Promise<void>((res) => slow.on('close', () => res()));
    const t0 = Date.now();
    await fg.close();
    await cut;
    // Cut after the grace period, not after the 60 s request timeout.
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });
});
