/**
 * What the recovery flow needs from elsewhere, declared here (the module that needs a port owns
 * it): how a secret is minted and delivered (strategy), and whether a request should also leave
 * a prompt on the account's signed-in devices (secondary confirmation, the guard's call).
 */
import type { Cause, RequestContext } from '../../kernel/context.js';
import { MINUTE } from '../../kernel/clock.js';
import { mintToken, parseToken, secretMatches } from '../../kernel/crypto.js';
import type { Db } from '../../storage/schema.js';
import type { OutboundMessage } from '../notifications/index.js';
import type { FlowStrategy, RecoveryFlow } from './flow.js';

export interface MintedSecret {
  /** Looks the flow up; not secret. */
  id: string;
  /** What is stored: a hash of the secret. */
  hash: string;
  /** What the person receives, whole (never stored). */
  token: string;
}

/** How a flow's secret is made, checked and handed to the person. */
export interface RecoveryStrategy {
  readonly name: FlowStrategy;
  mint(): MintedSecret;
  /** Split what the person presents into lookup id and secret, or null when malformed. */
  parse(presented: unknown): { id: string; secret: string } | null;
  /** Constant-time check of a presented secret against the stored hash. */
  matches(secret: string, hash: string): boolean;
  /** The message that delivers a freshly issued flow (the deny token always travels as a link). */
  delivery(args: { flow: RecoveryFlow; email: string; token: string; denyToken: string; publicUrl: string; cause: Cause }): OutboundMessage;
}

/** A 256-bit token in a link to the configured public origin; nothing from the request goes into it. */
export const linkStrategy: RecoveryStrategy = {
  name: 'link',
  mint() {
    const t = mintToken();
    return { id: t.id, hash: t.secretHash, token: t.token };
  },
  parse: (presented) => parseToken(presented),
  matches: (secret, hash) => secretMatches(secret, hash),
  delivery({ flow, email, token, denyToken, publicUrl, cause }) {
    return {
      type: 'password_reset',
      channel: 'email',
      userId: flow.userId,
      recipient: email,
      cause,
      data: { email, expiresInMinutes: Math.round((flow.expiresAt - flow.issuedAt) / MINUTE) },
      // Sealed at rest by the outbox and wiped once delivered: the raw token never rests in clear.
      secret: {
        resetLink: `${publicUrl}/reset?token=${encodeURIComponent(token)}`,
        denyLink: `${publicUrl}/reset/deny?token=${encodeURIComponent(denyToken)}`,
      },
      idempotencyKey: `password_reset:${flow.id}`,
    };
  },
};

/**
 * Port: secondary confirmation. When it answers true, issuing a flow also puts a `reset_prompt`
 * into the account's in-app inbox, so a signed-in device sees the request (and can refuse it)
 * before or besides the mail. The guard decides when (e.g. under a reset wave); default: never.
 */
export interface ResetPromptPolicy {
  promptOnIssue(db: Db, userId: string, request: { ip: string | null; at: number }): Promise<boolean>;
}

export const noResetPrompt: ResetPromptPolicy = { promptOnIssue: async () => false };

/**
 * Port: the guard in front of reset requests (the guard module implements it; main wires it).
 * `enter` runs on the request path before anything else and may refuse with 429 or 428 — the
 * same for every email, since it never looks at accounts. `resolved` and `route` run in the
 * intake worker, after the account is known, off the request path.
 */
export interface RecoveryGuard {
  enter(email: string, ctx: RequestContext, altcha: unknown): Promise<{ solved: boolean }>;
  /** Feeds the unknown-email share signal. */
  resolved(known: boolean, at: number): Promise<void>;
  /**
   * What to do with a request for a known account: mail the link; prompt the account's signed-in
   * device instead (secondary confirmation); keep it for an operator (hold); or drop it (the
   * flow is paused by a kill switch).
   */
  route(req: { userId: string; solved: boolean; at: number }): Promise<'mail' | 'prompt' | 'hold' | 'pause'>;
}
