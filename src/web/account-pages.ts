/**
 * Hosted account pages: /login (with its second-factor step), /signup, /verify, /verify/resend,
 * /logout. Invariants:
 * - sign-in goes through the same guard and the same SignInFlow as POST /api/v1/sessions and sets
 *   the same cookies (session, device): one generic error for any wrong credential, an address not
 *   yet confirmed included, the code step only after a correct password. The error says, to
 *   everyone alike, that a new account must confirm its address first, and links to a resend
 *   form that answers the same for every address;
 * - the password never goes back to the browser in clear: between the password step and the
 *   code step it travels in a sealed ticket (AES-GCM under FLOODGATE_SECRET_KEY, 5 minutes);
 * - /signup answers alike for new and existing addresses (the mail differs, the page does not);
 * - GET /verify only shows a button: opening the link changes nothing (mail scanners prefetch);
 * - every post is refused cross-site; /logout, which has a session, also needs its CSRF token;
 * - `next` after sign-in is a path on this site only.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../http/app.js';
import { sameOrigin } from '../http/auth.js';
import { ctxOf, noStore } from '../http/context.js';
import { isPlausibleEmail, normalizeEmail } from '../kernel/email.js';
import { isAppError, type AppError } from '../kernel/errors.js';
import { MIN_PASSWORD_LENGTH } from '../modules/accounts/index.js';
import type { Services } from '../services.js';
import { csrfOk, csrfRefused, crossSiteRefused } from './csrf.js';
import { ALTCHA_ASSETS, AltchaField, challengeWidget, field, FormString, safeNext } from './forms.js';
import { html, notice, sendPage, type SafeHtml } from './layout.js';
import { clearSessionCookie, pageUser, seeOther, setDeviceCookie, setSessionCookie } from './session.js';

const TICKET_TTL_MS = 5 * 60_000;
const TICKET_AAD = 'floodgate/login-mfa/v1';

interface Ticket {
  email: string;
  password: string;
  exp: number;
}

/** /login's passkey button (hidden until the script finds WebAuthn with its JSON codecs). */
export const PASSKEY_ASSETS = { scripts: ['/assets/passkey.js'] };

const htmlPage = { description: 'An HTML page', content: { 'text/html': { schema: Type.String() } } };
const pageSchema = (summary: string, statuses: number[]) => ({ tags: ['pages'], summary, response: Object.fromEntries(statuses.map((st) => [st, htmlPage])) });

function loginForm(o: { email?: string; next?: string; error?: string | null; challenge?: unknown; info?: SafeHtml | null }): SafeHtml {
  return html`${o.error ? notice('error', o.error) : ''}${o.info ?? ''}
<form method="post" action="/login">
${o.next ? html`<input type="hidden" name="next" value="${o.next}">` : ''}
${field({ id: 'email', label: 'Email address', type: 'email', value: o.email ?? '', autocomplete: 'username', inputmode: 'email', autofocus: !o.email })}
${field({ id: 'password', label: 'Password', type: 'password', autocomplete: 'current-password', maxlength: 1024, autofocus: !!o.email })}
${o.challenge ? challengeWidget(o.challenge) : ''}
<button type="submit">Sign in</button>
</form>
<div id="passkey-signin" class="passkey" data-next="${o.next ?? ''}" hidden>
<p>Or, if you have added a passkey to your account:</p>
<button type="button" id="passkey-signin-button" class="secondary">Sign in with a passkey</button>
<p id="passkey-signin-error" class="error" role="alert" hidden></p>
</div>
<p><a href="/forgot">Forgot your password?</a></p>
<p>No account yet? <a href="/signup">Create one</a>.</p>`;
}

/**
 * Under every wrong-credential answer of /login, the same for everyone: an unconfirmed address
 * signs in like a wrong password (no squatter gets a session), so the person who just signed up
 * needs to read why, in words that say nothing about the address typed.
 */
const CONFIRM_FIRST = html`<p class="hint">If you just created your account, confirm your email address first: <a href="/verify/resend">we can send the link again</a>.</p>`;

function resendForm(o: { email?: string; error?: string | null; challenge?: unknown }): SafeHtml {
  return html`${o.error ? notice('error', o.error) : ''}
<p>Enter the address you signed up with. If it has an account waiting for confirmation, we send it a new link.</p>
<form method="post" action="/verify/resend">
${field({ id: 'email', label: 'Email address', type: 'email', value: o.email ?? '', autocomplete: 'email', inputmode: 'email', autofocus: true })}
${o.challenge ? challengeWidget(o.challenge) : ''}
<button type="submit">Send the link again</button>
</form>
<p><a href="/login">Back to sign in</a></p>`;
}

function codeForm(ticket: string, next: string | undefined, error: string | null): SafeHtml {
  return html`${error ? notice('error', error) : ''}
<p>Your account uses two-step verification. Enter the 6-digit code from your authenticator app, or one of your recovery codes.</p>
<form method="post" action="/login">
<input type="hidden" name="ticket" value="${ticket}">
${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
${field({ id: 'otp', label: 'One-time code', type: 'text', autocomplete: 'one-time-code', maxlength: 64, hint: 'A recovery code works once; after using one, make new ones on your security page.', error: error ? 'Check the code and try again.' : null, autofocus: true })}
<button type="submit">Verify and sign in</button>
</form>
<p><a href="/login">Start again</a></p>`;
}

function signupForm(o: { email?: string; emailError?: string | null; passwordError?: string | null; challenge?: unknown; error?: string | null }): SafeHtml {
  return html`${o.error ? notice('error', o.error) : ''}
<form method="post" action="/signup">
${field({ id: 'email', label: 'Email address', type: 'email', value: o.email ?? '', autocomplete: 'email', inputmode: 'email', error: o.emailError ?? null })}
${field({ id: 'password', label: 'Choose a password', type: 'password', autocomplete: 'new-password', minlength: MIN_PASSWORD_LENGTH, maxlength: 1024, hint: `At least ${MIN_PASSWORD_LENGTH} characters (15 or more is better). A few unrelated words make a strong, memorable password.`, error: o.passwordError ?? null })}
${o.challenge ? challengeWidget(o.challenge) : ''}
<button type="submit">Create account</button>
</form>
<p>Already have an account? <a href="/login">Sign in</a>.</p>`;
}

function tooMany(reply: FastifyReply, e: AppError, title: string, again: SafeHtml): FastifyReply {
  for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
  return sendPage(reply, 429, title, html`${notice('error', 'Too many attempts. Wait a minute, then try again.')}${again}`);
}

export async function accountPages(app: App, s: Services): Promise<void> {
  const seal = (t: Ticket) => s.box.seal(JSON.stringify(t), TICKET_AAD);
  const open = (sealed: string): Ticket | null => {
    const raw = s.box.open(sealed, TICKET_AAD);
    if (!raw) return null;
    try {
      const t = JSON.parse(raw) as Ticket;
      return typeof t.email === 'string' && typeof t.password === 'string' && typeof t.exp === 'number' && t.exp > s.clock.now() ? t : null;
    } catch {
      return null;
    }
  };

  app.get('/login', {
    schema: {
      ...pageSchema('Page: sign in', [200, 303]),
      querystring: Type.Object({ next: Type.Optional(FormString(300)), signed_out: Type.Optional(FormString(1)) }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    const next = safeNext(req.query.next, '');
    if (await pageUser(s, req)) return seeOther(reply, next || '/security');
    const info = req.query.signed_out ? notice('success', 'You are signed out.') : null;
    return sendPage(reply, 200, 'Sign in', loginForm({ next, info }), PASSKEY_ASSETS);
  });

  app.post('/login', {
    schema: {
      ...pageSchema('Page: sign in (form post; then the one-time-code step when the account uses two-step verification)', [200, 303, 400, 401, 403, 428, 429]),
      body: Type.Object({
        email: Type.Optional(FormString(320)), password: Type.Optional(FormString(1024)), otp: Type.Optional(FormString(64)),
        ticket: Type.Optional(FormString(4096)), next: Type.Optional(FormString(300)), altcha: AltchaField,
      }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSiteRefused(reply, '/login');
    const b = req.body;
    const next = safeNext(b.next, '');
    let email = b.email ?? '';
    let password = b.password ?? '';
    const ticketIn = b.ticket;
    if (ticketIn !== undefined) {
      const t = open(ticketIn);
      if (!t) return sendPage(reply, 400, 'Sign in', loginForm({ next, error: 'That took too long. Sign in again.' }), PASSKEY_ASSETS);
      email = t.email;
      password = t.password;
    }
    if (!email || !password) return sendPage(reply, 400, 'Sign in', loginForm({ email, next, error: 'Enter your email address and your password.' }), PASSKEY_ASSETS);
    const ctx = ctxOf(req);
    try {
      await s.guard.enforce('signin', { ip: ctx.ip, target: normalizeEmail(email), altcha: b.altcha });
      const r = await s.signIn.signIn({ email, password, otp: b.otp ? b.otp : undefined }, ctx);
      setSessionCookie(s, reply, r.token);
      setDeviceCookie(s, reply, r.device);
      return seeOther(reply, next || '/security');
    } catch (e) {
      if (!isAppError(e)) throw e;
      switch (e.code) {
        case 'mfa_required':
          // The password was right: carry it sealed to the code step, never in clear.
          return sendPage(reply, 200, 'Two-step verification', codeForm(ticketIn ?? seal({ email, password, exp: s.clock.now() + TICKET_TTL_MS }), next, ticketIn !== undefined ? 'Enter the one-time code.' : null));
        case 'invalid_credentials':
          if (ticketIn !== undefined) return sendPage(reply, 401, 'Two-step verification', codeForm(ticketIn, next, 'That code is not right, or was already used.'));
          return sendPage(reply, 401, 'Sign in', loginForm({ email, next, error: 'The email or password is incorrect.', info: CONFIRM_FIRST }), PASSKEY_ASSETS);
        case 'challenge_required':
          return sendPage(reply, 428, 'Sign in', loginForm({ email, next, challenge: e.extra?.challenge, error: 'One more step: confirm you are not a robot, then sign in again.' }), { scripts: [...ALTCHA_ASSETS.scripts, ...PASSKEY_ASSETS.scripts], styles: ALTCHA_ASSETS.styles });
        case 'rate_limited':
          return tooMany(reply, e, 'Sign in', loginForm({ email, next }));
        case 'invalid_request':
          return sendPage(reply, 400, 'Sign in', loginForm({ email, next, error: 'Enter your email address and your password.' }), PASSKEY_ASSETS);
        default:
          throw e;
      }
    }
  });

  app.get('/signup', { schema: pageSchema('Page: create an account', [200]) }, async (_req, reply) => {
    noStore(reply);
    return sendPage(reply, 200, 'Create an account', signupForm({}));
  });

  app.post('/signup', {
    schema: {
      ...pageSchema('Page: create an account (form post)', [200, 400, 403, 428, 429]),
      body: Type.Object({ email: FormString(320), password: FormString(1024), altcha: AltchaField }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSiteRefused(reply, '/signup');
    const { email, password } = req.body;
    const ctx = ctxOf(req);
    try {
      await s.guard.enforce('signup', { ip: ctx.ip, target: normalizeEmail(email), altcha: req.body.altcha });
      s.metrics.signUps.inc();
      await s.accounts.signUp(email, password, ctx);
    } catch (e) {
      if (!isAppError(e)) throw e;
      switch (e.code) {
        case 'weak_password':
          return sendPage(reply, 400, 'Create an account', signupForm({ email, passwordError: e.detail ?? 'Choose another password.', error: 'Choose another password.' }));
        case 'invalid_request':
          return sendPage(reply, 400, 'Create an account', signupForm({ email, emailError: 'Enter a valid email address.', error: 'Enter a valid email address.' }));
        case 'challenge_required':
          return sendPage(reply, 428, 'Create an account', signupForm({ email, challenge: e.extra?.challenge, error: 'One more step: confirm you are not a robot, then send the form again.' }), ALTCHA_ASSETS);
        case 'rate_limited':
          return tooMany(reply, e, 'Create an account', signupForm({ email }));
        default:
          throw e;
      }
    }
    // The same page whether or not the address already has an account.
    return sendPage(reply, 200, 'Check your email', html`${notice('success', 'We sent a message to that address. Open the link in it to confirm your address.')}
<p>The link works for 30 minutes and only once; you can sign in once your address is confirmed. If the address already has an account, the message says so instead.</p>
<p><a href="/login">Go to sign in</a></p>`);
  });

  app.get('/verify', {
    schema: { ...pageSchema('Page: the email confirmation link (shows a button; changes nothing)', [200]), querystring: Type.Object({ token: Type.Optional(FormString(200)) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    return sendPage(reply, 200, 'Confirm your email address', html`<p>Press the button to confirm this email address for your account.</p>
<form method="post" action="/verify">
<input type="hidden" name="token" value="${req.query.token ?? ''}">
<button type="submit">Confirm my email address</button>
</form>`);
  });

  app.post('/verify', {
    schema: { ...pageSchema('Page: confirm the email address (form post)', [200, 400, 403]), body: Type.Object({ token: FormString(200) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSiteRefused(reply, '/login');
    if (!(await s.accounts.verifyEmail(req.body.token, ctxOf(req)))) {
      return sendPage(reply, 400, 'This link cannot be used', html`${notice('error', 'This confirmation link is invalid, was already used, or has expired.')}
<p><a href="/verify/resend">Ask for a new link</a>, or <a href="/signup">sign up again</a>.</p>`);
    }
    return sendPage(reply, 200, 'Email address confirmed', html`${notice('success', 'Thank you: your email address is confirmed.')}
<p><a href="/login">Sign in</a></p>`);
  });

  app.get('/verify/resend', { schema: pageSchema('Page: ask for the email confirmation link again', [200]) }, async (_req, reply) => {
    noStore(reply);
    return sendPage(reply, 200, 'Confirm your email address', resendForm({}));
  });

  app.post('/verify/resend', {
    schema: {
      ...pageSchema('Page: ask for the email confirmation link again (form post; the same answer for every address)', [200, 400, 403, 428, 429]),
      body: Type.Object({ email: FormString(320), altcha: AltchaField }, { additionalProperties: false }),
    },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSiteRefused(reply, '/verify/resend');
    const { email } = req.body;
    const ctx = ctxOf(req);
    if (!isPlausibleEmail(normalizeEmail(email))) {
      return sendPage(reply, 400, 'Confirm your email address', resendForm({ email, error: 'Enter a valid email address.' }));
    }
    try {
      // The same guard and the same rules as POST /api/v1/accounts/verify/resend.
      await s.guard.enforce('verify_resend', { ip: ctx.ip, target: normalizeEmail(email), altcha: req.body.altcha });
      await s.accounts.resendVerification(email, ctx);
    } catch (e) {
      if (!isAppError(e)) throw e;
      switch (e.code) {
        case 'challenge_required':
          return sendPage(reply, 428, 'Confirm your email address',
            resendForm({ email, challenge: e.extra?.challenge, error: 'One more step: confirm you are not a robot, then send the form again.' }), ALTCHA_ASSETS);
        case 'rate_limited':
          return tooMany(reply, e, 'Confirm your email address', resendForm({ email }));
        default:
          throw e;
      }
    }
    // The same page whatever the address: known or not, confirmed or not, mailed now or recently.
    return sendPage(reply, 200, 'Check your email', html`${notice('success', 'If that address has an account waiting for confirmation, a new link is on its way.')}
<p>The link works for 30 minutes and only once. If no message arrives, check the address and your spam folder, and try again in a few minutes.</p>
<p><a href="/login">Go to sign in</a></p>`);
  });

  app.post('/logout', {
    schema: { ...pageSchema('Page: sign out (form post with the CSRF token)', [303, 403]), body: Type.Object({ csrf: Type.Optional(FormString(128)) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    const u = await pageUser(s, req);
    if (!u) {
      clearSessionCookie(reply);
      return seeOther(reply, '/login?signed_out=1');
    }
    if (!csrfOk(req, s.config.publicUrl, u.csrf, req.body?.csrf)) return csrfRefused(reply, '/security');
    await s.sessions.revoke(u.userId, u.session.id, ctxOf(req), 'signout');
    clearSessionCookie(reply);
    return seeOther(reply, '/login?signed_out=1');
  });
}

/** For other pages: send signed-out visitors to /login, and back here afterwards. */
export function toLogin(reply: FastifyReply, req: FastifyRequest): FastifyReply {
  const path = req.url.split('?')[0] ?? '/security';
  return seeOther(reply, `/login?next=${encodeURIComponent(safeNext(path, '/security'))}`);
}
