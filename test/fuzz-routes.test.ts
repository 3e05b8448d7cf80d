/**
 * Property-based: random bodies, content types, parameters and credentials thrown at every
 * registered route must never produce a 5xx, and every error must be problem+json.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { admin, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from './helpers/harness.js';

const jsonish = fc.oneof(
  fc.anything({ maxDepth: 3 }),
  fc.record({ email: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 400 }), fc.integer()), password: fc.oneof(fc.string({ minLength: 0, maxLength: 40 }), fc.constant(null)), token: fc.string({ maxLength: 120 }), code: fc.string({ maxLength: 12 }) }, { requiredKeys: [] }),
  fc.dictionary(fc.string({ maxLength: 20 }), fc.oneof(fc.string({ maxLength: 50 }), fc.integer(), fc.boolean())),
);

const body = fc.oneof(
  jsonish.map((v) => ({ payload: JSON.stringify(v) ?? 'null', type: 'application/json' })),
  fc.string({ maxLength: 300 }).map((v) => ({ payload: v, type: 'application/json' })),
  fc.string({ maxLength: 300 }).map((v) => ({ payload: v, type: 'application/x-www-form-urlencoded' })),
  fc.string({ maxLength: 300 }).map((v) => ({ payload: v, type: 'application/x-ndjson' })),
  fc.string({ maxLength: 100 }).map((v) => ({ payload: v, type: 'text/plain' })),
  fc.constant({ payload: '', type: 'application/json' }),
  fc.constant({ payload: '{"email":"' + 'a'.repeat(70_000) + '"}', type: 'application/json' }),
);

const segment = fc.oneof(fc.string({ minLength: 1, maxLength: 80 }), fc.constant('current'), fc.constant('..'), fc.constant('%00'));

describe.each(DIALECTS)('every route on %s', (dialect) => {
  let h: Harness;
  let userAuth: Record<string, string>;
  beforeAll(async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'fuzz@example.test', 'fuzz passphrase 123');
    userAuth = { authorization: `Bearer ${await signIn(h, 'fuzz@example.test', 'fuzz passphrase 123')}` };
  });
  afterAll(async () => { await h.close(); });

  it('never answers 5xx to random input', async () => {
    const routes = (h.app as any).floodgateRoutes as { method: string; url: string }[];
    expect(routes.length).toBeGreaterThan(10);
    const auths = [{}, admin, () => userAuth, { authorization: 'Bearer ' + 'x'.repeat(30) }, { cookie: 'floodgate_session=abc.def' }];
    for (const route of routes) {
      await fc.assert(
        fc.asyncProperty(body, fc.array(segment, { minLength: 3, maxLength: 3 }), fc.nat(auths.length - 1), fc.dictionary(fc.constantFrom('token', 'scope', 'limit', 'before', 'x'), fc.string({ maxLength: 40 })), async (b, segs, ai, query) => {
          let i = 0;
          const url = route.url.replace(/:[A-Za-z]+|\*/g, () => encodeURIComponent(segs[i++ % segs.length]!));
          const qs = new URLSearchParams(query).toString();
          const a = auths[ai]!;
          const headers = { ...(typeof a === 'function' ? a() : a), 'content-type': b.type };
          const withBody = !['GET', 'HEAD', 'DELETE'].includes(route.method) || b.payload.length % 2 === 0;
          const res = await h.app.inject({ method: route.method as 'GET', url: qs ? `${url}?${qs}` : url, headers, ...(withBody ? { payload: b.payload } : {}) });
          if (res.statusCode >= 500) throw new Error(`${route.method} ${url} -> ${res.statusCode}: ${res.body.slice(0, 300)}`);
          if (res.statusCode >= 400 && url.startsWith('/api/')) expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
        }),
        { numRuns: 25 },
      );
    }
  }, 240_000);

  it('answers malformed JSON, oversized bodies and unknown fields with clear 4xx problems', async () => {
    const bad = await call(h.app, 'POST', '/api/v1/sessions', '{"email":', { 'content-type': 'application/json' });
    expect(bad).toMatchObject({ status: 400, json: { code: 'malformed_body' } });
    const big = await call(h.app, 'POST', '/api/v1/accounts', { email: 'big@example.test', password: 'p'.repeat(100_000) });
    expect(big).toMatchObject({ status: 413, json: { code: 'body_too_large' } });
    const extra = await call(h.app, 'POST', '/api/v1/accounts', { email: 'x@example.test', password: 'long enough pass', admin: true });
    expect(extra).toMatchObject({ status: 400, json: { code: 'invalid_request' } });
    const wrongType = await call(h.app, 'POST', '/api/v1/accounts', { email: 42, password: 'long enough pass' });
    expect(wrongType).toMatchObject({ status: 400, json: { code: 'invalid_request' } });
    const longPw = await call(h.app, 'POST', '/api/v1/sessions', { email: 'fuzz@example.test', password: 'x'.repeat(1025) });
    expect(longPw.status).toBe(400);
    const text = await call(h.app, 'POST', '/api/v1/accounts', 'hello', { 'content-type': 'text/plain' });
    expect(text).toMatchObject({ status: 415, json: { code: 'unsupported_media_type' } });
    const nf = await call(h.app, 'GET', '/api/v1/nope');
    expect(nf).toMatchObject({ status: 404, json: { code: 'not_found' } });
  });
});
