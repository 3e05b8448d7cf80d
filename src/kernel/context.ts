/** Who and where a request came from, passed down from the HTTP layer (or the CLI) to services. */
export interface RequestContext {
  requestId: string;
  /** Client address: the socket address unless it came through a trusted proxy. */
  ip: string | null;
  userAgent: string | null;
}

export const CLI_CONTEXT: RequestContext = { requestId: 'cli', ip: null, userAgent: 'floodgate-cli' };

/** What caused an outbound message. A message without a cause is refused (DESIGN: "No send without a cause"). */
export type Cause =
  | { kind: 'anonymous'; requestId: string; ip: string | null }
  | { kind: 'user'; userId: string; requestId: string; ip: string | null }
  | { kind: 'operator'; operatorId: string; actionId: string }
  | { kind: 'job'; jobId: string };

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
