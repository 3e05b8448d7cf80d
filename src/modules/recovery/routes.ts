/** The password-reset JSON API (tag `recovery`). The hosted pages are in pages.ts. */
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { authenticateUser, requireUser, sameOrigin } from '../../http/auth.js';
import { ctxOf, noStore } from '../../http/context.js';
import { Accepted, Altcha, Email, Password, problems, Token } from '../../http/schemas.js';
import { AppError } from '../../kernel/errors.js';
import { sendProblem } from '../../http/problem.js';
import type { Services } from '../../services.js';

export const Otp = Type.String({ minLength: 1, maxLength: 64, description: 'A code from the authenticator app, or a recovery code (only when the account uses two-step verification)' });

/**
 * No browser may make another site's page fire these (a hidden form would otherwise turn every
 * visitor into a fresh source address). Non-browser clients send neither header and pass.
 */
export function refuseCrossSite(s: Services, req: FastifyRequest): void {
  if (!sameOrigin(req, s.config.publicUrl)) throw new AppError('csrf_failed', 'This request must come from this site.');
}

/** The signed-in account making the request, if it presents a live session (never required). */
export async function requesterOf(s: Services, req: FastifyRequest): Promise<string | null> {
  if (!req.headers.authorization && !req.headers.cookie) return null;
  const p = await authenticateUser(s, req);
  return p ? p.userId : null;
}

export async function recoveryRoutes(app: App, s: Services): Promise<void> {
  app.post('/api/v1/password-resets', {
    schema: {
      tags: ['recovery'], summary: 'Ask for a password reset link',
      description:
        'Always 202 `{"status":"accepted"}`, identical in body, headers and timing whether or not the email belongs to an account: ' +
        'the request is written down and decided afterwards. A known account gets at most a few mails a day, with growing gaps; ' +
        'while a link is live no new one is sent at once. 429 with Retry-After only for per-source throttling, the same for every email.',
      body: Type.Object({ email: Email, altcha: Type.Optional(Altcha) }, { additionalProperties: false }),
      response: { 202: Accepted, ...problems(400, 403, 428, 429) },
    },
  }, async (req, reply) => {
    refuseCrossSite(s, req);
    try {
      await s.recovery.request(req.body.email, ctxOf(req), await requesterOf(s, req), req.body.altcha);
    } catch (e) {
      // Under a flood nearly every answer is a 428 or a 429: the same problem document, sent from
      // here rather than through Fastify's error path (a rejected promise, the error-handler chain).
      if (e instanceof AppError) return sendProblem(reply, req, e);
      throw e;
    }
    return reply.code(202).send({ status: 'accepted' });
  });

  app.post('/api/v1/password-resets/confirm', {
    schema: {
      tags: ['recovery'], summary: 'Set a new password with the token from the reset link',
      description:
        '204 on success: the password is set, every session is signed out, other reset links die and a password-changed notice is sent. ' +
        'One generic 400 `invalid_token` for a bad, used, expired, superseded or denied token; 400 `weak_password` names the rule. ' +
        'When the account uses two-step verification, 401 `mfa_required` (the token stays valid): repeat with `otp`.',
      body: Type.Object({ token: Token, password: Password, otp: Type.Optional(Otp) }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    refuseCrossSite(s, req);
    await s.recovery.confirm(req.body, ctxOf(req));
    return reply.code(204).send(null);
  });

  app.post('/api/v1/password-resets/deny', {
    schema: {
      tags: ['recovery'], summary: '"I didn\'t request this": cancel a reset link and report it',
      description:
        'Takes the token of the deny link from the reset mail. Kills the reset link (and any other live one), records the report, ' +
        'and keeps reset mail to the account quiet for FLOODGATE_RESET_DENY_QUIET (unless the owner, signed in, asks). ' +
        'One generic 400 `invalid_token` for a bad deny token.',
      body: Type.Object({ token: Token }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 403, 429) },
    },
  }, async (req, reply) => {
    noStore(reply);
    refuseCrossSite(s, req);
    await s.recovery.deny(req.body.token, ctxOf(req));
    return reply.code(204).send(null);
  });

  app.post('/api/v1/me/reset-prompts/answer', {
    schema: {
      tags: ['recovery'], summary: 'Answer the in-app "someone asked to reset your password — was it you?" prompt',
      description:
        '`promptId` is the `id` of the prompt\'s entry in GET /api/v1/me/notifications (`type` `reset_prompt`, `readAt` null while unanswered). ' +
        '`yes` mails the reset link now; `no` kills live reset links, records the report and quiets reset mail for a while. ' +
        'Each prompt is answered once: 404 `not_found` when no prompt of yours has this id, 409 `conflict` when it was already answered; either way nothing changes.',
      security: [{ session: [] }],
      body: Type.Object({
        promptId: Type.String({ minLength: 1, maxLength: 64, description: 'The id of the reset_prompt notification being answered' }),
        answer: Type.Union([Type.Literal('yes'), Type.Literal('no')]),
      }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400, 401, 403, 404, 409) },
    },
  }, async (req, reply) => {
    const p = await requireUser(s, req);
    await s.recovery.answerPrompt(p.userId, req.body.promptId, req.body.answer, ctxOf(req));
    return reply.code(204).send(null);
  });
}
