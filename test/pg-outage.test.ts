/**
 * A PostgreSQL restart under a running `floodgate serve` (issue 19.3; the crash of issue 13's
 * wave). On the old code the pg pool emitted 'error' for its idle connections when the server
 * went away ("terminating connection due to administrator command"), nobody listened, and the
 * process died with "Unhandled 'error' event"; it never came back. Now: the process survives,
 * requests get a clear 503 problem while the database is away (never a 500), nothing it accepted
 * is lost, and it serves again within seconds of the database's return.
 *
 * A real `floodgate serve` in a child process, on a throwaway cluster this test starts, stops and
 * starts again (test/helpers/pg-cluster.ts). Runs with the PostgreSQL suites (CI sets the URL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from './helpers/cli.js';
import { POSTGRES_URL } from './helpers/harness.js';
import { createCluster, type Cluster } from './helpers/pg-cluster.js';
import { freePort } from './helpers/net.js';

const ADMIN = 'outage-test-admin-token-0123456789abcdef';
const PASSWORD = 'an outage test passphrase 7';

describe.runIf(POSTGRES_URL)('a PostgreSQL restart under floodgate serve', { timeout: 240_000 }, () => {
  let cluster: Cluster;
  let child: ChildProcess;
  let base = '';
  let output = '';
  let exitCode: number | null | undefined;

  beforeAll(async () => {
    cluster = await createCluster();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOODGATE_')));
    child = spawn(process.execPath, [...CLI, 'serve'], {
      cwd: mkdtempSync(join(tmpdir(), 'fg-outage-')),
      env: { ...env, FLOODGATE_PORT: String(port), FLOODGATE_PUBLIC_URL: base, FLOODGATE_DATABASE_URL: cluster.url, FLOODGATE_ADMIN_TOKEN: ADMIN, FLOODGATE_LOG_LEVEL: 'warn', FLOODGATE_HASH_CONCURRENCY: '1', FLOODGATE_TRUST_PROXY: 'loopback' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { output = (output + d).slice(-20_000); });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { output = (output + d).slice(-20_000); });
    child.on('exit', (code) => { exitCode = code; });
    const t0 = Date.now();
    while (Date.now() - t0 < 60_000) {
      if (exitCode !== undefined) throw new Error(`serve exited with ${exitCode}: ${output}`);
      try { if ((await fetch(`${base}/healthz`)).status === 200) return; } catch { /* not up yet */ }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`serve did not come up: ${output}`);
  });

  afterAll(async () => {
    if (child && exitCode === undefined) {
      child.kill('SIGTERM');
      await new Promise((r) => { child.once('exit', r); setTimeout(r, 15_000); });
    }
    await cluster?.destroy();
  });

  const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    try {
      const r = await fetch(`${base}${path}`, {
        method, signal: AbortSignal.timeout(15_000),
        headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: r.status, type: r.headers.get('content-type') ?? '', retryAfter: r.headers.get('retry-after'), text: await r.text() };
    } catch (e) {
      return { status: 0, type: '', retryAfter: null, text: String(e) };
    }
  };

  it('survives, answers 503 while the database is away, loses nothing it accepted, and serves again within seconds', async () => {
    const emails = Array.from({ length: 12 }, (_, i) => `outage${i}@example.test`);
    for (const email of emails) expect((await api('POST', '/api/v1/admin/users', { email, password: PASSWORD, emailVerified: true }, { authorization: `Bearer ${ADMIN}` })).status).toBe(201);
    const login = await api('POST', '/api/v1/sessions', { email: emails[0], password: PASSWORD });
    expect(login.status).toBe(201);
    const auth = { authorization: `Bearer ${JSON.parse(login.text).token}` };

    // Load through the whole restart: session reads (a query each) and reset requests (an intake
    // row each), one reset per address so every accepted one must end as a reset mail.
    const statuses: { phase: string; status: number; path: string; type: string; retryAfter: string | null }[] = [];
    const accepted: string[] = [];
    let phase = 'before';
    let next = 0;
    let ip = 0;
    let round = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        const at = phase; // the phase the request was sent in
        const r = await api('GET', '/api/v1/sessions', undefined, auth);
        statuses.push({ phase: at, status: r.status, path: 'sessions', type: r.type, retryAfter: r.retryAfter });
        if (next < emails.length && ++round % 8 === 0) { // about two resets a second: some before, during and after the outage
          const email = emails[next++]!;
          const at2 = phase;
          // Each from a network of its own (through the trusted loopback proxy): this test is not about the guard's limits.
          const rr = await api('POST', '/api/v1/password-resets', { email }, { 'x-forwarded-for': `198.18.${ip++ & 255}.1` });
          statuses.push({ phase: at2, status: rr.status, path: 'resets', type: rr.type, retryAfter: rr.retryAfter });
          if (rr.status === 202) accepted.push(email);
          // 503: ask again later, as a client told Retry-After would. (A 428 is the guard asking for
          // proof of work after the burst of retries: a right answer, and this client moves on.)
          else if (rr.status !== 428) next--;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const loops = [loop(), loop()];
    await new Promise((r) => setTimeout(r, 1500));
    phase = 'stopping';
    await cluster.stop();
    phase = 'down';
    await new Promise((r) => setTimeout(r, 4000));
    expect(exitCode, `serve died when PostgreSQL stopped:\n${output}`).toBeUndefined();
    // Alive (no point restarting it), but not ready for traffic.
    expect((await api('GET', '/healthz')).status).toBe(200);
    const notReady = await api('GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(JSON.parse(notReady.text)).toMatchObject({ status: 'not_ready', checks: { counters: 'in-process' } });
    expect(JSON.parse(notReady.text).checks.database).not.toBe('ok');
    phase = 'restarting';
    await cluster.start();
    const back = Date.now();
    let servedAfterMs = -1;
    while (Date.now() - back < 30_000) {
      if ((await api('GET', '/api/v1/sessions', undefined, auth)).status === 200) { servedAfterMs = Date.now() - back; break; }
      await new Promise((r) => setTimeout(r, 100));
    }
    phase = 'after';
    expect(JSON.parse((await api('GET', '/readyz')).text)).toEqual({ status: 'ready', checks: { database: 'ok', counters: 'in-process' } });
    await new Promise((r) => setTimeout(r, 1500));
    while (next < emails.length && Date.now() - back < 60_000) await new Promise((r) => setTimeout(r, 100));
    stop = true;
    await Promise.all(loops);

    const summary = statuses.reduce<Record<string, number>>((m, x) => { const k = `${x.phase} ${x.path} ${x.status}`; m[k] = (m[k] ?? 0) + 1; return m; }, {});
    console.log('outage:', JSON.stringify(summary), 'served again after', servedAfterMs, 'ms');
    expect(exitCode, `serve died:\n${output}`).toBeUndefined();
    expect(servedAfterMs, 'serving again after the database returned').toBeGreaterThanOrEqual(0);
    expect(servedAfterMs).toBeLessThan(10_000);
    const down = statuses.filter((s) => s.phase === 'down');
    expect(down.length).toBeGreaterThan(0);
    // While the database is away: 503 problems with Retry-After, never a 500 or a dropped connection.
    expect(statuses.filter((s) => s.status === 500 || s.status === 0), JSON.stringify(statuses.filter((s) => s.status === 500 || s.status === 0).slice(0, 5))).toEqual([]);
    for (const s of down.filter((x) => x.status === 503)) {
      expect(s.type).toMatch(/application\/problem\+json/);
      expect(s.retryAfter).toBe('5');
    }
    expect(down.filter((s) => s.path === 'sessions').every((s) => s.status === 503)).toBe(true);
    expect(statuses.filter((s) => s.phase === 'before').every((s) => s.status === 200 || s.status === 202)).toBe(true);
    expect(accepted.length).toBeGreaterThan(emails.length / 2);
    expect(statuses.filter((s) => s.path === 'resets' && s.phase === 'down').every((s) => s.status === 503)).toBe(true);
    expect(statuses.filter((s) => s.path === 'resets' && s.phase === 'down').length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s.path === 'resets' && s.phase === 'after' && s.status === 202).length).toBeGreaterThan(0);

    // Nothing accepted is lost: every 202 becomes a reset mail (dev mailbox channel, in-process courier).
    const c = new pg.Client({ connectionString: cluster.url });
    await c.connect();
    try {
      const t0 = Date.now();
      let mailed = new Set<string>();
      while (Date.now() - t0 < 30_000) {
        const r = await c.query<{ recipient: string }>("SELECT DISTINCT recipient FROM outbox WHERE type = 'password_reset'");
        mailed = new Set(r.rows.map((x) => x.recipient));
        if (accepted.every((e) => mailed.has(e))) break;
        await new Promise((res) => setTimeout(res, 250));
      }
      expect(accepted.filter((e) => !mailed.has(e))).toEqual([]);
    } finally {
      await c.end();
    }
  });
});
