/**
 * MFA, passkeys and password change over HTTP. Every body is a closed schema (no unknown
 * fields); answers that carry secrets (TOTP seed, recovery codes, session tokens) are no-store.
 */
import { Type, type Static } from 'typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import type { FastifyRequest } from 'fastify';
import type { App } from '../../http/app.js';
import { requireUser } from '../../http/auth.js';
import { ctxOf, noStore } from '../../http/context.js';
import { writeCookie } from '../../http/cookies.js';
import { Email, Password, problems } from '../../http/schemas.js';
import type { Services } from '../../services.js';
import { DEVICE_COOKIE_OPTIONS } from '../sessions/index.js';
import type { Actor } from './model.js';

const TAGS = ['mfa'];
const Reauth = Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'Your current password, when the session is older than 10 minutes' }));
const RevokeOthers = Type.Optional(Type.Boolean({ description: 'Also sign out every other session' }));
const B64u = (max: number) => Type.String({ minLength: 1, maxLength: max, pattern: '^[A-Za-z0-9_-]+={0,2}$' });
// Extension outputs are an open dictionary by the WebAuthn spec; everything around them is closed.
const ExtensionResults = Type.Optional(Type.Object({}, { additionalProperties: true, maxProperties: 20 }));
const Attachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform'), Type.Null()]));

const RegistrationResponse = Type.Object({
  id: B64u(1024), rawId: B64u(1024), type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: B64u(4096), attestationObject: B64u(24_576),
    authenticatorData: Type.Optional(B64u(16_384)),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(B64u(4096)),
  }, { additionalProperties: false }),
  authenticatorAttachment: Attachment,
  clientExtensionResults: ExtensionResults,
}, { additionalProperties: false, description: 'PublicKeyCredential.toJSON() of navigator.credentials.create()' });

export const AuthenticationResponse = Type.Object({
  id: B64u(1024), rawId: B64u(1024), type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: B64u(4096), authenticatorData: B64u(16_384), signature: B64u(2048),
    userHandle: Type.Optional(Type.Union([B64u(256), Type.Null()])),
  }, { additionalProperties: false }),
  authenticatorAttachment: Attachment,
  clientExtensionResults: ExtensionResults,
}, { additionalProperties: false, description: 'PublicKeyCredential.toJSON() of navigator.credentials.get()' });

/** The validated body as @simplewebauthn/server takes it (absent optional fields filled in). */
export function assertionOf(raw: Static<typeof AuthenticationResponse>): AuthenticationResponseJSON {
  return {
    ...raw, clientExtensionResults: raw.clientExtensionResults ?? {},
    response: { ...raw.response, userHandle: raw.response.userHandle ?? undefined },
  } as unknown as AuthenticationResponseJSON;
}

export const Options = Type.Object({ challenge: Type.String() }, { additionalProperties: true, description: 'Pass to navigator.credentials (PublicKeyCredential.parse*OptionsFromJSON)' });
const PasskeySchema = Type.Object({
  id: Type.String(), name: Type.String(), createdAt: Type.String(), lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  deviceType: Type.String(), backedUp: Type.Boolean(), transports: Type.Array(Type.String()),
});
const RecoveryCodes = Type.Array(Type.String(), { description: 'Shown once; each works once' });
const Id = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });

/** DELETE may come without a body: validate it as an empty object (the schema still refuses unknown fields). */
async function emptyBodyIsObject(req: FastifyRequest): Promise<void> {
  if (req.body === undefined || req.body === null) (req as { body: unknown }).body = {};
}

async function actorOf(s: Services, req: FastifyRequest): Promise<Actor> {
  const p = await requireUser(s, req);
  return { userId: p.userId, sessionId: p.session.id, sessionCreatedAt: Number(p.session.created_at) };
}

export async function mfaRoutes(app: App, s: Services): Promise<void> {
  const { mfa } = s;

  app.get('/api/v1/me/mfa', {
    schema: {
      tags: TAGS, summary: 'My second factors', security: [{ session: [] }],
      response: {
        200: Type.Object({
          enabled: Type.Boolean(),
          totp: Type.Object({ enabled: Type.Boolean(), pending: Type.Boolean(), confirmedAt: Type.Union([Type.String(), Type.Null()]) }),
          passkeys: Type.Integer(), recoveryCodesLeft: Type.Integer(),
        }),
        ...problems(401),
      },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    noStore(reply);
    return mfa.factors.status(a.userId);
  });

  app.post('/api/v1/me/mfa/totp', {
    schema: {
      tags: TAGS, summary: 'Start setting up an authenticator app (TOTP)', security: [{ session: [] }],
      description: 'Returns the secret (base32), the otpauth:// URI and the same URI as an SVG QR code. Nothing changes until it is confirmed with a code. Needs a recent sign-in or `password`.',
      body: Type.Object({ password: Reauth }, { additionalProperties: false }),
      response: { 201: Type.Object({ secret: Type.String(), uri: Type.String(), qrSvg: Type.String() }), ...problems(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    const r = await mfa.factors.startTotp(a, { password: req.body?.password }, ctxOf(req));
    noStore(reply);
    return reply.code(201).send(r);
  });

  app.post('/api/v1/me/mfa/totp/confirm', {
    schema: {
      tags: TAGS, summary: 'Confirm the authenticator app with a current code', security: [{ session: [] }],
      description: 'Turns the app on and returns 10 recovery codes (shown once). Wrong codes are limited per account.',
      body: Type.Object({ code: Type.String({ minLength: 1, maxLength: 16 }), password: Reauth, revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 200: Type.Object({ recoveryCodes: RecoveryCodes }), ...problems(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    const codes = await mfa.factors.confirmTotp(a, req.body.code, { password: req.body.password, revokeOtherSessions: req.body.revokeOtherSessions }, ctxOf(req));
    noStore(reply);
    return { recoveryCodes: codes };
  });

  app.delete('/api/v1/me/mfa/totp', {
    schema: {
      tags: TAGS, summary: 'Remove the authenticator app', security: [{ session: [] }],
      description: 'Needs a recent sign-in or `password`. With no factor left, recovery codes are deleted too.',
      body: Type.Object({ password: Reauth, revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 429) },
    },
    preValidation: emptyBodyIsObject,
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    await mfa.factors.removeTotp(a, { password: req.body?.password, revokeOtherSessions: req.body?.revokeOtherSessions }, ctxOf(req));
    return reply.code(204).send(null);
  });

  app.post('/api/v1/me/mfa/recovery-codes', {
    schema: {
      tags: TAGS, summary: 'Replace my recovery codes with 10 new ones', security: [{ session: [] }],
      body: Type.Object({ password: Reauth, revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 200: Type.Object({ recoveryCodes: RecoveryCodes }), ...problems(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    const codes = await mfa.factors.regenerateRecoveryCodes(a, { password: req.body.password, revokeOtherSessions: req.body.revokeOtherSessions }, ctxOf(req));
    noStore(reply);
    return { recoveryCodes: codes };
  });

  // --- passkeys -------------------------------------------------------------------------------

  app.post('/api/v1/me/passkeys/registration/options', {
    schema: {
      tags: TAGS, summary: 'Start registering a passkey', security: [{ session: [] }],
      description: 'Creation options for navigator.credentials.create(); the challenge is single use and lives 5 minutes. Needs a recent sign-in or `password`.',
      body: Type.Object({ password: Reauth }, { additionalProperties: false }),
      response: { 200: Options, ...problems(400, 401, 403, 409, 429) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    noStore(reply);
    return mfa.passkeys.registrationOptions(a, { password: req.body?.password }, ctxOf(req));
  });

  app.post('/api/v1/me/passkeys/registration/verify', {
    schema: {
      tags: TAGS, summary: 'Finish registering a passkey', security: [{ session: [] }],
      description: 'With the first factor of the account, 10 recovery codes come back (shown once).',
      body: Type.Object({ response: RegistrationResponse, name: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 201: Type.Object({ passkey: PasskeySchema, recoveryCodes: Type.Union([RecoveryCodes, Type.Null()]) }), ...problems(400, 401, 403, 409) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    const body = req.body;
    const response = { ...body.response, clientExtensionResults: body.response.clientExtensionResults ?? {} } as unknown as RegistrationResponseJSON;
    const r = await mfa.passkeys.verifyRegistration(a, response, { name: body.name, revokeOtherSessions: body.revokeOtherSessions }, ctxOf(req));
    noStore(reply);
    return reply.code(201).send(r);
  });

  app.get('/api/v1/me/passkeys', {
    schema: { tags: TAGS, summary: 'My passkeys', security: [{ session: [] }], response: { 200: Type.Object({ passkeys: Type.Array(PasskeySchema) }), ...problems(401) } },
  }, async (req) => {
    const a = await actorOf(s, req);
    return { passkeys: await mfa.passkeys.list(a.userId) };
  });

  app.patch('/api/v1/me/passkeys/:id', {
    schema: {
      tags: TAGS, summary: 'Rename one of my passkeys', security: [{ session: [] }],
      params: Id, body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false }),
      response: { 200: PasskeySchema, ...problems(400, 401, 404) },
    },
  }, async (req) => {
    const a = await actorOf(s, req);
    return mfa.passkeys.rename(a.userId, req.params.id, req.body.name);
  });

  app.delete('/api/v1/me/passkeys/:id', {
    schema: {
      tags: TAGS, summary: 'Remove one of my passkeys', security: [{ session: [] }],
      description: 'Needs a recent sign-in or `password`.',
      params: Id, body: Type.Object({ password: Reauth, revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 429) },
    },
    preValidation: emptyBodyIsObject,
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    await mfa.passkeys.remove(a, req.params.id, { password: req.body?.password, revokeOtherSessions: req.body?.revokeOtherSessions }, ctxOf(req));
    return reply.code(204).send(null);
  });

  app.post('/api/v1/sessions/passkey/options', {
    schema: {
      tags: TAGS, summary: 'Start signing in with a passkey',
      description:
        'Request options for navigator.credentials.get() with discoverable credentials only: `allowCredentials` is always empty and the ' +
        'browser offers the passkeys it holds for this site. The answer never depends on an account, so it tells nobody who has one or ' +
        'who has a passkey. The challenge is single use and lives 5 minutes. 429 when a source (IPv4 address, IPv6 /64) or its network asks too often.',
      // `email` is accepted and ignored, so clients written for the old per-account options keep working.
      body: Type.Object({
        email: Type.Optional(Type.String({ minLength: 3, maxLength: 320, deprecated: true, description: 'Ignored: the options are the same for every account' })),
      }, { additionalProperties: false }),
      response: { 200: Options, ...problems(400, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    return mfa.passkeys.authenticationOptions(ctxOf(req));
  });

  app.post('/api/v1/sessions/passkey', {
    schema: {
      tags: TAGS, summary: 'Sign in with a passkey',
      description: 'Creates a session like POST /api/v1/sessions (token and cookie). One generic 401 for any failure; 429 when a source fails too often.',
      body: Type.Object({ response: AuthenticationResponse }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: Type.String(), expiresAt: Type.String(), sessionId: Type.String() }), ...problems(400, 401, 429) },
    },
  }, async (req, reply) => {
    const r = await mfa.passkeys.authenticate(assertionOf(req.body.response), ctxOf(req));
    writeCookie(reply, 'session', r.token, { sameSite: 'lax', maxAge: Math.floor(s.config.sessionAbsoluteMs / 1000) });
    writeCookie(reply, 'device', r.device, DEVICE_COOKIE_OPTIONS);
    noStore(reply);
    return reply.code(201).send({ token: r.token, expiresAt: new Date(r.expiresAt).toISOString(), sessionId: r.sessionId });
  });

  // --- password change --------------------------------------------------------------------------

  app.post('/api/v1/me/password', {
    schema: {
      tags: TAGS, summary: 'Change my password',
      description: 'Checks `current`, applies the password rules to `password` (weak_password with `reason`), signs out every other session unless `revokeOtherSessions` is false, and notifies the owner.',
      security: [{ session: [] }],
      body: Type.Object({ current: Type.String({ minLength: 1, maxLength: 1024 }), password: Password, revokeOtherSessions: RevokeOthers }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 429) },
    },
  }, async (req, reply) => {
    const a = await actorOf(s, req);
    await mfa.passwords.change(a, req.body, ctxOf(req));
    return reply.code(204).send(null);
  });
}
