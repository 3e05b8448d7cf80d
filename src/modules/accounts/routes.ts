import { Readable } from 'node:stream';
import { createInterface } from 'node:readline';
import { Type } from 'typebox';
import type { App } from '../../http/app.js';
import { requireOperator, requireUser } from '../../http/auth.js';
import { ctxOf } from '../../http/context.js';
import { Accepted, Altcha, Email, Password, problems, Token } from '../../http/schemas.js';
import { normalizeEmail } from '../../kernel/email.js';
import { AppError } from '../../kernel/errors.js';
import type { Services } from '../../services.js';

const MAX_IMPORT_BYTES = 512 * 1024 * 1024;

export async function accountsRoutes(app: App, s: Services): Promise<void> {
  app.post('/api/v1/accounts', {
    schema: {
      tags: ['accounts'], summary: 'Sign up',
      description: 'Always 202 with the same body whether or not the email exists. A new address gets a verification mail; the owner of an existing one gets a notice instead.',
      body: Type.Object({ email: Email, password: Password, altcha: Type.Optional(Altcha) }, { additionalProperties: false }),
      response: { 202: Accepted, ...problems(400, 428, 429) },
    },
  }, async (req, reply) => {
    const ctx = ctxOf(req);
    await s.guard.enforce('signup', { ip: ctx.ip, target: normalizeEmail(req.body.email), altcha: req.body.altcha });
    s.metrics.signUps.inc();
    await s.accounts.signUp(req.body.email, req.body.password, ctx);
    return reply.code(202).send({ status: 'accepted' });
  });

  app.post('/api/v1/accounts/verify', {
    schema: {
      tags: ['accounts'], summary: 'Verify an email address with the token from the mail',
      body: Type.Object({ token: Token }, { additionalProperties: false }),
      response: { 204: Type.Null(), ...problems(400) },
    },
  }, async (req, reply) => {
    if (!(await s.accounts.verifyEmail(req.body.token, ctxOf(req)))) throw new AppError('invalid_token', 'This link is invalid, was already used, or has expired.');
    return reply.code(204).send(null);
  });

  app.post('/api/v1/accounts/verify/resend', {
    schema: {
      tags: ['accounts'], summary: 'Send the verification mail again',
      description: 'Always 202; mails only unverified accounts, and not again while a recent token is live.',
      body: Type.Object({ email: Email, altcha: Type.Optional(Altcha) }, { additionalProperties: false }),
      response: { 202: Accepted, ...problems(400, 428, 429) },
    },
  }, async (req, reply) => {
    const ctx = ctxOf(req);
    await s.guard.enforce('verify_resend', { ip: ctx.ip, target: normalizeEmail(req.body.email), altcha: req.body.altcha });
    await s.accounts.resendVerification(req.body.email, ctx);
    return reply.code(202).send({ status: 'accepted' });
  });

  app.get('/api/v1/me', {
    schema: {
      tags: ['me'], summary: 'The signed-in account', security: [{ session: [] }],
      response: { 200: Type.Object({ id: Type.String(), email: Type.String(), emailVerified: Type.Boolean(), createdAt: Type.String() }), ...problems(401) },
    },
  }, async (req) => {
    const p = await requireUser(s, req);
    const u = await s.accounts.findById(p.userId);
    if (!u) throw new AppError('unauthenticated');
    return { id: u.id, email: u.email, emailVerified: u.email_verified_at !== null, createdAt: new Date(Number(u.created_at)).toISOString() };
  });

  const NewUser = Type.Object(
    {
      email: Email,
      password: Type.Optional(Password),
      passwordHash: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: 'argon2 PHC, bcrypt ($2a$/$2b$/$2y$) or scrypt PHC, with costs within the bounds of docs/security.md (bcrypt 4-12, scrypt N <= 2^17 and 128 MiB, argon2 m <= 128 MiB); upgraded to argon2id on next sign-in' })),
      emailVerified: Type.Optional(Type.Boolean({ description: 'true: the operator vouches for the address. Otherwise the account cannot sign in until its owner proves the mailbox (the confirmation link, or a password reset).' })),
    },
    { additionalProperties: false },
  );

  app.post('/api/v1/admin/users', {
    schema: {
      tags: ['admin'], summary: 'Create one user', security: [{ operator: [] }],
      body: NewUser,
      response: { 201: Type.Object({ id: Type.String(), email: Type.String() }), ...problems(400, 401, 409) },
    },
  }, async (req, reply) => {
    const op = await requireOperator(s, req);
    const u = await s.accounts.createByOperator(req.body, ctxOf(req), op.id);
    return reply.code(201).send(u);
  });

  app.post('/api/v1/admin/users/import', {
    schema: {
      tags: ['admin'], summary: 'Import users (NDJSON, streamed)',
      description: 'Content-Type: application/x-ndjson, one JSON object per line with the fields of POST /api/v1/admin/users. Each line is written whole or reported with its line number.',
      security: [{ operator: [] }],
      response: {
        200: Type.Object({ imported: Type.Integer(), failed: Type.Integer(), lines: Type.Integer(), errors: Type.Array(Type.Object({ line: Type.Integer(), error: Type.String() })) }),
        ...problems(400, 401, 413, 415),
      },
    },
  }, async (req) => {
    const op = await requireOperator(s, req);
    if (!(req.body instanceof Readable)) throw new AppError('unsupported_media_type', 'Send the users as application/x-ndjson.');
    const body = req.body;
    let bytes = 0;
    body.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > MAX_IMPORT_BYTES) body.destroy(new AppError('body_too_large', `Imports are limited to ${MAX_IMPORT_BYTES} bytes per request.`));
    });
    const rl = createInterface({ input: body, crlfDelay: Infinity });
    return s.accounts.importLines(rl, ctxOf(req), op.id);
  });
}
