import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireUser } from '../../http/auth.js';
import { ctxOf } from '../../http/context.js';
import { clearCookie, writeCookie } from '../../http/cookies.js';
import { Altcha, Email, Password, problems } from '../../http/schemas.js';
import { normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import type { Services } from '../../services.js';
import { DEVICE_COOKIE_OPTIONS } from './devices.js';

const SessionSchema = Type.Object({
  id: Type.String(), current: Type.Boolean(), device: Type.String(), ip: Type.Union([Type.String(), Type.Null()]),
  authMethod: Type.String(), createdAt: Type.String(), lastSeenAt: Type.String(), expiresAt: Type.String(),
});

export async function sessionsRoutes(app: App, s: Services): Promise<void> {

  app.post('/api/v1/sessions', {
    schema: {
      tags: ['sessions'], summary: 'Sign in',
      description: 'One generic 401 for any wrong credential, an address not yet confirmed included (the right password then mails the confirmation link again, under the resend rules); `mfa_required` (401) only after a correct password, then repeat with `otp`. 429 with Retry-After when throttled. Sets the floodgate_session cookie (HttpOnly, SameSite=Lax, Secure on https) and the long-lived floodgate_device cookie: send it back on later sign-ins, and this client is a known device (no new-sign-in notice, not slowed down by failures from elsewhere).',
      body: Type.Object({ email: Email, password: Password, otp: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })), altcha: Type.Optional(Altcha) }, { additionalProperties: false }),
      response: { 201: Type.Object({ token: Type.String(), expiresAt: Type.String(), sessionId: Type.String() }), ...problems(400, 401, 428, 429) },
    },
  }, async (req, reply) => {
    const ctx = ctxOf(req);
    await s.guard.enforce('signin', { ip: ctx.ip, target: normalizeEmail(req.body.email), altcha: req.body.altcha });
    const r = await s.signIn.signIn(req.body, ctx);
    writeCookie(reply, 'session', r.token, { sameSite: 'lax', maxAge: Math.floor(s.config.sessionAbsoluteMs / 1000) });
    writeCookie(reply, 'device', r.device, DEVICE_COOKIE_OPTIONS);
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({ token: r.token, expiresAt: new Date(r.expiresAt).toISOString(), sessionId: r.sessionId });
  });

  app.get('/api/v1/sessions', {
    schema: { tags: ['sessions'], summary: 'List my live sessions', security: [{ session: [] }], response: { 200: Type.Object({ sessions: Type.Array(SessionSchema) }), ...problems(401) } },
  }, async (req) => {
    const p = await requireUser(s, req);
    return { sessions: await s.sessions.list(p.userId, p.session.id) };
  });

  app.delete('/api/v1/sessions/:id', {
    schema: {
      tags: ['sessions'], summary: 'Revoke one of my sessions (use `current` to sign out)', security: [{ session: [] }],
      params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
      response: { 204: Type.Null(), ...problems(401, 404) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    const id = req.params.id === 'current' ? p.session.id : req.params.id;
    const ok = await s.sessions.revoke(p.userId, id, ctxOf(req), id === p.session.id ? 'signout' : 'user');
    if (!ok) throw new AppError('not_found', 'No live session of yours has this id.');
    if (id === p.session.id) clearCookie(reply, 'session');
    return reply.code(204).send(null);
  });

  app.delete('/api/v1/sessions', {
    schema: {
      tags: ['sessions'], summary: 'Revoke every other session (scope=others) or sign out (scope=current)', security: [{ session: [] }],
      querystring: Type.Object({ scope: Type.Union([Type.Literal('others'), Type.Literal('current')]) }, { additionalProperties: false }),
      response: { 200: Type.Object({ revoked: Type.Integer() }), ...problems(400, 401) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    if (req.query.scope === 'current') {
      await s.sessions.revoke(p.userId, p.session.id, ctxOf(req), 'signout');
      clearCookie(reply, 'session');
      return { revoked: 1 };
    }
    return { revoked: await s.sessions.revokeOthers(p.userId, p.session.id, ctxOf(req)) };
  });
}
