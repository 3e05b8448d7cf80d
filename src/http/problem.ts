/**
 * Rendering of every error as application/problem+json (RFC 9457). Only this file knows HTTP
 * shapes of errors; services throw AppError. Unknown errors are logged and answered with a
 * generic 500 that reveals nothing.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CODES, type ErrorCode } from '../kernel/errors.js';
import { isDatabaseUnavailable } from '../storage/unavailable.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: ErrorCode;
  detail?: string;
  instance?: string;
  requestId?: string;
  [k: string]: unknown;
}

export function problemOf(err: AppError, req: FastifyRequest): Problem {
  const p: Problem = {
    type: `urn:floodgate:problem:${err.code}`,
    title: ERROR_CODES[err.code].title,
    status: err.status,
    code: err.code,
    ...(err.detail ? { detail: err.detail } : {}),
    ...(err.extra ?? {}),
  };
  p.instance = req.url.split('?')[0]!.slice(0, 200);
  p.requestId = req.id;
  return p;
}

export function sendProblem(reply: FastifyReply, req: FastifyRequest, err: AppError): FastifyReply {
  if (err.headers) for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.code(err.status).type('application/problem+json').send(problemOf(err, req));
}

/** Map framework and parser errors to AppErrors. */
export function toAppError(e: unknown): AppError | null {
  if (e instanceof AppError) return e;
  const fe = e as FastifyError & { validation?: { instancePath?: string; message?: string; params?: Record<string, unknown> }[]; validationContext?: string };
  if (fe && Array.isArray(fe.validation)) {
    const errors = fe.validation.slice(0, 10).map((v) => ({
      field: (v.instancePath || '').replace(/^\//, '').replace(/\//g, '.') || (v.params && 'missingProperty' in v.params ? String(v.params.missingProperty) : v.params && 'additionalProperty' in v.params ? String(v.params.additionalProperty) : fe.validationContext ?? 'body'),
      message: v.message ?? 'invalid',
    }));
    return new AppError('invalid_request', `The ${fe.validationContext ?? 'request'} is not valid: ${errors.map((x) => `${x.field} ${x.message}`).join('; ')}`.slice(0, 500), { extra: { errors } });
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('malformed_body', 'The body is not valid JSON.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('body_too_large', 'The request body is larger than this endpoint accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new AppError('unsupported_media_type', 'Send application/json.');
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new AppError('unsupported_media_type', 'Send application/json with a Content-Type header.');
    case 'FST_ERR_BAD_URL':
    case 'FST_ERR_ASYNC_CONSTRAINT':
      return new AppError('invalid_request', 'The URL is not valid.');
  }
  if (e instanceof SyntaxError) return new AppError('malformed_body', 'The body could not be parsed.');
  // The database is restarting, failing over or unreachable: a clear, retryable answer, not a 500.
  if (isDatabaseUnavailable(e)) return new AppError('unavailable', 'The service cannot reach its database right now. Try again in a few seconds.', { headers: { 'retry-after': '5' } });
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 0;
  if (status === 413) return new AppError('body_too_large');
  if (status === 415) return new AppError('unsupported_media_type');
  if (status >= 400 && status < 500) return new AppError('invalid_request', 'The request is not valid.');
  return null;
}
