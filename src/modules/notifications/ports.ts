/** Ports of the courier: what it asks before sending, and where it sends. */
import type { OutboxTable } from '../../storage/schema.js';
import type { Channel as ChannelName } from './model.js';
import type { Rendered } from './templates.js';

/**
 * An outbox row as the courier's collaborators see it: everything but the sealed secret, which
 * only the courier opens, just before rendering. `attempts` counts the attempts made before this
 * one (0 on the first), although the stored column already counts the one in progress.
 */
export type DeliveryRow = Readonly<Omit<OutboxTable, 'sealed'>>;

/**
 * send: go ahead. hold: keep the row in state 'held' with the reason, for an operator.
 * reroute: deliver through another channel instead (e.g. a kill switch folds email into the
 * in-app inbox); a message that cannot be rendered for that channel (it needs its secret link) is
 * held instead, never dropped.
 */
export type GateDecision =
  | { action: 'send' }
  | { action: 'hold'; reason: string }
  | { action: 'reroute'; channel: ChannelName; reason: string };

/**
 * Asked for every row just before it is sent. The guard implements breakers with it: a held row
 * gets state 'held' with the reason and waits for an operator (released or discarded, never
 * dropped). `decide` must not throw for a normal "no"; a throw is treated as a transient failure
 * and the row is retried with backoff.
 */
export interface DeliveryGate {
  decide(row: DeliveryRow): GateDecision | Promise<GateDecision>;
}

export const allowAllGate: DeliveryGate = { decide: () => ({ action: 'send' }) };

/**
 * What a channel's failure means for the row. `retry`: transient (backoff, then dead letter after
 * N attempts); `fail`: permanent (dead letter now); `hold`: not safe to send as is (e.g. mail that
 * could not be DKIM-signed), kept for an operator.
 */
export type FailureDisposition = 'retry' | 'fail' | 'hold';

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly disposition: FailureDisposition,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }
}

/** A delivery channel (smtp, dev mailbox, in-app inbox, webhook). */
export interface Channel {
  readonly name: string;
  /**
   * Deliver one rendered message. Resolves once the far side accepted it; throws a DeliveryError
   * (or any error, read as transient) otherwise. Must not put secrets in error messages.
   */
  send(rendered: Rendered, row: DeliveryRow): Promise<void>;
  /** Release pooled connections. */
  close?(): Promise<void>;
}
