/**
 * The signed-in person's security page (/security): devices and sessions, recent security
 * events, two-step verification (authenticator app, recovery codes), password change, in-app
 * notices with the "was it you?" reset prompt, and every security mail we sent in 90 days.
 * Invariants:
 * - cookie session only; every post carries the session's CSRF token and passes the origin check
 *   (csrf.ts) before anything happens;
 * - every change goes through the same service call as its JSON API twin (same rules, events,
 *   notices, limits); the page adds no privilege of its own;
 * - secrets shown once (TOTP seed, recovery codes) are on no-store pages and never stored in clear;
 * - after a successful post the browser is redirected (303) to a fixed notice: nothing from the
 *   request is reflected.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../http/app.js';
import { ctxOf, noStore } from '../http/context.js';
import { isAppError, type AppError } from '../kernel/errors.js';
import { MIN_PASSWORD_LENGTH } from '../modules/accounts/index.js';
import { RECENT_AUTH_MS, type Actor } from '../modules/mfa/index.js';
import { inboxStore, listSentMessages, MESSAGES_WINDOW_DAYS } from '../modules/notifications/index.js';
import type { Services } from '../services.js';
import { toLogin } from './account-pages.js';
import { csrfField, csrfOk, csrfRefused } from './csrf.js';
import { field, FormString } from './forms.js';
import { html, notice, sendPage, type SafeHtml } from './layout.js';
import { pageUser, seeOther, type PageUser } from './session.js';
import { when } from './format.js';

const DONE: Record<string, string> = {
  session_revoked: 'That device was signed out.',
  session_gone: 'That session had already ended.',
  others_revoked: 'Every other device was signed out.',
  password_changed: 'Your password was changed.',
  totp_removed: 'The authenticator app was removed from your account.',
  passkey_added: 'The passkey was added: next time, sign in with it.',
  passkey_removed: 'The passkey was removed from your account.',
  prompt_yes: 'Thank you. We are sending the reset link to your email address now.',
  prompt_no: 'Thank you for telling us. Reset links already sent no longer work, and we will not send reset emails to you for a while. Your password is unchanged.',
  prompt_gone: 'That question was already answered.',
  read: 'Marked as read.',
};

export const EVENT_LABELS: Record<string, string> = {
  'account.created': 'Account created',
  'account.signup_existing': 'Someone tried to sign up with your address',
  'account.email_verified': 'Email address confirmed',
  'account.pre_verification_cleared': 'Sign-ins and security settings made before the address was confirmed were removed',
  'account.imported': 'Account imported',
  'account.locked': 'Account locked after too many failed sign-ins',
  'account.unlocked': 'Account unlocked',
  'signin.succeeded': 'Signed in',
  'signin.failed': 'Failed sign-in attempt',
  'signin.throttled': 'Sign-in attempts slowed down',
  'session.revoked': 'A device was signed out',
  'session.revoked_others': 'All other devices were signed out',
  'session.signed_out': 'Signed out',
  'password.changed': 'Password changed',
  'password.rehashed': 'Password storage upgraded',
  'password.reset_requested': 'Password reset requested',
  'password.reset_denied': 'Password reset reported as not requested',
  'password.reset_completed': 'Password reset completed',
  'password.reset_mfa_failed': 'Password reset: wrong one-time code',
  'mfa.totp_enrolled': 'Authenticator app turned on',
  'mfa.totp_removed': 'Authenticator app removed',
  'mfa.recovery_code_used': 'Recovery code used',
  'mfa.passkey_added': 'Passkey added',
  'mfa.passkey_removed': 'Passkey removed',
  'mfa.recovery_codes_regenerated': 'New recovery codes made',
  'console.signed_in': 'Signed in to the operator console',
  'operator.action': 'Action by an operator',
};

const STATE_LABELS: Record<string, string> = {
  queued: 'On its way', sending: 'On its way', sent: 'Sent', failed: 'Could not be delivered', held: 'Held back for a security check', discarded: 'Not sent',
};

type PasswordErrors = { form?: string; current?: string; password?: string; confirm?: string };

interface RenderOptions {
  done?: string | undefined;
  errors?: { sessions?: string; mfa?: string; passkeys?: string; password?: PasswordErrors; notifications?: string };
}

function actorOf(u: PageUser): Actor {
  return { userId: u.userId, sessionId: u.session.id, sessionCreatedAt: Number(u.session.created_at) };
}

/** The header links of a signed-in page, with a sign-out button (a CSRF-protected post). */
export function signedInNav(u: PageUser): SafeHtml {
  return html`<a href="/security">Security settings</a>
<form method="post" action="/logout" class="inline">${csrfField(u.csrf)}<button type="submit" class="link">Sign out</button></form>`;
}

export async function securityPages(app: App, s: Services): Promise<void> {
  const db = s.storage.db;

  const recentAuth = (u: PageUser) => s.clock.now() - Number(u.session.created_at) <= RECENT_AUTH_MS;
  // Asked only when the sign-in is older than 10 minutes (the MFA module's recent-authentication rule).
  const reauthField = (u: PageUser, id: string, error?: string | null) =>
    recentAuth(u) && !error
      ? html``
      : field({ id, name: 'password', label: 'Your password', type: 'password', autocomplete: 'current-password', maxlength: 1024, hint: 'You signed in more than 10 minutes ago: confirm it is you.', error: error ?? null });

  async function render(u: PageUser, opts: RenderOptions = {}): Promise<SafeHtml> {
    const user = await s.accounts.findById(u.userId);
    const [sessions, events, mfa, inbox, messages, passkeys] = await Promise.all([
      s.sessions.list(u.userId, u.session.id),
      s.events.listForUser(db, u.userId, 20),
      s.mfa.factors.status(u.userId),
      inboxStore.list(db, u.userId, 20),
      listSentMessages(db, u.userId, s.clock.now(), s.config.publicUrl),
      s.mfa.passkeys.list(u.userId),
    ]);
    const e = opts.errors ?? {};
    const prompts = inbox.items.filter((i) => i.type === 'reset_prompt' && i.readAt === null);
    const others = sessions.filter((x) => !x.current);
    const pw = e.password ?? {};
    return html`${opts.done && DONE[opts.done] ? notice('success', DONE[opts.done]!) : ''}
<p>Signed in as <strong>${user?.email ?? ''}</strong>.</p>
<nav class="toc" aria-label="On this page"><a href="#devices">Devices</a> <a href="#two-step">Two-step verification</a> <a href="#passkeys">Passkeys</a> <a href="#password">Password</a> <a href="#notifications">Notifications${inbox.unread ? ` (${inbox.unread})` : ''}</a> <a href="#mail">Mail we sent you</a> <a href="#events">Activity</a></nav>
${prompts.map((p) => html`<section class="card prompt" aria-labelledby="prompt-${p.id}">
<h2 id="prompt-${p.id}">Someone asked to reset your password — was it you?</h2>
<p>${p.body}</p>
<p class="hint">Asked <time datetime="${p.createdAt}">${when(p.createdAt)}</time>.</p>
<div class="actions">
<form method="post" action="/security/prompts/answer" class="inline">${csrfField(u.csrf)}<input type="hidden" name="id" value="${p.id}"><input type="hidden" name="answer" value="yes"><button type="submit">Yes, it was me: send the link</button></form>
<form method="post" action="/security/prompts/answer" class="inline">${csrfField(u.csrf)}<input type="hidden" name="id" value="${p.id}"><input type="hidden" name="answer" value="no"><button type="submit" class="danger">No, it wasn't me</button></form>
</div>
</section>`)}
<section class="card" id="devices" aria-labelledby="devices-h">
<h2 id="devices-h">Devices and sessions</h2>
${e.sessions ? notice('error', e.sessions) : ''}
<p>These devices are signed in to your account. If you do not recognise one, sign it out and change your password.</p>
<div class="table-wrap"><table class="stack">
<caption class="visually-hidden">Signed-in devices</caption>
<thead><tr><th scope="col">Device</th><th scope="col">Address</th><th scope="col">Signed in</th><th scope="col">Last active</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${sessions.map((x) => html`<tr${x.current ? html` class="current"` : ''}>
<td data-label="Device">${x.device}${x.current ? html` <span class="badge ok">This device</span>` : ''}</td>
<td data-label="Address">${x.ip ?? '—'}</td>
<td data-label="Signed in"><time datetime="${x.createdAt}">${when(x.createdAt)}</time></td>
<td data-label="Last active"><time datetime="${x.lastSeenAt}">${when(x.lastSeenAt)}</time></td>
<td class="action">${x.current
    ? html`<form method="post" action="/logout" class="inline">${csrfField(u.csrf)}<button type="submit" class="secondary">Sign out</button></form>`
    : html`<form method="post" action="/security/sessions/revoke" class="inline">${csrfField(u.csrf)}<input type="hidden" name="id" value="${x.id}"><button type="submit" class="secondary" aria-label="Sign out ${x.device}">Sign out</button></form>`}</td>
</tr>`)}
</tbody>
</table></div>
${others.length ? html`<form method="post" action="/security/sessions/revoke-others">${csrfField(u.csrf)}<button type="submit" class="danger">Sign out all other devices (${others.length})</button></form>` : html`<p class="hint">No other device is signed in.</p>`}
</section>

<section class="card" id="two-step" aria-labelledby="two-step-h">
<h2 id="two-step-h">Two-step verification</h2>
${e.mfa ? notice('error', e.mfa) : ''}
${mfa.totp.enabled
    ? html`<p><span class="badge ok">On</span> An authenticator app is set up${mfa.totp.confirmedAt ? html` (since <time datetime="${mfa.totp.confirmedAt}">${when(mfa.totp.confirmedAt)}</time>)` : ''}. ${mfa.passkeys ? `You also have ${mfa.passkeys} passkey${mfa.passkeys === 1 ? '' : 's'}.` : ''}</p>
<p>Recovery codes left: <strong>${mfa.recoveryCodesLeft}</strong>. Each works once, if you lose your phone.</p>
<details><summary>Make new recovery codes</summary>
<form method="post" action="/security/recovery-codes">${csrfField(u.csrf)}
${reauthField(u, 'codes-password')}
<button type="submit" class="secondary">Make new recovery codes</button>
</form></details>
<details><summary>Remove the authenticator app</summary>
<form method="post" action="/security/totp/remove">${csrfField(u.csrf)}
${reauthField(u, 'remove-password')}
<button type="submit" class="danger">Remove the authenticator app</button>
</form></details>`
    : html`<p>${mfa.enabled ? html`<span class="badge ok">On</span> You sign in with a passkey as well (${mfa.passkeys}).` : html`<span class="badge warn">Off</span> With two-step verification, a stolen password alone cannot open your account.`}</p>
<form method="post" action="/security/totp">${csrfField(u.csrf)}
${reauthField(u, 'totp-password')}
<button type="submit">Set up an authenticator app</button>
</form>`}
</section>

<section class="card" id="passkeys" aria-labelledby="passkeys-h">
<h2 id="passkeys-h">Passkeys</h2>
${e.passkeys ? notice('error', e.passkeys) : ''}
<p>A passkey signs you in with this device's screen lock or a security key: nothing to type, nothing a fake site can steal. It also counts as two-step verification.</p>
${passkeys.length
    ? html`<div class="table-wrap"><table class="cards">
<caption class="visually-hidden">Your passkeys</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Added</th><th scope="col">Last used</th><th scope="col"><span class="visually-hidden">Action</span></th></tr></thead>
<tbody>
${passkeys.map((k) => html`<tr><td data-label="Name">${k.name}</td><td data-label="Added"><time datetime="${k.createdAt}">${when(k.createdAt)}</time></td><td data-label="Last used">${k.lastUsedAt ? html`<time datetime="${k.lastUsedAt}">${when(k.lastUsedAt)}</time>` : 'never'}</td>
<td class="action"><details><summary>Remove</summary><form method="post" action="/security/passkeys/remove">${csrfField(u.csrf)}<input type="hidden" name="id" value="${k.id}">
${reauthField(u, `passkey-remove-${k.id}`)}
<button type="submit" class="danger" aria-label="Remove the passkey ${k.name}">Remove</button></form></details></td></tr>`)}
</tbody>
</table></div>`
    : html`<p class="hint">No passkey yet.</p>`}
<div id="passkey-add" hidden>
<div class="passkey-form">
${field({ id: 'passkey-name', name: 'name', label: 'Name for the new passkey', type: 'text', maxlength: 64, hint: 'So you can tell your passkeys apart, e.g. "work laptop".' })}
${reauthField(u, 'passkey-password')}
<button type="button" id="passkey-add-button">Add a passkey</button>
<p id="passkey-add-error" class="error" role="alert" hidden></p>
</div>
<div id="passkey-codes" hidden>
<p role="status">Two-step verification is on. Keep these recovery codes somewhere safe: each works once if you lose your passkeys. They are shown only now.</p>
<ol id="passkey-codes-list" class="codes"></ol>
<p><a id="passkey-codes-done" href="/security?done=passkey_added#passkeys">I have saved them</a></p>
</div>
</div>
<noscript><p class="hint">Adding a passkey needs JavaScript.</p></noscript>
</section>

<section class="card" id="password" aria-labelledby="password-h">
<h2 id="password-h">Change your password</h2>
${pw.form ? notice('error', pw.form) : ''}
<form method="post" action="/security/password">${csrfField(u.csrf)}
${field({ id: 'current', label: 'Current password', type: 'password', autocomplete: 'current-password', maxlength: 1024, error: pw.current ?? null })}
${field({ id: 'new-password', name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', minlength: MIN_PASSWORD_LENGTH, maxlength: 1024, hint: `At least ${MIN_PASSWORD_LENGTH} characters (15 or more is better).`, error: pw.password ?? null })}
${field({ id: 'confirm', label: 'New password, again', type: 'password', autocomplete: 'new-password', minlength: MIN_PASSWORD_LENGTH, maxlength: 1024, error: pw.confirm ?? null })}
<div class="check"><input id="signout-others" name="signout_others" type="checkbox" value="on" checked><label for="signout-others">Also sign out my other devices</label></div>
<button type="submit">Change password</button>
</form>
</section>

<section class="card" id="notifications" aria-labelledby="notifications-h">
<h2 id="notifications-h">Notifications</h2>
${e.notifications ? notice('error', e.notifications) : ''}
${inbox.items.length
    ? html`<ul class="inbox">${inbox.items.map((n) => html`<li${n.readAt === null ? html` class="unread"` : ''}>
<p><strong>${n.title}</strong>${n.readAt === null ? html` <span class="badge">New</span>` : ''}</p>
<p>${n.body}</p>
<p class="hint"><time datetime="${n.createdAt}">${when(n.createdAt)}</time></p>
${n.readAt === null && n.type !== 'reset_prompt' ? html`<form method="post" action="/security/notifications/read" class="inline">${csrfField(u.csrf)}<input type="hidden" name="id" value="${n.id}"><button type="submit" class="link">Mark as read</button></form>` : ''}
</li>`)}</ul>`
    : html`<p class="hint">No notifications.</p>`}
</section>

<section class="card" id="mail" aria-labelledby="mail-h">
<h2 id="mail-h">Mail we sent you</h2>
<p>Every security message we sent to this account in the last ${MESSAGES_WINDOW_DAYS} days. If an email that claims to come from us is not listed here, we did not send it: do not open its links or enter your password.</p>
${messages.length
    ? html`<div class="table-wrap"><table class="stack">
<caption class="visually-hidden">Security messages sent to you</caption>
<thead><tr><th scope="col">Subject</th><th scope="col">When</th><th scope="col">How</th><th scope="col">Status</th></tr></thead>
<tbody>
${messages.map((m) => html`<tr><td data-label="Subject">${m.subject}</td><td data-label="When"><time datetime="${m.sentAt ?? m.createdAt}">${when(m.sentAt ?? m.createdAt)}</time></td><td data-label="How">${m.channel === 'email' ? html`Email${m.to ? html` <span class="hint">to ${m.to}</span>` : ''}` : 'In-app'}</td><td data-label="Status">${STATE_LABELS[m.state] ?? m.state}</td></tr>`)}
</tbody>
</table></div>`
    : html`<p class="hint">We have sent you nothing in the last ${MESSAGES_WINDOW_DAYS} days.</p>`}
</section>

<section class="card" id="events" aria-labelledby="events-h">
<h2 id="events-h">Recent activity</h2>
${events.length
    ? html`<div class="table-wrap"><table class="stack">
<caption class="visually-hidden">Recent security events</caption>
<thead><tr><th scope="col">What</th><th scope="col">When</th><th scope="col">Device</th><th scope="col">Address</th></tr></thead>
<tbody>
${events.map((ev) => html`<tr><td data-label="What">${EVENT_LABELS[ev.type] ?? ev.type}</td><td data-label="When"><time datetime="${ev.at}">${when(ev.at)}</time></td><td data-label="Device">${ev.device ?? '—'}</td><td data-label="Address">${ev.ip ?? '—'}</td></tr>`)}
</tbody>
</table></div>`
    : html`<p class="hint">Nothing yet.</p>`}
</section>`;
  }

  const show = async (reply: FastifyReply, u: PageUser, status: number, opts: RenderOptions = {}) =>
    sendPage(reply, status, 'Security', await render(u, opts), { wide: true, nav: signedInNav(u), scripts: ['/assets/passkey.js'] });

  /** Every post: a signed-in session, then the CSRF check, then the action. */
  async function guarded(req: FastifyRequest, reply: FastifyReply, act: (u: PageUser) => Promise<FastifyReply>): Promise<FastifyReply> {
    noStore(reply);
    const u = await pageUser(s, req);
    if (!u) return seeOther(reply, '/login?next=%2Fsecurity');
    if (!csrfOk(req, s.config.publicUrl, u.csrf, (req.body as { csrf?: unknown } | undefined)?.csrf)) return csrfRefused(reply, '/security');
    return act(u);
  }

  const statusOf = (e: AppError) => (e.code === 'rate_limited' ? 429 : e.status);
  const withHeaders = (reply: FastifyReply, e: AppError) => {
    for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
  };
  const reauthMessage = (e: AppError) =>
    (e.extra as { reason?: string } | undefined)?.reason === 'reauthentication_required' ? 'Enter your password to confirm it is you.' : e.code === 'rate_limited' ? 'Too many attempts. Wait a few minutes, then try again.' : (e.detail ?? 'That did not work.');

  app.get('/security', {
    schema: { tags: ['pages'], summary: 'Page: my security settings (sessions, two-step verification, password, notifications, mail we sent)', querystring: Type.Object({ done: Type.Optional(FormString(40)) }, { additionalProperties: false }) },
  }, async (req, reply) => {
    noStore(reply);
    const u = await pageUser(s, req);
    if (!u) return toLogin(reply, req);
    return show(reply, u, 200, { done: req.query.done });
  });

  const Csrf = Type.Optional(FormString(128));

  app.post('/security/sessions/revoke', {
    schema: { tags: ['pages'], summary: 'Page: sign out one of my other devices', body: Type.Object({ csrf: Csrf, id: FormString(64) }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    if (req.body.id === u.session.id) return show(reply, u, 400, { errors: { sessions: 'To sign out this device, use "Sign out".' } });
    const ok = await s.sessions.revoke(u.userId, req.body.id, ctxOf(req), 'user');
    return seeOther(reply, `/security?done=${ok ? 'session_revoked' : 'session_gone'}#devices`);
  }));

  app.post('/security/sessions/revoke-others', {
    schema: { tags: ['pages'], summary: 'Page: sign out every other device', body: Type.Object({ csrf: Csrf }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    await s.sessions.revokeOthers(u.userId, u.session.id, ctxOf(req));
    return seeOther(reply, '/security?done=others_revoked#devices');
  }));

  app.post('/security/password', {
    schema: {
      tags: ['pages'], summary: 'Page: change my password',
      body: Type.Object({ csrf: Csrf, current: FormString(1024), password: FormString(1024), confirm: FormString(1024), signout_others: Type.Optional(FormString(2)) }, { additionalProperties: false }),
    },
  }, (req, reply) => guarded(req, reply, async (u) => {
    const b = req.body;
    if (b.password !== b.confirm) return show(reply, u, 400, { errors: { password: { form: 'The two new passwords do not match.', confirm: 'Type the same new password twice.' } } });
    try {
      await s.mfa.passwords.change(actorOf(u), { current: b.current, password: b.password, revokeOtherSessions: b.signout_others === 'on' }, ctxOf(req));
    } catch (e) {
      if (!isAppError(e)) throw e;
      withHeaders(reply, e);
      if (e.code === 'forbidden') return show(reply, u, 403, { errors: { password: { form: 'Your current password is not right.', current: 'Enter the password you use now.' } } });
      if (e.code === 'weak_password') return show(reply, u, 400, { errors: { password: { form: 'Choose another new password.', password: e.detail ?? 'Choose another password.' } } });
      if (e.code === 'rate_limited') return show(reply, u, 429, { errors: { password: { form: 'Too many attempts. Wait a few minutes, then try again.' } } });
      throw e;
    }
    return seeOther(reply, '/security?done=password_changed#password');
  }));

  const totpSetupPage = (u: PageUser, enrol: { secret: string; qrSvg: string } | null, error: string | null) => html`${error ? notice('error', error) : ''}
${enrol
    ? html`<ol class="steps">
<li>Open your authenticator app (for example Aegis, Google Authenticator, 1Password) and add an account.</li>
<li>Scan this QR code:
<img class="qr" src="data:image/svg+xml;base64,${Buffer.from(enrol.qrSvg).toString('base64')}" width="200" height="200" alt="QR code to add your account to an authenticator app">
<p class="hint">Cannot scan? Enter this key instead: <code class="secret">${enrol.secret.replace(/(.{4})/g, '$1 ').trim()}</code></p></li>
<li>Enter the 6-digit code the app shows.</li>
</ol>`
    : html`<p>Enter the 6-digit code your authenticator app shows for this account. If you no longer see the QR code, <a href="/security#two-step">start again</a>.</p>`}
<form method="post" action="/security/totp/confirm">${csrfField(u.csrf)}
${field({ id: 'code', label: 'Code from the app', type: 'text', inputmode: 'numeric', autocomplete: 'one-time-code', maxlength: 16, error: error ? 'Check the code and the time on your phone.' : null, autofocus: true })}
${recentAuth(u) ? '' : reauthField(u, 'confirm-password')}
<button type="submit">Turn on two-step verification</button>
</form>
<p><a href="/security#two-step">Cancel</a></p>`;

  const codesPage = (u: PageUser, codes: string[], intro: string) => html`${notice('success', intro)}
<p><strong>Save these recovery codes now</strong> (print them or keep them in a password manager). Each works once, in place of a code from the app, if you lose your phone. They will not be shown again.</p>
<ul class="codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
<p><a href="/security#two-step">I saved them: back to my security settings</a></p>`;

  const Reauth = Type.Optional(FormString(1024));
  const passwordOf = (p: string | undefined) => (p ? p : undefined);

  app.post('/security/totp', {
    schema: { tags: ['pages'], summary: 'Page: start setting up an authenticator app (shows the QR code)', body: Type.Object({ csrf: Csrf, password: Reauth }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      const enrol = await s.mfa.factors.startTotp(actorOf(u), { password: passwordOf(req.body.password) }, ctxOf(req));
      return sendPage(reply, 200, 'Set up your authenticator app', totpSetupPage(u, enrol, null), { nav: signedInNav(u) });
    } catch (e) {
      if (!isAppError(e) || !['forbidden', 'conflict', 'rate_limited'].includes(e.code)) throw e;
      withHeaders(reply, e);
      return show(reply, u, statusOf(e), { errors: { mfa: reauthMessage(e) } });
    }
  }));

  app.post('/security/totp/confirm', {
    schema: { tags: ['pages'], summary: 'Page: confirm the authenticator app with a code (shows recovery codes once)', body: Type.Object({ csrf: Csrf, code: FormString(16), password: Reauth }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      const codes = await s.mfa.factors.confirmTotp(actorOf(u), req.body.code, { password: passwordOf(req.body.password) }, ctxOf(req));
      return sendPage(reply, 200, 'Two-step verification is on', codesPage(u, codes, 'Two-step verification is on. From now on, signing in asks for a code from your app.'), { nav: signedInNav(u) });
    } catch (e) {
      if (!isAppError(e)) throw e;
      withHeaders(reply, e);
      if (e.code === 'invalid_token') return sendPage(reply, 400, 'Set up your authenticator app', totpSetupPage(u, null, e.detail ?? 'The code is incorrect.'), { nav: signedInNav(u) });
      if (['forbidden', 'conflict', 'rate_limited'].includes(e.code)) return show(reply, u, statusOf(e), { errors: { mfa: reauthMessage(e) } });
      throw e;
    }
  }));

  app.post('/security/passkeys/remove', {
    schema: { tags: ['pages'], summary: 'Page: remove one of my passkeys', body: Type.Object({ csrf: Csrf, id: FormString(64), password: Reauth }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      await s.mfa.passkeys.remove(actorOf(u), req.body.id, { password: passwordOf(req.body.password) }, ctxOf(req));
    } catch (e) {
      if (!isAppError(e) || !['forbidden', 'not_found', 'rate_limited'].includes(e.code)) throw e;
      withHeaders(reply, e);
      return show(reply, u, statusOf(e), { errors: { passkeys: e.code === 'not_found' ? 'That passkey is already gone.' : reauthMessage(e) } });
    }
    return seeOther(reply, '/security?done=passkey_removed#passkeys');
  }));

  app.post('/security/totp/remove', {
    schema: { tags: ['pages'], summary: 'Page: remove the authenticator app', body: Type.Object({ csrf: Csrf, password: Reauth }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      await s.mfa.factors.removeTotp(actorOf(u), { password: passwordOf(req.body.password) }, ctxOf(req));
    } catch (e) {
      if (!isAppError(e) || !['forbidden', 'not_found', 'rate_limited'].includes(e.code)) throw e;
      withHeaders(reply, e);
      return show(reply, u, statusOf(e), { errors: { mfa: reauthMessage(e) } });
    }
    return seeOther(reply, '/security?done=totp_removed#two-step');
  }));

  app.post('/security/recovery-codes', {
    schema: { tags: ['pages'], summary: 'Page: replace my recovery codes (shows them once)', body: Type.Object({ csrf: Csrf, password: Reauth }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      const codes = await s.mfa.factors.regenerateRecoveryCodes(actorOf(u), { password: passwordOf(req.body.password) }, ctxOf(req));
      return sendPage(reply, 200, 'New recovery codes', codesPage(u, codes, 'Your new recovery codes are ready; the old ones no longer work.'), { nav: signedInNav(u) });
    } catch (e) {
      if (!isAppError(e) || !['forbidden', 'conflict', 'rate_limited'].includes(e.code)) throw e;
      withHeaders(reply, e);
      return show(reply, u, statusOf(e), { errors: { mfa: reauthMessage(e) } });
    }
  }));

  app.post('/security/prompts/answer', {
    schema: {
      tags: ['pages'], summary: 'Page: answer "someone asked to reset your password — was it you?"',
      body: Type.Object({ csrf: Csrf, id: FormString(64), answer: Type.Union([Type.Literal('yes'), Type.Literal('no')]) }, { additionalProperties: false }),
    },
  }, (req, reply) => guarded(req, reply, async (u) => {
    try {
      // The same service call as the API: one answer per prompt, taken and acted on in one transaction.
      await s.recovery.answerPrompt(u.userId, req.body.id, req.body.answer, ctxOf(req));
    } catch (e) {
      // A second post, or another account's prompt id, changes nothing.
      if (isAppError(e) && (e.code === 'not_found' || e.code === 'conflict')) return seeOther(reply, '/security?done=prompt_gone');
      throw e;
    }
    return seeOther(reply, `/security?done=prompt_${req.body.answer}`);
  }));

  app.post('/security/notifications/read', {
    schema: { tags: ['pages'], summary: 'Page: mark one of my notifications read', body: Type.Object({ csrf: Csrf, id: FormString(64) }, { additionalProperties: false }) },
  }, (req, reply) => guarded(req, reply, async (u) => {
    await inboxStore.markRead(db, u.userId, req.body.id, s.clock.now());
    return seeOther(reply, '/security?done=read#notifications');
  }));
}
