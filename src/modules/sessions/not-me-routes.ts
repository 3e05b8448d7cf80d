/**
 * "This wasn't me" over HTTP: the link in a new-sign-in notice (a page) and its JSON twin.
 * Invariants:
 * - GET /signin/not-me only shows what would happen and a button (mail scanners and link previews
 *   open links); only the POST from that page acts;
 * - token pages are never cached and never leak their URL through Referer (no-store, no-referrer);
 * - the form carries no session (the person reading the mail may be signed out), so it has no CSRF
 *   token, but a post from another site is refused (Origin / Sec-Fetch-Site); the API refuses
 *   cross-site browser requests the same way.
 */
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { ctxOf, noStore } from '../../http/context.js';
import { problems, Token } from '../../http/schemas.js';
import { sameOrigin } from '../../http/auth.js';
import { AppError, isAppError } from '../../kernel/errors.js';
import type { Services } from '../../services.js';
import { html, notice, sendPage } from '../../web/layout.js';

const FormString = (maxLength: number) => Type.String({ maxLength });
const htmlResponse = (statuses: number[]) => Object.fromEntries(statuses.map((st) => [st, { description: 'An HTML page', content: { 'text/html': { schema: Type.String() } } }]));
const when = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';

function badLink(reply: FastifyReply): FastifyReply {
  return sendPage(reply, 400, 'This link cannot be used', html`${notice('error', 'This link is invalid, was already used, or has expired (it works for 7 days).')}
<p>If someone else is using your account, <a href="/forgot">choose a new password</a>: that signs every device out. You can also review your devices in your <a href="/security">security settings</a>.</p>`);
}

export async function notMeRoutes(app: App, s: Services): Promise<void> {
  const tags = ['sessions'];

  app.get('/signin/not-me', {
    schema: { tags, summary: 'Page: "this wasn\'t me" link of a new-sign-in notice (shows a button; changes nothing)', querystring: Type.Object({ token: Type.Optional(FormString(200)) }, { additionalProperties: false }), response: htmlResponse([200, 400]) },
  }, async (req, reply) => {
    noStore(reply);
    const token = req.query.token ?? '';
    const seen = await s.notMe.peek(token);
    if (!seen) return badLink(reply);
    return sendPage(reply, 200, 'Was this you?', html`<p>Your account was signed in to on ${when(seen.at)} from ${seen.device}${seen.ip ? html` (address ${seen.ip})` : ''}.</p>
<p>If it was not you, sign that device out now. We will also send you a link to choose a new password, since whoever signed in knows your current one.</p>
<form method="post" action="/signin/not-me">
<input type="hidden" name="token" value="${token}">
<button type="submit">It wasn't me: sign that device out</button>
</form>
<p class="hint">If it was you, you can close this page: nothing changes.</p>`);
  });

  app.post('/signin/not-me', {
    schema: { tags, summary: 'Page: sign the reported device out and start a password reset (form post)', body: Type.Object({ token: FormString(200) }, { additionalProperties: false }), response: htmlResponse([200, 400, 403, 429]) },
  }, async (req, reply) => {
    noStore(reply);
    if (!sameOrigin(req, s.config.publicUrl)) {
      return sendPage(reply, 403, 'Request refused', html`${notice('error', 'This form must be sent from this site. Nothing was changed.')}
<p>Open the link from the email again and retry.</p>`);
    }
    let revoked: boolean;
    try {
      ({ revoked } = await s.notMe.report(req.body.token, ctxOf(req)));
    } catch (e) {
      if (!isAppError(e)) throw e;
      if (e.code === 'invalid_token') return badLink(reply);
      if (e.code === 'rate_limited') {
        for (const [k, v] of Object.entries(e.headers ?? {})) reply.header(k, v);
        return sendPage(reply, 429, 'Too many requests', html`${notice('error', 'Too many requests came from your network. Wait a minute, then open the link again.')}`);
      }
      throw e;
    }
    return sendPage(reply, 200, 'Device signed out', html`${notice('success', revoked ? 'We signed that device out and sent you a link to choose a new password.' : 'That device was already signed out. We sent you a link to choose a new password.')}
<p>The link works for ${Math.round(s.recovery.limits.tokenTtlMs / 60_000)} minutes and only once. Choosing a new password signs every other device out too.</p>
<p>Then review your devices and turn on two-step verification in your <a href="/security">security settings</a>.</p>`);
  });

  app.post('/api/v1/sessions/not-me', {
    schema: {
      tags, summary: '"This wasn\'t me": revoke the session a new-sign-in notice reported and start a password reset',
      description:
        'Takes the token of the "this wasn\'t me" link (`/signin/not-me?token=…`) from a new-sign-in notice. 204: that one session ' +
        'is revoked, the report is recorded, and a password reset link is mailed to the owner (a quiet period after "I didn\'t request ' +
        'this" does not apply: the owner asked). The token works once, for 7 days. One generic 400 `invalid_token` otherwise.',
      body: Type.Object({ token: Token }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 403, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    // No browser may make another site's page fire this.
    if (!sameOrigin(req, s.config.publicUrl)) throw new AppError('csrf_failed', 'This request must come from this site.');
    await s.notMe.report(req.body.token, ctxOf(req));
    return reply.code(204).send(null);
  });
}
