/**
 * The transactional outbox. Invariants:
 * - every outbound message is a row written with the caller's transaction (`db`), so the message
 *   exists if and only if the state change that caused it committed;
 * - every row records its cause; a message without one is refused (an internal bug looks like that);
 * - the idempotency key (type + account + cause by default) makes a duplicate trigger one message;
 * - secrets (token links) never rest in clear: they are sealed with the SecretBox, bound to the
 *   row id, and wiped once delivered.
 */
import type { Clock } from '../../kernel/clock.js';
import { causeId, causeKind, type Cause } from '../../kernel/context.js';
import type { SecretBox } from '../../kernel/crypto.js';
import { AppError } from '../../kernel/errors.js';
import { newId } from '../../kernel/ids.js';
import type { Db } from '../../storage/schema.js';
import { laneOf, type Channel, type MessageType } from './model.js';

export interface OutboundMessage {
  type: MessageType;
  channel: Channel;
  userId: string | null;
  /** An email address, a user id (inbox) or a webhook URL. */
  recipient: string;
  cause: Cause;
  /** Template data without secrets; stored as JSON. */
  data: Record<string, unknown>;
  /** Secret template data (e.g. links carrying a token); sealed at rest, wiped after delivery. */
  secret?: Record<string, string>;
  /** Defaults to `${type}:${channel}:${userId ?? recipient}:${causeId}`. */
  idempotencyKey?: string;
  /** Initial state: queued (default) or held (with a reason). */
  hold?: string;
}

export interface EnqueueResult {
  id: string;
  duplicate: boolean;
}

/** Told after a row is inserted (inside the caller's transaction: it may still roll back). */
export type EnqueueListener = (e: { id: string; type: MessageType; channel: Channel; held: boolean }) => void;

export class Outbox {
  private readonly listeners: EnqueueListener[] = [];

  constructor(
    private readonly clock: Clock,
    private readonly box: SecretBox,
  ) {}

  /** The courier listens to wake up at once and to count queued messages. */
  onEnqueued(fn: EnqueueListener): void {
    this.listeners.push(fn);
  }

  async enqueue(db: Db, msg: OutboundMessage): Promise<EnqueueResult> {
    if (!msg.cause || !msg.cause.kind || !causeId(msg.cause)) {
      throw new AppError('internal', `refused ${msg.type}: an outbound message must record its cause`);
    }
    const now = this.clock.now();
    const id = newId(now);
    const key = msg.idempotencyKey ?? `${msg.type}:${msg.channel}:${msg.userId ?? msg.recipient}:${causeId(msg.cause)}`;
    const inserted = await db
      .insertInto('outbox')
      .values({
        id,
        type: msg.type,
        channel: msg.channel,
        lane: laneOf(msg.type),
        user_id: msg.userId,
        recipient: msg.recipient,
        idempotency_key: key.slice(0, 300),
        cause_kind: causeKind(msg.cause),
        cause_id: causeId(msg.cause),
        cause_ip: 'ip' in msg.cause ? msg.cause.ip : null,
        payload: JSON.stringify(msg.data),
        sealed: msg.secret ? this.box.seal(JSON.stringify(msg.secret), id) : null,
        state: msg.hold ? 'held' : 'queued',
        held_reason: msg.hold ?? null,
        attempts: 0,
        next_attempt_at: now,
        last_error: null,
        claimed_by: null,
        claimed_until: null,
        created_at: now,
        updated_at: now,
        sent_at: null,
      })
      .onConflict((oc) => oc.column('idempotency_key').doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted) {
      for (const fn of this.listeners) fn({ id: inserted.id, type: msg.type, channel: msg.channel, held: !!msg.hold });
      return { id: inserted.id, duplicate: false };
    }
    const existing = await db.selectFrom('outbox').select('id').where('idempotency_key', '=', key.slice(0, 300)).executeTakeFirstOrThrow();
    return { id: existing.id, duplicate: true };
  }

  /** The sealed secret of a row, or null when absent, wiped or tampered with. */
  openSecret(row: { id: string; sealed: string | null }): Record<string, string> | null {
    if (!row.sealed) return null;
    const clear = this.box.open(row.sealed, row.id);
    return clear === null ? null : (JSON.parse(clear) as Record<string, string>);
  }
}
