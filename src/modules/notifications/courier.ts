/**
 * The courier: claims due outbox rows in batches and delivers each through its channel.
 * Invariants:
 * - nothing queued is lost: a row leaves the outbox only as 'sent', 'failed' (dead letter, with
 *   last_error), 'held' (waiting for an operator) or 'discarded' (by an operator); a worker that
 *   dies mid-batch leaves rows in 'sending' whose lease runs out, and any worker takes them again,
 *   so a crash between send and record resends at most once;
 * - no send without a cause: a row without cause_kind/cause_id is refused (failed, logged as an
 *   error), because that is what an internal bug looks like;
 * - the priority lane is claimed first and delivered first in every batch (see store.claimBatch);
 * - the gate (the guard's breakers) is asked before every send; a "hold" keeps the row, never drops it;
 * - the sealed secret is opened only for email, just before rendering, and wiped once the row is final;
 * - failures retry with exponential backoff and full jitter, then dead-letter after maxAttempts;
 * - time comes from the injected clock; tests call pollOnce()/drain() instead of running timers.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { HOUR, SECOND, type Clock } from '../../kernel/clock.js';
import { maskEmail } from '../../kernel/email.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { DialectName } from '../../storage/database.js';
import type { Database } from '../../storage/schema.js';
import type { BackgroundWorker } from '../../services.js';
import type { Channel as ChannelName } from './model.js';
import type { Outbox } from './outbox.js';
import { allowAllGate, DeliveryError, type Channel, type DeliveryGate, type DeliveryRow, type FailureDisposition } from './ports.js';
import { courierStore, NON_FINAL_STATES, type HeldFilter, type Outcome, type OutboxRow } from './store.js';
import { renderMessage, TemplateError, type Rendered } from './templates.js';

export interface CourierOptions {
  db: Kysely<Database>;
  dialect: DialectName;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  outbox: Outbox;
  publicUrl: string;
  /** Channel per row channel: 'email' (smtp or dev mailbox), 'inbox', 'webhook'. */
  channels: Partial<Record<ChannelName, Channel>>;
  gate?: DeliveryGate;
  /** Rows claimed per poll (default 50; the priority lane may add to it, see claimBatch). */
  batchSize?: number;
  /** Rows of a batch in flight at once (default 8). */
  concurrency?: number;
  /** How long a claim is exclusive (default 5 min). A longer batch gives its remaining rows back. */
  leaseMs?: number;
  /** Idle poll period (default 200 ms); an in-process enqueue wakes the courier at once. */
  pollIntervalMs?: number;
  /** Attempts before the dead letter (default 8). */
  maxAttempts?: number;
  /** Backoff before retry n: uniform in [0, min(cap, base * 2^(n-1))] (default 30 s, cap 1 h). */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Jitter source (tests make it deterministic). */
  random?: () => number;
  workerId?: string;
}

/** Full jitter (AWS architecture blog): spreads retries of a burst instead of synchronising them. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.max(Math.min(SECOND, ceiling), Math.floor(random() * ceiling));
}

async function eachLimited<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(lanes);
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).replace(/\s+/g, ' ').slice(0, 500);

export class Courier implements BackgroundWorker {
  readonly name = 'courier';
  readonly workerId: string;
  private readonly gate: DeliveryGate;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly pollIntervalMs: number;
  readonly maxAttempts: number;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;
  private running = false;
  private loop: Promise<void> | null = null;
  private woken = false;
  private wakeSleeper: (() => void) | null = null;

  constructor(private readonly o: CourierOptions) {
    this.workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.gate = o.gate ?? allowAllGate;
    this.batchSize = o.batchSize ?? 50;
    this.concurrency = o.concurrency ?? 8;
    this.leaseMs = o.leaseMs ?? 5 * 60 * SECOND;
    this.pollIntervalMs = o.pollIntervalMs ?? 200;
    this.maxAttempts = o.maxAttempts ?? 8;
    this.baseMs = o.backoffBaseMs ?? 30 * SECOND;
    this.capMs = o.backoffCapMs ?? HOUR;
    this.random = o.random ?? Math.random;
    o.outbox.onEnqueued(() => this.wake());
  }

  // ---- worker lifecycle ----------------------------------------------------------------------

  start(): void {
    if (this.loop) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Finish the current batch, then stop and close the channels' connections. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    if (this.loop) await this.loop;
    this.loop = null;
    await Promise.all(Object.values(this.o.channels).map((c) => c?.close?.().catch(() => undefined)));
  }

  /** Poll now instead of at the next tick (an in-process enqueue calls it). */
  wake(): void {
    if (this.wakeSleeper) this.wakeSleeper();
    else this.woken = true;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.woken || !this.running) {
        this.woken = false;
        return resolve();
      }
      const done = () => {
        clearTimeout(timer);
        this.wakeSleeper = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeSleeper = done;
    });
  }

  private async run(): Promise<void> {
    let errors = 0;
    while (this.running) {
      let n = 0;
      try {
        n = await this.pollOnce();
        errors = 0;
      } catch (e) {
        errors++;
        this.o.logger.error({ err: e, worker: this.workerId }, 'courier poll failed; retrying');
        await this.sleep(Math.min(30 * SECOND, SECOND * 2 ** Math.min(errors, 5)));
        continue;
      }
      if (n === 0) await this.sleep(this.pollIntervalMs);
    }
  }

  // ---- one poll --------------------------------------------------------------------------------

  /** Claim one batch and deliver it (priority rows first). Returns the number of rows claimed. */
  async pollOnce(): Promise<number> {
    const rows = await courierStore.claimBatch(this.o.db, this.o.dialect, this.batchSize, { now: this.o.clock.now(), worker: this.workerId, leaseMs: this.leaseMs });
    await this.updateGauges().catch((e) => this.o.logger.warn({ err: e }, 'outbox gauges not updated'));
    if (!rows.length) return 0;
    // Priority rows go out before any normal row of the batch starts.
    await eachLimited(rows.filter((r) => r.lane === 'priority'), this.concurrency, (r) => this.deliverSafely(r));
    await eachLimited(rows.filter((r) => r.lane !== 'priority'), this.concurrency, (r) => this.deliverSafely(r));
    return rows.length;
  }

  /** Poll until nothing is due. Returns the number of rows handled. */
  async drain(maxPolls = 100_000): Promise<number> {
    let total = 0;
    for (let i = 0; i < maxPolls; i++) {
      const n = await this.pollOnce();
      if (n === 0) break;
      total += n;
    }
    return total;
  }

  /** Operators (and the guard's breakers): release held rows to the queue. */
  async release(filter: HeldFilter): Promise<number> {
    const rows = await courierStore.releaseHeld(this.o.db, this.o.clock.now(), filter);
    for (const r of rows) this.o.metrics.messages.inc({ type: r.type, channel: r.channel, event: 'queued' });
    if (rows.length) this.wake();
    return rows.length;
  }

  /** Operators: discard held rows (final; the secret part is wiped). */
  async discard(filter: HeldFilter): Promise<number> {
    const rows = await courierStore.discardHeld(this.o.db, this.o.clock.now(), filter);
    for (const r of rows) this.o.metrics.messages.inc({ type: r.type, channel: r.channel, event: 'discarded' });
    return rows.length;
  }

  private async updateGauges(): Promise<void> {
    const d = await courierStore.depth(this.o.db);
    for (const s of NON_FINAL_STATES) this.o.metrics.outboxDepth.set({ state: s }, d.byState[s] ?? 0);
    this.o.metrics.outboxOldestAge.set(d.oldestQueuedAt === null ? 0 : Math.max(0, (this.o.clock.now() - d.oldestQueuedAt) / 1000));
  }

  // ---- one row ---------------------------------------------------------------------------------

  private async deliverSafely(row: OutboxRow): Promise<void> {
    try {
      await this.deliver(row);
    } catch (e) {
      // Recording the outcome failed (database trouble): the lease runs out and the row is retried.
      this.o.logger.error({ err: e, id: row.id, type: row.type, channel: row.channel }, 'courier could not record a delivery outcome');
    }
  }

  private render(row: OutboxRow, via: string): Rendered {
    let data: unknown;
    try {
      data = JSON.parse(row.payload);
    } catch {
      throw new TemplateError(`${row.type}: the payload is not JSON`);
    }
    // Only email carries secret links; the inbox and the webhook never see them.
    const secret = via === 'email' ? this.o.outbox.openSecret(row) : null;
    const locale = data && typeof data === 'object' && typeof (data as { locale?: unknown }).locale === 'string' ? (data as { locale: string }).locale : undefined;
    return renderMessage(row.type, data, secret, { publicUrl: this.o.publicUrl, ...(locale ? { locale } : {}) });
  }

  private async deliver(row: OutboxRow): Promise<void> {
    const t0 = performance.now();
    const labels = { type: row.type, channel: row.channel };
    const outcome = (error: string | null, attempted = true): Outcome => ({ worker: this.workerId, now: this.o.clock.now(), durationMs: performance.now() - t0, error, attempted });
    const log = { id: row.id, type: row.type, channel: row.channel, lane: row.lane, attempt: row.attempts, to: row.channel === 'email' ? maskEmail(row.recipient) : row.recipient };

    if (!row.cause_kind?.trim() || !row.cause_id?.trim()) {
      this.o.logger.error(log, 'outbox row without a cause refused: every message must record what caused it (internal bug?)');
      await courierStore.markFailed(this.o.db, row.id, outcome('refused: the row records no cause (cause_kind/cause_id empty); no send without a cause'));
      this.o.metrics.messages.inc({ ...labels, event: 'failed' });
      return;
    }
    if (row.attempts > this.maxAttempts) {
      // Only a row whose workers kept dying mid-send gets here (attempts are counted at claim time).
      this.o.logger.error(log, 'outbox row abandoned: its attempts ran out while workers died mid-send');
      await courierStore.markFailed(this.o.db, row.id, outcome(`abandoned after ${this.maxAttempts} attempts${row.last_error ? `; last error: ${row.last_error}` : ''}`.slice(0, 500)));
      this.o.metrics.messages.inc({ ...labels, event: 'failed' });
      return;
    }
    if (row.claimed_until !== null && this.o.clock.now() >= row.claimed_until - this.leaseMs / 4) {
      // Too close to the end of the lease: another worker may take it soon; give it back rather
      // than risk a second copy.
      await courierStore.release(this.o.db, row.id, outcome(null, false), row.attempts - 1);
      return;
    }

    const { sealed: _sealed, ...view } = row;
    // The gate sees the attempts made before this one (the column already counts this one).
    let delivery: DeliveryRow = { ...view, attempts: row.attempts - 1 };
    let via = row.channel;
    try {
      const decision = await this.gate.decide(delivery);
      if (decision.action === 'hold') return await this.hold(row, decision.reason || 'held', outcome, log);
      if (decision.action === 'reroute' && decision.channel !== row.channel) {
        // Only a notice that makes sense without its secret link may change channel; the inbox
        // recipient is the account, so a row without one cannot go there.
        if (decision.channel === 'inbox' && !row.user_id) return await this.hold(row, `${decision.reason} (no account to reroute to)`, outcome, log);
        via = decision.channel;
        delivery = { ...delivery, channel: via, recipient: via === 'inbox' ? row.user_id! : row.recipient };
      }
      const channel = this.o.channels[via as ChannelName];
      if (!channel) throw new DeliveryError(`no channel is configured for "${via.slice(0, 20)}"${via === 'webhook' ? ' (set FLOODGATE_WEBHOOK_URL and FLOODGATE_WEBHOOK_SECRET)' : ''}`, 'fail');
      let rendered: Rendered;
      try {
        rendered = this.render(row, via);
      } catch (e) {
        if (via !== row.channel && e instanceof TemplateError) return await this.hold(row, `${decision.action === 'reroute' ? decision.reason : 'rerouted'} (cannot be rerouted to ${via}: ${e.message})`, outcome, log);
        throw e;
      }
      await channel.send(rendered, delivery);
    } catch (e) {
      await this.failed(row, e, outcome, log);
      return;
    }
    await courierStore.markSent(this.o.db, row.id, outcome(null), via !== row.channel ? via : undefined);
    this.o.metrics.messages.inc({ type: row.type, channel: via, event: 'sent' });
    this.o.logger.debug({ ...log, via }, 'message delivered');
  }

  /** Held by the gate: not an attempt, so the count is given back and a released row keeps all its tries. */
  private async hold(row: OutboxRow, reason: string, outcome: (error: string | null, attempted?: boolean) => Outcome, log: Record<string, unknown>): Promise<void> {
    await courierStore.markHeld(this.o.db, row.id, outcome(null, false), reason, row.attempts - 1);
    this.o.metrics.messages.inc({ type: row.type, channel: row.channel, event: 'held' });
    this.o.logger.warn({ ...log, reason }, 'message held by the delivery gate');
  }

  private async failed(row: OutboxRow, e: unknown, outcome: (error: string | null) => Outcome, log: Record<string, unknown>): Promise<void> {
    const labels = { type: row.type, channel: row.channel };
    const disposition: FailureDisposition = e instanceof TemplateError ? 'fail' : e instanceof DeliveryError ? e.disposition : 'retry';
    const error = errorText(e);
    if (disposition === 'hold') {
      await courierStore.markHeld(this.o.db, row.id, outcome(error), error, row.attempts);
      this.o.metrics.messages.inc({ ...labels, event: 'held' });
      this.o.logger.error({ ...log, error }, 'message held: it is not safe to send as it is');
    } else if (disposition === 'fail' || row.attempts >= this.maxAttempts) {
      const final = disposition === 'fail' ? error : `gave up after ${row.attempts} attempts: ${error}`;
      await courierStore.markFailed(this.o.db, row.id, outcome(final.slice(0, 500)));
      this.o.metrics.messages.inc({ ...labels, event: 'failed' });
      this.o.logger.error({ ...log, error: final }, 'message failed (dead letter)');
    } else {
      const next = this.o.clock.now() + backoffDelay(row.attempts, this.baseMs, this.capMs, this.random);
      await courierStore.markRetry(this.o.db, row.id, outcome(error), next);
      this.o.metrics.messages.inc({ ...labels, event: 'retried' });
      this.o.logger.warn({ ...log, error, retryAt: new Date(next).toISOString() }, 'delivery failed; will retry');
    }
  }
}
