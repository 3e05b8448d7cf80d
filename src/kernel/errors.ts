/**
 * One error tree. Every expected failure is an AppError with a registered code; the HTTP layer
 * renders it as application/problem+json (RFC 9457). The registry is the single list of codes:
 * docs/errors.md documents each one and a test keeps the two in step.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, title: 'The request is not valid' },
  malformed_body: { status: 400, title: 'The request body could not be parsed' },
  body_too_large: { status: 413, title: 'The request body is too large' },
  unsupported_media_type: { status: 415, title: 'Unsupported content type' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  invalid_credentials: { status: 401, title: 'The email or password is incorrect' },
  mfa_required: { status: 401, title: 'A second factor is required' },
  forbidden: { status: 403, title: 'Not allowed' },
  csrf_failed: { status: 403, title: 'Cross-site request refused' },
  weak_password: { status: 400, title: 'The password does not meet the password rules' },
  invalid_token: { status: 400, title: 'The link or code is invalid or has expired' },
  conflict: { status: 409, title: 'The request conflicts with the current state' },
  challenge_required: { status: 428, title: 'A proof-of-work challenge must be solved' },
  rate_limited: { status: 429, title: 'Too many requests' },
  unavailable: { status: 503, title: 'Temporarily unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: string | undefined;
  /** Extra members of the problem document (e.g. `challenge`, `errors`). */
  readonly extra: Record<string, unknown> | undefined;
  /** Extra response headers (e.g. Retry-After). */
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    detail?: string,
    opts: { extra?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    // An expected refusal (4xx) is not a bug: no stack trace to capture. Under a flood every
    // throttled or challenged request throws one, and capturing stacks showed in the profile.
    const limit = Error.stackTraceLimit;
    if (ERROR_CODES[code].status < 500) Error.stackTraceLimit = 0;
    super(detail ?? ERROR_CODES[code].title, opts.cause === undefined ? undefined : { cause: opts.cause });
    Error.stackTraceLimit = limit;
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.detail = detail;
    this.extra = opts.extra;
    this.headers = opts.headers;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
