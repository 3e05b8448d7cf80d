/**
 * Console sign-in (/console/login) and sign-out. Invariants:
 * - the console needs the account's password AND a second factor (TOTP or a recovery code), or
 *   a passkey alone (user verification required: possession + PIN/biometric, and phishing-
 *   resistant), and the operator grant; an operator without two-step verification is refused
 *   with a message that says what to do, but only after the right password (the page reveals
 *   nothing to a guesser);
 * - the password sign-in is the account sign-in's own rule (SignInFlow.authenticate): the same
 *   throttle (per account, per source, per network, trusted devices), lock, `signin.failed`
 *   events and second-factor limits; an account without the grant is answered exactly as a
 *   wrong password (same status, page and counting), so the console is no password oracle;
 * - a console passkey sign-in answers a challenge issued for the console only (not one from
 *   /api/v1/sessions/passkey/options); a valid passkey of an account without the grant, or of a
 *   locked account (whose console sessions would not live), gets the passkey's one generic 401;
 * - every attempt passes the sign-in guard (per source) before the password is checked;
 * - the session cookie floodgate_console is HttpOnly, SameSite=Strict, Path=/console, Secure on
 *   https, 12 hours; sign-in and sign-out are audited and recorded on the operator's account; a
 *   sign-in also sets the device cookie, like any sign-in.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { sameOrigin } from '../../http/auth.js';
import { ctxOf, noStore } from '../../http/context.js';
import { clearCookie, readCookie, writeCookie } from '../../http/cookies.js';
import { normalizeEmail } from '../../kernel/email.js';
import { AppError, isAppError } from '../../kernel/errors.js';
import { problems } from '../../http/schemas.js';
import { AuthenticationResponse, Options as PasskeyOptions, assertionOf } from '../../modules/mfa/routes.js';
import type { RequestContext } from '../../kernel/context.js';
import { DEVICE_COOKIE_OPTIONS } from '../../modules/sessions/index.js';
import type { Db } from '../../storage/schema.js';
import type { UserRow } from '../../modules/accounts/index.js';
import type { Services } from '../../services.js';
import { csrfOk, csrfRefused, crossSiteRefused, csrfToken } from '../csrf.js';
import { ALTCHA_ASSETS, AltchaField, challengeWidget, field, FormString } from '../forms.js';
import { PASSKEY_ASSETS } from '../account-pages.js';
import { html, notice, sendPage, type SafeHtml } from '../layout.js';
import { seeOther } from '../session.js';
import { CONSOLE_SESSION_MS, operatorOf, type ConsoleAccess, type ConsoleSession } from './access.js';

/** Any wrong credential, and an account without the grant: one answer (no password oracle). */
const INCORRECT = 'The email, password or code is incorrect.';

export interface ConsoleUser extends ConsoleSession {
  csrf: string;
}

const cache = new WeakMap<FastifyRequest, ConsoleUser | null>();

export async function consoleUser(s: Services, access: ConsoleAccess, req: FastifyRequest): Promise<ConsoleUser | null> {
  if (cache.has(req)) return cache.get(req)!;
  const c = await access.authenticate(readCookie(req, 'console'));
  const u = c && { ...c, csrf: csrfToken(s.box.key, c.id, 'console') };
  cache.set(req, u);
  return u;
}

function loginForm(o: { email?: string; error?: string | null; challenge?: unknown; info?: SafeHtml | null }): SafeHtml {
  return html`${o.error ? notice('error', o.error) : ''}${o.info ?? ''}
<p>Operators sign in with their own account: its password and a code from its authenticator app (or a recovery code), or one of its passkeys. Every action in the console is recorded in the audit log.</p>
<form method="post" action="/console/login">
${field({ id: 'email', label: 'Email address', type: 'email', value: o.email ?? '', autocomplete: 'username', inputmode: 'email', autofocus: !o.email })}
${field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', maxlength: 1024, autofocus: !!o.email })}
${field({ id: 'otp', label: 'One-time code', type: 'text', autocomplete: 'one-time-code', maxlength: 64, hint: 'From your authenticator app, or one of your recovery codes.' })}
${o.challenge ? challengeWidget(o.challenge) : ''}
<button type="submit">Sign in to the console</button>
</form>
<div id="console-passkey" class="passkey" hidden>
<p>Or, if your account has a passkey:</p>
<button type="button" id="console-passkey-button" class="secondary">Sign in to the console with a passkey</button>
<p id="console-passkey-error" class="error" role="alert" hidden></p>
</div>`;
}

export async function consoleAuthRoutes(app: App, s: Services, access: ConsoleAccess): Promise<void> {
  const db = s.storage.db;
  // The end of every console sign-in, whatever proved it: the session, recorded on the account
  // and in the audit log, in the caller's transaction.
  const openSession = async (trx: Db, user: { id: string; email: string }, ctx: RequestContext, method: string) => {
    const sess = await access.createSession(trx, user.id, ctx, method);
    await s.events.record(trx, 'console.signed_in', user.id, ctx, { method });
    await s.audit.record(trx, operatorOf(user.id, user.email), 'console.sign_in', user.email, `signed in with ${method}`, { ip: ctx.ip });
    return { ...sess, device: await s.signIn.rememberDevice(trx, user.id, ctx) };
  };
  const setCookie = (reply: FastifyReply, session: { token: string; device: string }) => {
    writeCookie(reply, 'console', session.token, { sameSite: 'strict', httpPath: '/console', maxAge: Math.floor(CONSOLE_SESSION_MS / 1000) });
    writeCookie(reply, 'device', session.device, DEVICE_COOKIE_OPTIONS);
  };
  // The console's JSON routes (the passkey sign-in): same origin only, answered as problem+json.
  const refuseCrossSite = (req: FastifyRequest) => {
    if (!sameOrigin(req, s.config.publicUrl)) throw new AppError('forbidden', 'Cross-site request refused.');
  };

  app.get('/console/login', {
    schema: { tags: ['console'], summary: 'Console: sign-in page', querystring: Type.Object({ signed_out: Type.Optional(FormString(1)) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    if (await consoleUser(s, access, req)) return seeOther(reply, '/console');
    return sendPage(reply, 200, 'Operator console', loginForm({ info: req.query.signed_out ? notice('success', 'You are signed out of the console.') : null }), PASSKEY_ASSETS);
  });

  app.post('/console/login', {
    schema: {
      tags: ['console'], summary: 'Console: sign in (password and second factor)',
      body: Type.Object({ email: FormString(320), password: FormString(1024), otp: Type.Optional(FormString(64)), altcha: AltchaField }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSiteRefused(reply, '/console/login');
    const { email, password } = req.body;
    const otp = (req.body.otp ?? '').trim();
    const ctx = ctxOf(req);
    const again = (status: number, error: string, extra: { challenge?: unknown } = {}) =>
      sendPage(reply, status, 'Operator console', loginForm({ email, error, ...extra }), extra.challenge ? { ...ALTCHA_ASSETS, scripts: [...ALTCHA_ASSETS.scripts, ...PASSKEY_ASSETS.scripts] } : PASSKEY_ASSETS);
    let user: UserRow;
    let method: string;
    try {
      await s.guard.enforce('signin', { ip: ctx.ip, target: normalizeEmail(email), altcha: req.body.altcha });
      // The account sign-in's own rule; the grant is checked as part of it, so an account without
      // it fails (and is counted, and recorded) exactly like a wrong password.
      // A locked account is refused here even from a trusted device: its console session would not live (access.ts).
      const admit = async (u: UserRow | null) => (await access.isOperator(db, u?.id ?? '')) && u !== null && u.locked_at === null;
      ({ user, method } = await s.signIn.authenticate({ email, password, otp: otp || undefined }, ctx, { where: 'console', admit }));
    } catch (e) {
      if (!isAppError(e)) throw e;
      switch (e.code) {
        case 'invalid_credentials':
          return again(401, INCORRECT);
        case 'mfa_required':
          // Only after the right password of an account with the grant.
          return again(401, 'Enter the one-time code from your authenticator app (or a recovery code), or sign in with your passkey.');
        case 'challenge_required':
          return again(428, 'One more step: confirm you are not a robot, then sign in again.', { challenge: e.extra?.challenge });
        case 'rate_limited':
          for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
          return again(429, 'Too many attempts. Wait a while, then try again.');
        default:
          throw e;
      }
    }
    // Right password, with the grant, but no second factor at all: say what to do.
    if (method === 'password') {
      return again(403, 'The console needs two-step verification on your account. Sign in at /login, turn on an authenticator app on your security page, then come back.');
    }
    const session = await db.transaction().execute((trx) => openSession(trx, user, ctx, method));
    setCookie(reply, session);
    return seeOther(reply, '/console');
  });

  app.post('/console/login/passkey/options', {
    schema: {
      tags: ['console'], summary: 'Console: start signing in with a passkey',
      description: 'Options for navigator.credentials.get() (any passkey on the device), for POST /console/login/passkey only.',
      body: Type.Optional(Type.Object({}, { additionalProperties: false })),
      response: { 200: PasskeyOptions, ...problems(400, 403, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    refuseCrossSite(req);
    return s.mfa.passkeys.authenticationOptions(ctxOf(req), 'console');
  });

  app.post('/console/login/passkey', {
    schema: {
      tags: ['console'], summary: 'Console: sign in with a passkey',
      description: 'Verifies the assertion for a challenge from POST /console/login/passkey/options and, for an account with the console grant, sets the console cookie (204). One generic 401 for any passkey failure and for an account without the grant (or locked); 403 cross-site; 429 past the passkey limits (per source and network). Never 428: a passkey needs no proof of work.',
      body: Type.Object({ response: AuthenticationResponse }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    refuseCrossSite(req);
    const ctx = ctxOf(req);
    // No proof of work here, as for the account's passkey sign-in: an assertion cannot be guessed
    // or stuffed (limits per /64 and network hold the ceremonies), and a 428 the passkey script
    // cannot solve would shut operators out of the console exactly while a stuffing flood has
    // the sign-in flow challenged.
    const { user, value: session } = await s.mfa.passkeys.assertion(assertionOf(req.body.response), ctx, 'console', async (trx, u) =>
      ((await access.isOperator(trx, u.id)) && u.locked_at === null ? openSession(trx, u, ctx, 'passkey') : null));
    if (!session) {
      // The passkey's one generic failure, not a 403 of its own: the console does not tell who has the grant.
      await s.events.record(db, 'signin.failed', user.id, ctx, { reason: user.locked_at === null ? 'no_access' : 'locked', where: 'console' });
      throw new AppError('invalid_credentials', 'The passkey could not be verified. Try again.');
    }
    setCookie(reply, session);
    return reply.code(204).send(null);
  });

  app.post('/console/logout', {
    schema: { tags: ['console'], summary: 'Console: sign out', body: Type.Object({ csrf: Type.Optional(FormString(128)) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    const u = await consoleUser(s, access, req);
    if (u) {
      if (!csrfOk(req, s.config.publicUrl, u.csrf, req.body?.csrf)) return csrfRefused(reply, '/console');
      await access.revokeSession(u.id);
      await s.audit.record(db, u.operator, 'console.sign_out', u.email, 'signed out');
    }
    clearCookie(reply, 'console', { httpPath: '/console' });
    return seeOther(reply, '/console/login?signed_out=1');
  });
}

/** For console pages: the session, or a redirect to the console sign-in. */
export async function requireConsolePage(s: Services, access: ConsoleAccess, req: FastifyRequest, reply: FastifyReply): Promise<ConsoleUser | null> {
  const u = await consoleUser(s, access, req);
  if (!u) {
    noStore(reply);
    seeOther(reply, '/console/login');
    return null;
  }
  return u;
}
