import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { realpathSync } from 'node:fs';
import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../../../test/helpers/webauthn.js';
import { cleanPasskeyName } from './passkeys.js';

const RP = 'floodgate.test';
const ORIGIN = 'http://floodgate.test';

describe('WebAuthn with the software authenticator', () => {
  it('uses one copy of @peculiar/asn1-schema for @simplewebauthn/server and @peculiar/asn1-ecc', () => {
    // Two copies keep two schema registries, and every ES256 signature check then fails with
    // "Cannot get schema for 'ECDSASigValue' target" (SimpleWebAuthn issues #738, #808). Here a
    // second copy comes from mailauth's @postalsys/vmc pinning 2.8.0; the fix is
    // "overrides": { "@peculiar/asn1-schema": "2.11.1" } in package.json.
    const require = createRequire(import.meta.url);
    const entry = require.resolve('@simplewebauthn/server'); // its package.json is not exported
    const swa = entry.slice(0, entry.lastIndexOf('@simplewebauthn/server') + '@simplewebauthn/server'.length);
    const fromSwa = realpathSync(createRequire(`${swa}/`).resolve('@peculiar/asn1-schema'));
    const ecc = dirname(createRequire(`${swa}/`).resolve('@peculiar/asn1-ecc/package.json'));
    const fromEcc = realpathSync(createRequire(`${ecc}/`).resolve('@peculiar/asn1-schema'));
    expect(fromSwa, 'two @peculiar/asn1-schema copies: add "overrides": {"@peculiar/asn1-schema": "2.11.1"} to package.json').toBe(fromEcc);
  });

  it('registers and asserts (ES256, fmt none, AT flag, DER signature) as a browser would', async () => {
    const key = new SoftAuthenticator(RP, ORIGIN);
    const ro = await generateRegistrationOptions({ rpName: 'Floodgate', rpID: RP, userName: 'ada@example.test', userID: new Uint8Array(Buffer.from('user-1')) });
    const reg = await verifyRegistrationResponse({ response: key.register(ro) as RegistrationResponseJSON, expectedChallenge: ro.challenge, expectedOrigin: ORIGIN, expectedRPID: RP });
    expect(reg.verified).toBe(true);
    expect(reg.registrationInfo!.fmt).toBe('none');
    expect(reg.registrationInfo!.credential.id).toBe(key.id);
    const ao = await generateAuthenticationOptions({ rpID: RP });
    const assertion = key.assert(ao) as AuthenticationResponseJSON;
    expect(assertion.response.userHandle).toBe(Buffer.from('user-1').toString('base64url'));
    const auth = await verifyAuthenticationResponse({ response: assertion, expectedChallenge: ao.challenge, expectedOrigin: ORIGIN, expectedRPID: RP, credential: reg.registrationInfo!.credential });
    expect(auth.verified).toBe(true);
    expect(auth.authenticationInfo.newCounter).toBe(1);
    expect(auth.authenticationInfo.userVerified).toBe(true);
  });

  it('cleans passkey names for lists and mail', () => {
    expect(cleanPasskeyName('  My\u0000 key\u202e  ', 'x')).toBe('My key');
    expect(cleanPasskeyName('', 'Chrome 120 on Linux')).toBe('Chrome 120 on Linux');
    expect(cleanPasskeyName('a'.repeat(100), 'x')).toHaveLength(64);
  });
});
