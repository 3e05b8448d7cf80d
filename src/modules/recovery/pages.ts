/**
 * Hosted recovery pages: /forgot, /reset, /reset/deny. Invariants:
 * - GET never acts: mail scanners and link previews fetch links, so opening a reset or deny link
 *   only shows a form (it may read whether the token is usable, it never changes it); only the
 *   POST from that form acts;
 * - token pages are never cached and never leak their URL through Referer (no-store, no-referrer);
 * - forms are plain HTML posts (no script: the CSP forbids inline script anyway). They carry no
 *   session, so no CSRF token, but a post from another site is refused (Origin / Sec-Fetch-Site);
 * - /forgot answers exactly as the API does: the same page for every address.
 * - when the guard asks for proof of work (428), /forgot comes back with the ALTCHA widget, the
 *   only script on these pages (served from /assets/); its solution arrives as the `altcha` field.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { sameOrigin } from '../../http/auth.js';
import { ctxOf, noStore } from '../../http/context.js';
import { isAppError, type AppError } from '../../kernel/errors.js';
import type { Services } from '../../services.js';
import { html, notice, sendPage, type SafeHtml } from '../../web/layout.js';
import { ALTCHA_ASSETS, challengeWidget } from '../../web/forms.js';
import { MIN_PASSWORD_LENGTH } from '../accounts/index.js';
import { requesterOf } from './routes.js';

const FormString = (maxLength: number) => Type.String({ maxLength });

function humanDuration(ms: number): string {
  const h = ms / 3_600_000;
  if (h >= 48 && Number.isInteger(h / 24)) return `${h / 24} days`;
  if (h >= 1 && Number.isInteger(h)) return h === 1 ? '1 hour' : `${h} hours`;
  const m = Math.round(ms / 60_000);
  return m === 1 ? '1 minute' : `${m} minutes`;
}

function forgotForm(email = '', error: SafeHtml | string | null = null, challenge: unknown = null): SafeHtml {
  return html`${error ? notice('error', error) : ''}
<p>Enter the email address of your account. If there is an account for it, we will send a link to choose a new password.</p>
<form method="post" action="/forgot">
<div class="field">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" inputmode="email" required maxlength="320" value="${email}"${error && !challenge ? html` aria-invalid="true"` : ''}>
</div>
${challenge ? challengeWidget(challenge) : ''}
<button type="submit">Send reset link</button>
</form>`;
}

function resetForm(token: string, opts: { secondFactor: boolean; error?: SafeHtml | string | null }): SafeHtml {
  return html`${opts.error ? notice('error', opts.error) : ''}
<form method="post" action="/reset">
<input type="hidden" name="token" value="${token}">
<div class="field">
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="${MIN_PASSWORD_LENGTH}" maxlength="1024" aria-describedby="password-hint">
<p id="password-hint" class="hint">At least ${MIN_PASSWORD_LENGTH} characters. A few unrelated words make a strong, memorable password.</p>
</div>
<div class="field">
<label for="confirm">New password, again</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="${MIN_PASSWORD_LENGTH}" maxlength="1024">
</div>
${opts.secondFactor
    ? html`<div class="field">
<label for="otp">One-time code</label>
<input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" maxlength="64" required aria-describedby="otp-hint">
<p id="otp-hint" class="hint">Your account uses two-step verification: enter a code from your authenticator app, or one of your recovery codes.</p>
</div>`
    : ''}
<button type="submit">Set new password</button>
</form>
<p class="hint">Setting a new password signs you out everywhere.</p>`;
}

const badLink = (what: string) =>
  html`${notice('error', `This ${what} is invalid, was already used, or has expired.`)}
<p><a href="/forgot">Ask for a new reset link</a></p>`;

/** A cross-site post: refused before it acts. */
function crossSite(reply: FastifyReply): FastifyReply {
  return sendPage(reply, 403, 'Request refused', html`${notice('error', 'This form must be sent from this site. Open the page again and retry.')}`);
}

function tooMany(reply: FastifyReply, e: AppError, again: SafeHtml): FastifyReply {
  for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
  return sendPage(reply, 429, 'Too many requests', html`${notice('error', 'Too many requests came from your network. Wait a minute, then try again.')}${again}`);
}

export async function recoveryPages(app: App, s: Services): Promise<void> {
  const quiet = humanDuration(s.config.resetDenyQuietMs);
  const pageOpts = { tags: ['recovery'] };
  const htmlResponse = (statuses: number[]) => Object.fromEntries(statuses.map((st) => [st, { description: 'An HTML page', content: { 'text/html': { schema: Type.String() } } }]));

  app.get('/forgot', {
    schema: { ...pageOpts, summary: 'Page: ask for a reset link (`email` pre-fills the form)', querystring: Type.Object({ email: Type.Optional(FormString(320)) }, { additionalProperties: false }), response: htmlResponse([200]) },
  }, async (req, reply) => {
    noStore(reply);
    return sendPage(reply, 200, 'Forgot your password?', forgotForm(req.query.email ?? ''));
  });

  app.post('/forgot', {
    schema: { ...pageOpts, summary: 'Page: ask for a reset link (form post)', body: Type.Object({ email: FormString(400), altcha: Type.Optional(FormString(8192)) }, { additionalProperties: false }), response: htmlResponse([200, 400, 403, 428, 429]) },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSite(reply);
    try {
      await s.recovery.request(req.body.email, ctxOf(req), await requesterOf(s, req), req.body.altcha);
    } catch (e) {
      if (!isAppError(e)) throw e;
      if (e.code === 'rate_limited') return tooMany(reply, e, forgotForm(req.body.email));
      // The guard wants proof of work: the same form again, with the ALTCHA widget (it adds the `altcha` field).
      if (e.code === 'challenge_required') return sendPage(reply, 428, 'Forgot your password?', forgotForm(req.body.email, 'One more step: tick the box below, then send the form again.', e.extra?.challenge), ALTCHA_ASSETS);
      if (e.code === 'invalid_request') return sendPage(reply, 400, 'Forgot your password?', forgotForm(req.body.email, 'Enter a valid email address.'));
      throw e;
    }
    // The same page for every address: it must not tell whether an account exists.
    return sendPage(reply, 200, 'Check your email', html`${notice('success', 'If an account exists for that address, we sent a link to reset your password.')}
<p>The link works for ${humanDuration(s.recovery.limits.tokenTtlMs)} and only once. If nothing arrives, check your spam folder; you can ask again in a few minutes.</p>
<p>Did not ask for this? You can ignore the email, or use its "I didn't request this" link.</p>`);
  });

  app.get('/reset', {
    schema: { ...pageOpts, summary: 'Page: the reset link (shows a form; changes nothing)', querystring: Type.Object({ token: Type.Optional(FormString(200)) }, { additionalProperties: false }), response: htmlResponse([200, 400]) },
  }, async (req, reply) => {
    noStore(reply);
    const token = req.query.token ?? '';
    const usable = await s.recovery.peek(token);
    if (!usable) return sendPage(reply, 400, 'This link cannot be used', badLink('reset link'));
    return sendPage(reply, 200, 'Choose a new password', resetForm(token, { secondFactor: usable.secondFactor }));
  });

  app.post('/reset', {
    schema: {
      ...pageOpts, summary: 'Page: set the new password (form post)',
      body: Type.Object({ token: FormString(200), password: FormString(1024), confirm: FormString(1024), otp: Type.Optional(FormString(64)) }, { additionalProperties: false }),
      response: htmlResponse([200, 400, 401, 403, 429]),
    },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSite(reply);
    const { token, password, confirm, otp } = req.body;
    const again = async (status: number, error: string, secondFactor?: boolean) =>
      sendPage(reply, status, 'Choose a new password', resetForm(token, { secondFactor: secondFactor ?? (otp !== undefined || !!(await s.recovery.peek(token))?.secondFactor), error }));
    if (password !== confirm) return again(400, 'The two passwords do not match.');
    try {
      await s.recovery.confirm({ token, password, otp }, ctxOf(req));
    } catch (e) {
      if (!isAppError(e)) throw e;
      switch (e.code) {
        case 'invalid_token':
          return sendPage(reply, 400, 'This link cannot be used', badLink('reset link'));
        case 'weak_password':
        case 'invalid_request':
          return again(400, e.detail ?? 'Choose another password.');
        case 'mfa_required':
          return again(401, 'Your account uses two-step verification: enter a one-time code as well.', true);
        case 'invalid_credentials':
          return again(401, 'That one-time code is not right, or was already used.', true);
        case 'rate_limited':
          return tooMany(reply, e, html`<p><a href="/forgot">Start again</a></p>`);
        default:
          throw e;
      }
    }
    return sendPage(reply, 200, 'Password changed', html`${notice('success', 'Your password has been changed, and every device signed in to your account has been signed out.')}
<p><a href="/login">Sign in with your new password</a></p>`);
  });

  app.get('/reset/deny', {
    schema: { ...pageOpts, summary: 'Page: "I didn\'t request this" (shows a confirm button; changes nothing)', querystring: Type.Object({ token: Type.Optional(FormString(200)) }, { additionalProperties: false }), response: htmlResponse([200, 400]) },
  }, async (req, reply) => {
    noStore(reply);
    const token = req.query.token ?? '';
    if (!(await s.recovery.peekDeny(token))) return sendPage(reply, 400, 'This link cannot be used', badLink('link'));
    return sendPage(reply, 200, 'Did not ask to reset your password?', html`<p>Someone asked for a password reset link for your account. If it was not you, cancel it here: the link stops working and we will not send reset emails to you for the next ${quiet}.</p>
<p>Your password has not been changed, and nobody can change it without that email.</p>
<form method="post" action="/reset/deny">
<input type="hidden" name="token" value="${token}">
<button type="submit">Cancel the reset and report it</button>
</form>`);
  });

  app.post('/reset/deny', {
    schema: { ...pageOpts, summary: 'Page: cancel and report the reset (form post)', body: Type.Object({ token: FormString(200) }, { additionalProperties: false }), response: htmlResponse([200, 400, 403, 429]) },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) return crossSite(reply);
    try {
      await s.recovery.deny(req.body.token, ctxOf(req));
    } catch (e) {
      if (!isAppError(e)) throw e;
      if (e.code === 'invalid_token') return sendPage(reply, 400, 'This link cannot be used', badLink('link'));
      if (e.code === 'rate_limited') return tooMany(reply, e, html``);
      throw e;
    }
    return sendPage(reply, 200, 'Thank you', html`${notice('success', 'The reset link no longer works, and your report was recorded.')}
<p>We will not send password reset emails to your address for the next ${quiet}. Your password has not been changed.</p>
<p>If these emails keep coming, turn on two-step verification in your account's security settings.</p>`);
  });
}
