/**
 * Property-based: random and half-valid bodies (WebAuthn-shaped objects around live challenges,
 * codes, passwords) thrown at every MFA route, signed in and not, must never produce a 5xx, and
 * every API error must be problem+json.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, call, createUser, DIALECTS, makeHarness, signIn, type Harness } from '../../../test/helpers/harness.js';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';

const PW = 'fuzzing passphrase 77';
const b64u = (s: string | Uint8Array) => Buffer.from(s as Uint8Array).toString('base64url');

describe.each(DIALECTS)('MFA routes under random input on %s', (dialect) => {
  let h: Harness;
  let token: string;
  beforeAll(async () => {
    h = await makeHarness(dialect);
    await createUser(h, 'fuzz-mfa@example.test', PW);
    token = await signIn(h, 'fuzz-mfa@example.test', PW);
    // A registered passkey, so assertions can name a real credential id.
    const key = new SoftAuthenticator('floodgate.test', 'http://floodgate.test');
    const opts = await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token));
    await call(h.app, 'POST', '/api/v1/me/passkeys/registration/verify', { response: key.register(opts.json) }, bearer(token));
    credentialId = key.id;
  });
  afterAll(async () => { await h.close(); });
  let credentialId = '';

  /** A challenge the server issued (so the request gets past the challenge lookup), or a made-up one. */
  async function challenge(kind: 'register' | 'authenticate' | 'none'): Promise<string> {
    if (kind === 'register') return (await call(h.app, 'POST', '/api/v1/me/passkeys/registration/options', {}, bearer(token))).json?.challenge ?? 'x';
    if (kind === 'authenticate') return (await call(h.app, 'POST', '/api/v1/sessions/passkey/options', {})).json?.challenge ?? 'x';
    return b64u('made up challenge value');
  }

  const valid64 = fc.uint8Array({ minLength: 1, maxLength: 300 }).map(b64u);
  const junk64 = fc.oneof({ arbitrary: valid64, weight: 12 }, { arbitrary: fc.string({ maxLength: 60 }), weight: 1 }, { arbitrary: fc.constant(''), weight: 1 });
  const clientData = (c: string) => fc.record({
    type: fc.constantFrom('webauthn.create', 'webauthn.get', 'other'), challenge: fc.oneof({ arbitrary: fc.constant(c), weight: 4 }, { arbitrary: fc.string({ maxLength: 50 }), weight: 1 }),
    origin: fc.constantFrom('http://floodgate.test', 'https://evil.example', ''), crossOrigin: fc.boolean(),
  }).map((o) => b64u(JSON.stringify(o)));
  // Read when generating: the passkey is registered in beforeAll, after these arbitraries are built.
  const credId = fc.oneof({ arbitrary: fc.constant(0).map(() => credentialId), weight: 3 }, { arbitrary: junk64, weight: 1 });
  const envelope = {
    id: credId, rawId: credId, type: fc.oneof({ arbitrary: fc.constant('public-key'), weight: 5 }, { arbitrary: fc.constant('x'), weight: 1 }),
    clientExtensionResults: fc.oneof(fc.constant({}), fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })),
    authenticatorAttachment: fc.constantFrom('platform', 'cross-platform', null),
  };
  // Mostly schema-valid shapes (so the request reaches the WebAuthn checks), sometimes not.
  const assertion = (c: string) => fc.record({
    ...envelope,
    response: fc.record({ clientDataJSON: fc.oneof({ arbitrary: clientData(c), weight: 4 }, { arbitrary: junk64, weight: 1 }), authenticatorData: junk64, signature: junk64, userHandle: fc.oneof(junk64, fc.constant(null)) }, { requiredKeys: ['clientDataJSON', 'authenticatorData', 'signature'] }),
  }, { requiredKeys: ['id', 'rawId', 'type', 'response'] });
  const attestation = (c: string) => fc.record({
    ...envelope,
    response: fc.record({ clientDataJSON: fc.oneof({ arbitrary: clientData(c), weight: 4 }, { arbitrary: junk64, weight: 1 }), attestationObject: junk64, transports: fc.array(fc.constantFrom('usb', 'internal', 'x'), { maxLength: 3 }) }, { requiredKeys: ['clientDataJSON', 'attestationObject'] }),
  }, { requiredKeys: ['id', 'rawId', 'type', 'response'] });
  const credential = (c: string) => fc.oneof(assertion(c), attestation(c));
  const fields = fc.record({
    code: fc.oneof(fc.string({ maxLength: 20 }), fc.stringMatching(/^\d{6}$/), fc.integer()),
    password: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(PW), fc.constant(null)),
    current: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(PW)),
    name: fc.oneof(fc.string({ maxLength: 80 }), fc.constant('\u0000\u202e')),
    email: fc.oneof(fc.emailAddress(), fc.string({ maxLength: 40 }), fc.constant('fuzz-mfa@example.test')),
    revokeOtherSessions: fc.oneof(fc.boolean(), fc.string({ maxLength: 5 })),
  }, { requiredKeys: [] });

  it('documents every MFA route in /openapi.json, tagged mfa, with closed request bodies', async () => {
    const doc = (await call(h.app, 'GET', '/openapi.json')).json;
    const ops: [string, string, any][] = Object.entries(doc.paths as Record<string, Record<string, any>>)
      .filter(([p]) => /^\/api\/v1\/(me\/(mfa|passkeys|password)|sessions\/passkey)/.test(p))
      .flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => [p, m, op] as [string, string, any]));
    expect(ops).toHaveLength(13);
    for (const [path, method, op] of ops) {
      expect(op.tags, `${method} ${path}`).toEqual(['mfa']);
      const body = op.requestBody?.content?.['application/json']?.schema;
      if (body) expect(body.additionalProperties, `${method} ${path}`).toBe(false);
    }
  });

  it('never answers 5xx', async () => {
    const routes = ((h.app as any).floodgateRoutes as { method: string; url: string }[])
      .filter((r) => /^\/api\/v1\/(me\/(mfa|passkeys|password)|sessions\/passkey)/.test(r.url));
    expect(routes.length).toBe(13);
    for (const route of routes) {
      const signInRoute = route.url === '/api/v1/sessions/passkey';
      const registerRoute = route.url === '/api/v1/me/passkeys/registration/verify';
      const live: 'register' | 'authenticate' | 'none' = signInRoute ? 'authenticate' : registerRoute ? 'register' : 'none';
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 0, max: 5 }).map((n): 'live' | 'none' => (n === 0 ? 'none' : 'live')),
          fc.integer({ min: 0, max: 9 }).map((n) => (n < 1 ? 0 : n < 2 ? 1 : n < 8 ? 2 : 3)), fc.string({ minLength: 1, maxLength: 40 }), fc.boolean(), fc.integer({ min: 0, max: 9 }).map((n) => (n === 0 ? 1 : 0)), fc.infiniteStream(fc.nat()),
          async (kind, shape, segment, withToken, rawKind, seeds) => {
            const c = await challenge(kind === 'live' ? live : 'none');
            const cred = signInRoute ? assertion(c) : registerRoute ? attestation(c) : credential(c);
            const arb = shape === 0 ? fc.anything({ maxDepth: 3 })
              : shape === 1 ? fields
                : shape === 2 ? fc.record({ response: cred })
                  : fc.record({ response: cred }).chain((r) => fields.map((f) => ({ ...f, ...r })));
            const body = fc.sample(arb, { numRuns: 1, seed: seeds.next().value as number })[0];
            const url = route.url.replace(':id', encodeURIComponent(segment));
            const raw = rawKind === 1 ? '{"response":' : JSON.stringify(body) ?? 'null';
            const res = await h.app.inject({
              method: route.method as 'POST', url,
              headers: { 'content-type': 'application/json', ...(withToken || registerRoute ? bearer(token) : {}) },
              ...(route.method === 'GET' ? {} : { payload: raw }),
            });
            if (res.statusCode >= 500) throw new Error(`${route.method} ${url} -> ${res.statusCode}: ${res.body.slice(0, 300)}`);
            if (res.statusCode >= 400) expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
          },
        ),
        { numRuns: signInRoute || registerRoute ? 80 : 30 },
      );
    }
  }, 240_000);
});
