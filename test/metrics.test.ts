/**
 * /metrics must not tell accounts apart (issue 13.1). The attack it reproduces: read /metrics,
 * ask for a reset (or sign up) with one email, read it again, and see which counters moved: on
 * the old code `floodgate_password_reset_requests_total{decision="unknown"}` moved for an unknown
 * email and `decision="sent"` for a known one, and sign-up moved
 * `floodgate_messages_total{type="signup_existing"}` for a taken address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, bearer, call, createUser, DIALECTS, makeHarness, type Harness } from './helpers/harness.js';
import { freshIp, from, requestReset } from './helpers/recovery.js';

/** Every sample of the exposition, name{labels} -> value, minus the ones that move by themselves. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    const key = line.slice(0, i);
    // Process and runtime figures (CPU, memory, GC, event loop) and latency buckets change with
    // time, not with accounts; the counts of requests by route and status are what an attacker reads.
    if (/^floodgate_(process_|nodejs_)|_seconds_(bucket|sum)/.test(key)) continue;
    out.set(key, Number(line.slice(i + 1)));
  }
  return out;
}

function moved(before: Map<string, number>, after: Map<string, number>): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => (before.get(k) ?? 0) !== (after.get(k) ?? 0)).map((k) => `${k} +${(after.get(k) ?? 0) - (before.get(k) ?? 0)}`).sort();
}

describe.each(DIALECTS)('metrics and enumeration on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'known@example.test', 'a long enough passphrase 1');
  });
  afterAll(async () => { await h.close(); });

  const scrape = async (headers: Record<string, string> = {}) => {
    const r = await call(h.app, 'GET', '/metrics', undefined, headers);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    return r.text;
  };

  it('moves the same public figures for a known and an unknown email (reset and sign-up)', async () => {
    const around = async (act: () => Promise<unknown>) => {
      const before = samples(await scrape());
      await act();
      return moved(before, samples(await scrape()));
    };
    const resetKnown = await around(() => requestReset(h, 'known@example.test'));
    const resetUnknown = await around(() => requestReset(h, 'unknown@example.test'));
    expect(resetKnown.length).toBeGreaterThan(0); // the scrape sees the request: it is not an empty diff by accident
    expect(resetUnknown).toEqual(resetKnown);
    const signUp = (email: string) => from(h.app, freshIp(), 'POST', '/api/v1/accounts', { email, password: 'another long passphrase 2' });
    const signUpKnown = await around(() => signUp('known@example.test'));
    const signUpNew = await around(() => signUp('newcomer@example.test'));
    expect(signUpNew).toEqual(signUpKnown);
    const text = await scrape();
    for (const name of ['floodgate_password_reset_requests_total', 'floodgate_messages_total', 'floodgate_signins_total', 'floodgate_outbox_depth', 'floodgate_guard_decisions_total']) {
      expect(text, `${name} is public`).not.toContain(name);
    }
    expect(text).toMatch(/# TYPE floodgate_http_requests_total counter/);
    expect(text).toMatch(/floodgate_http_requests_total\{method="POST",route="\/api\/v1\/password-resets",status="202"\} 2/);
  });

  it('gives operators every metric, and refuses a wrong token rather than answering a subset', async () => {
    const full = await scrape(admin);
    expect(full).toMatch(/floodgate_password_reset_requests_total\{decision="[a-z]+"\} \d+/);
    expect(full).toMatch(/floodgate_http_requests_total/);
    const wrong = await call(h.app, 'GET', '/metrics', undefined, bearer('not-an-operator-token-at-all-0123456789'));
    expect(wrong.status).toBe(401);
    expect(wrong.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(wrong.text).not.toContain('floodgate_');
  });
});

describe('metrics on a listener of their own (FLOODGATE_METRICS_PORT)', () => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness('sqlite', { env: { FLOODGATE_METRICS_PORT: '0' } }); });
  afterAll(async () => { await h.close(); });

  it('serves every metric there, and none on the main listener, not even to operators', async () => {
    expect((await call(h.app, 'GET', '/metrics')).status).toBe(404);
    expect((await call(h.app, 'GET', '/metrics', undefined, admin)).status).toBe(404);
    const m = h.fg.metricsApp!;
    expect(m).not.toBeNull();
    const r = await m.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/floodgate_password_reset_requests_total|floodgate_signins_total|floodgate_guard_mode/);
    expect((await m.inject({ method: 'GET', url: '/api/v1/sessions' })).statusCode).toBe(404);
  });

  it('listens on the configured loopback address', async () => {
    await h.fg.metricsApp!.listen({ port: 0, host: '127.0.0.1' });
    const addr = h.fg.metricsApp!.server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(text).toMatch(/# TYPE floodgate_http_requests_total counter/);
  });
});
