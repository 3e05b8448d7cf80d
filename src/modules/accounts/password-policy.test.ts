/**
 * Context-specific words (ASVS 5.0 6.1.2, 6.2.11): a password built on the service's name, its
 * host name or the person's own address is refused; a passphrase that merely contains one is not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { freshIp, from } from '../../../test/helpers/recovery.js';
import { checkPassword, contextWords, isContextual, noBreachedList } from './password-policy.js';

describe('context-specific words', () => {
  it('takes the service name, the host labels and the parts of the address, not TLDs, short or common labels', () => {
    const w = contextWords('https://auth.acmebank.example', 'ada.lovelace+x@mail.analytical-engine.co.uk');
    expect(w).toEqual(expect.arrayContaining(['floodgate', 'acmebank', 'lovelace', 'analytical-engine']));
    for (const no of ['auth', 'example', 'mail', 'uk', 'co', 'ada', 'x']) expect(w).not.toContain(no);
    expect(contextWords('http://localhost:8080', null)).toEqual(['floodgate']);
  });

  it('refuses a context word dressed up with digits and symbols, keeps passphrases that merely contain one', async () => {
    const words = contextWords('https://auth.acmebank.example', 'ada.lovelace@example.test');
    for (const p of ['Floodgate2026!', 'floodgate-floodgate', 'AcmeBank#123456', 'Lovelace1815!!', 'lovelace.acmebank', 'FLOODGATEabc123']) {
      expect(isContextual(p, words), p).toBe(true);
      expect(await checkPassword(p, 'ada.lovelace@example.test', noBreachedList, words), p).toBe('context');
    }
    for (const p of ['correct horse floodgate staple', 'my acmebank passphrase is long', '12345678901234567', 'lovelyweather1234']) {
      expect(isContextual(p, words), p).toBe(false);
    }
  });
});

describe.each(DIALECTS)('context-specific words at sign-up and operator creation on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect, { env: { FLOODGATE_PUBLIC_URL: 'http://acmebank.test' } }); });
  afterAll(async () => { await h.close(); });

  it('answers 400 weak_password with reason "context" for the service or the person, naming the field', async () => {
    const r = await from(h.app, freshIp(), 'POST', '/api/v1/accounts', { email: 'grace.hopper@example.test', password: 'Floodgate2026!' });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'weak_password', reason: 'context', errors: [{ field: 'password' }] });
    const own = await from(h.app, freshIp(), 'POST', '/api/v1/accounts', { email: 'grace.hopper@example.test', password: 'Hopper1906!!' });
    expect(own.json).toMatchObject({ code: 'weak_password', reason: 'context' });
    const host = await call(h.app, 'POST', '/api/v1/admin/users', { email: 'b@example.test', password: 'acmebank!2026' }, { authorization: 'Bearer test-admin-token-0123456789' });
    expect(host.status).toBe(400);
    expect(host.json.detail).toMatch(/email address or the name of this service/);
    expect((await from(h.app, freshIp(), 'POST', '/api/v1/accounts', { email: 'grace.hopper@example.test', password: 'grace hopper wrote the first compiler' })).status).toBe(202);
  });
});
