/**
 * Property-based: random bodies, content types and query strings thrown at the recovery routes
 * (API and pages) never produce a 5xx, API errors are problem+json, and nothing random ever
 * changes a password or sends mail.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, lastResetMail, requestReset } from '../../../test/helpers/recovery.js';

const ROUTES = [
  ['POST', '/api/v1/password-resets'],
  ['POST', '/api/v1/password-resets/confirm'],
  ['POST', '/api/v1/password-resets/deny'],
  ['GET', '/forgot'],
  ['POST', '/forgot'],
  ['GET', '/reset'],
  ['POST', '/reset'],
  ['GET', '/reset/deny'],
  ['POST', '/reset/deny'],
] as const;

describe.each(DIALECTS)('recovery routes under random input on %s', (dialect) => {
  let h: Harness;
  let token: string;
  let denyToken: string;
  beforeAll(async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'fuzz-reset@example.test', 'fuzz reset passphrase 1');
    await requestReset(h, 'fuzz-reset@example.test');
    ({ token, denyToken } = await lastResetMail(h, 'fuzz-reset@example.test'));
  });
  afterAll(async () => { await h.close(); });

  it('never answers 5xx', async () => {
    // Near-misses of real tokens as well as noise: the interesting inputs are almost valid.
    // Bodies get near-misses only (a real token in a random confirm could legitimately reset);
    // queries may carry the real tokens too, since GET must change nothing anyway.
    const nearMiss = fc.tuple(fc.constantFrom(() => token, () => denyToken), fc.nat({ max: 59 }), fc.constantFrom('A', 'b', '-', '_', '.', '=', '%', ' ')).map(([t, i, c]) => {
      const real = t();
      return real.slice(0, i) + (real[i] === c ? 'Z' : c) + real.slice(i + 1);
    });
    const tokenish = fc.oneof(fc.string({ maxLength: 250 }), nearMiss, fc.constant('a.b'), fc.constant(''), fc.constant('%00'), fc.constant('\u0000'));
    const queryToken = fc.oneof(tokenish, fc.constantFrom(() => token, () => denyToken).map((f) => f()));
    const value = fc.oneof(fc.string({ maxLength: 80 }), tokenish, fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), fc.emailAddress());
    const fields = fc.dictionary(fc.constantFrom('email', 'token', 'password', 'confirm', 'otp', 'altcha', 'x', '__proto__', 'constructor'), value, { maxKeys: 5 });
    const body = fc.oneof(
      fields.map((o) => ({ payload: JSON.stringify(o), type: 'application/json' })),
      fields.map((o) => ({ payload: new URLSearchParams(Object.entries(o).map(([k, v]): [string, string] => [k, String(v)])).toString(), type: 'application/x-www-form-urlencoded' })),
      fc.anything({ maxDepth: 2 }).map((v) => ({ payload: JSON.stringify(v) ?? '', type: 'application/json' })),
      fc.string({ maxLength: 200 }).map((s) => ({ payload: s, type: 'application/json' })),
      fc.string({ maxLength: 200 }).map((s) => ({ payload: s, type: 'application/x-www-form-urlencoded' })),
      fc.constant({ payload: 'token=a&token=b&password=x&confirm=x', type: 'application/x-www-form-urlencoded' }),
    );
    const query = fc.dictionary(fc.constantFrom('token', 'x', 'email'), queryToken, { maxKeys: 2 });
    const headers = fc.record({ origin: fc.constantFrom('http://floodgate.test', 'null', 'https://evil.example'), 'sec-fetch-site': fc.constantFrom('same-origin', 'cross-site', 'none'), authorization: fc.constantFrom('Bearer x.y', 'Basic abc') }, { requiredKeys: [] });
    for (const [method, url] of ROUTES) {
      await fc.assert(
        fc.asyncProperty(body, query, headers, async (b, q, hd) => {
          const qs = new URLSearchParams(q).toString();
          const res = await h.app.inject({
            method, url: qs ? `${url}?${qs}` : url, remoteAddress: freshIp(),
            headers: { ...hd, ...(method === 'POST' ? { 'content-type': b.type } : {}) },
            ...(method === 'POST' ? { payload: b.payload } : {}),
          });
          if (res.statusCode >= 500) throw new Error(`${method} ${url} -> ${res.statusCode}: ${res.body.slice(0, 300)}`);
          if (res.statusCode >= 400 && url.startsWith('/api/')) expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        }),
        { numRuns: 40 },
      );
    }
    await h.s.resetIntake.processOnce();
    // Noise changed nothing: the real token is still live, the password still the old one.
    expect(await h.s.recovery.peek(token)).not.toBeNull();
    const changed = await h.s.storage.db.selectFrom('outbox').select('id').where('type', '=', 'password_changed').execute();
    expect(changed).toHaveLength(0);
  }, 120_000);
});
