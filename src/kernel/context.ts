/** Who and where a request came from, passed down from the HTTP layer (or the CLI) to services. */
export interface RequestContext {
  requestId: string;
  /** Client address: the socket address unless it came through a trusted proxy. */
  ip: string | null;
  userAgent: string | null;
  /**
   * The device cookie as the client sent it (the sessions module's trusted-device sign-ins and
   * new-device notices). A credential of sorts: never logged, never stored as sent.
   */
  device?: string | null;
}

export const CLI_CONTEXT: RequestContext = { requestId: 'cli', ip: null, userAgent: 'floodgate-cli' };

/** What caused an outbound message. A message without a cause is refused (DESIGN: "No send without a cause"). */
export type Cause =
  /** `proof`: the request carried a solved proof-of-work challenge (its cost was the requester's). */
  | { kind: 'anonymous'; requestId: string; ip: string | null; proof?: boolean }
  | { kind: 'user'; userId: string; requestId: string; ip: string | null }
  | { kind: 'operator'; operatorId: string; actionId: string }
  | { kind: 'job'; jobId: string };

/**
 * The kind recorded with a message, which budgets and breakers are kept by. Anonymous requests
 * that paid a proof of work are their own kind, so an unsolved flood that trips the anonymous
 * breaker does not hold the mail of people who solved their challenge.
 */
export function causeKind(c: Cause): string {
  return c.kind === 'anonymous' && c.proof ? 'anonymous_pow' : c.kind;
}

export function causeId(c: Cause): string {
  switch (c.kind) {
    case 'anonymous':
    case 'user':
      return c.requestId;
    case 'operator':
      return `${c.operatorId}:${c.actionId}`;
    case 'job':
      return c.jobId;
  }
}
