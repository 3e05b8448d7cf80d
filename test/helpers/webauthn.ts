/**
 * A software WebAuthn authenticator for tests: an ES256 (P-256) key pair from node:crypto, a
 * CBOR attestationObject with fmt "none" and authenticatorData carrying the attested credential
 * (AT flag), clientDataJSON as a browser writes it, and assertions signed with the key. It
 * speaks the JSON forms of navigator.credentials.create()/get() (PublicKeyCredential.toJSON()).
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor';

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftAuthenticatorOptions {
  /** Report user verification (PIN/biometric) in the flags; default true. */
  userVerification?: boolean;
  /** Keep a signature counter (security keys do); false reports 0 forever (platform passkeys). */
  counter?: boolean;
}

const b64u = (b: Uint8Array | Buffer | string) => Buffer.from(b as Uint8Array).toString('base64url');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest();

export class SoftAuthenticator {
  readonly credentialId = randomBytes(32);
  private readonly privateKey: KeyObject;
  private readonly x: Buffer;
  private readonly y: Buffer;
  signCount = 0;
  /** The user handle from the creation options (returned in assertions, as a passkey does). */
  userHandle: string | null = null;
  userVerification: boolean;
  private readonly keepsCounter: boolean;

  constructor(
    readonly rpId: string,
    readonly origin: string,
    opts: SoftAuthenticatorOptions = {},
  ) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    const jwk = publicKey.export({ format: 'jwk' });
    this.x = Buffer.from(jwk.x!, 'base64url');
    this.y = Buffer.from(jwk.y!, 'base64url');
    this.userVerification = opts.userVerification ?? true;
    this.keepsCounter = opts.counter ?? true;
  }

  get id(): string {
    return b64u(this.credentialId);
  }

  /** COSE_Key (RFC 9053): kty EC2, alg ES256, crv P-256, x, y. */
  private coseKey(): Uint8Array {
    return encodeCBOR(new Map<number, CBORType>([[1, 2], [3, -7], [-1, 1], [-2, new Uint8Array(this.x)], [-3, new Uint8Array(this.y)]]));
  }

  private authData(rpId: string, flags: number, attested: boolean): Buffer {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(this.signCount);
    const parts = [sha256(rpId), Buffer.from([flags]), count];
    if (attested) {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(this.credentialId.length);
      parts.push(Buffer.alloc(16) /* AAGUID: none */, len, this.credentialId, Buffer.from(this.coseKey()));
    }
    return Buffer.concat(parts);
  }

  private clientData(type: 'webauthn.create' | 'webauthn.get', challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  private flags(): number {
    return FLAG_UP | (this.userVerification ? FLAG_UV : 0);
  }

  /** navigator.credentials.create() with the server's creation options. */
  register(options: { challenge: string; rp?: { id?: string }; user?: { id?: string } }, over: { origin?: string; rpId?: string } = {}) {
    this.userHandle = options.user?.id ?? null;
    const clientDataJSON = this.clientData('webauthn.create', options.challenge, over.origin ?? this.origin);
    const authData = this.authData(over.rpId ?? options.rp?.id ?? this.rpId, this.flags() | FLAG_AT, true);
    const attestationObject = encodeCBOR(new Map<string, CBORType>([['fmt', 'none'], ['attStmt', new Map()], ['authData', new Uint8Array(authData)]]));
    return {
      id: this.id, rawId: this.id, type: 'public-key' as const,
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }

  /** navigator.credentials.get() with the server's request options. */
  assert(options: { challenge: string; rpId?: string }, over: { origin?: string; rpId?: string; userHandle?: string | null } = {}) {
    if (this.keepsCounter) this.signCount++;
    const clientDataJSON = this.clientData('webauthn.get', options.challenge, over.origin ?? this.origin);
    const authData = this.authData(over.rpId ?? options.rpId ?? this.rpId, this.flags(), false);
    // ECDSA over authenticatorData || SHA-256(clientDataJSON), DER-encoded as WebAuthn expects.
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    const handle = over.userHandle === undefined ? this.userHandle : over.userHandle;
    return {
      id: this.id, rawId: this.id, type: 'public-key' as const,
      response: { clientDataJSON: b64u(clientDataJSON), authenticatorData: b64u(authData), signature: b64u(signature), ...(handle ? { userHandle: handle } : {}) },
      authenticatorAttachment: 'platform' as const,
      clientExtensionResults: {},
    };
  }
}
