/**
 * CSRF protection for every cookie-authenticated form, written once. Invariants:
 * - a form post acts only when BOTH hold: the browser says it comes from our own origin (Origin /
 *   Sec-Fetch-Site, `sameOrigin`), and it carries the session's CSRF token in a hidden field;
 * - the token is HMAC(FLOODGATE_SECRET_KEY, 'csrf:' + session id): nothing to store, it dies with
 *   the session, and another session's token is useless; it is compared in constant time;
 * - console sessions derive theirs with a different label, so a person's token never passes the
 *   console (and the reverse).
 * Forms that carry no session (sign-in, sign-up, forgot, reset, verify) check the origin only:
 * there is no session to bind a token to, and the origin check alone stops a foreign page.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sameOrigin } from '../http/auth.js';
import { constantTimeEqual, hmacSha256Hex } from '../kernel/crypto.js';
import { html, notice, sendPage, type SafeHtml } from './layout.js';

export const CSRF_FIELD = 'csrf';

export type CsrfScope = 'user' | 'console';

export function csrfToken(key: Buffer, sessionId: string, scope: CsrfScope = 'user'): string {
  return hmacSha256Hex(key, scope === 'user' ? `csrf:${sessionId}` : `csrf:console:${sessionId}`);
}

/** The hidden field every cookie-authenticated form carries. */
export function csrfField(token: string): SafeHtml {
  return html`<input type="hidden" name="${CSRF_FIELD}" value="${token}">`;
}

/** Whether a cookie-authenticated post may act: same origin AND the right token. */
export function csrfOk(req: FastifyRequest, publicUrl: string, expected: string, submitted: unknown): boolean {
  // Both checks, always: a page on a sibling subdomain passes neither, an old browser without
  // Origin headers still needs the token, and a leaked token alone does not work cross-site.
  if (!sameOrigin(req, publicUrl)) return false;
  return typeof submitted === 'string' && constantTimeEqual(submitted, expected);
}

/** The answer to a refused post: 403, nothing done, a way back. */
export function csrfRefused(reply: FastifyReply, back: string): FastifyReply {
  return sendPage(reply, 403, 'Request refused', html`${notice('error', 'This form could not be verified: it must be sent from this site, from a page opened in this session. Nothing was changed.')}
<p><a href="${back}">Open the page again</a> and retry.</p>`);
}

/** Anonymous forms: the origin check alone (see the invariants). */
export function crossSiteRefused(reply: FastifyReply, back: string): FastifyReply {
  return sendPage(reply, 403, 'Request refused', html`${notice('error', 'This form must be sent from this site. Nothing was changed.')}
<p><a href="${back}">Open the page again</a> and retry.</p>`);
}
