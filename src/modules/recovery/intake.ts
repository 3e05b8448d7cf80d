/**
 * The reset intake worker: decides the reset requests that the HTTP path only wrote down.
 * Invariants:
 * - a row is claimed with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so M workers share the
 *   queue without waiting on each other); it is deleted in the transaction that acts on it, so a
 *   crash leaves it to be claimed again when the lease lapses, never half-done;
 * - a row that keeps failing is dropped after a few attempts (logged without the address) rather
 *   than blocking the queue;
 * - the worker wakes when a request is written (low latency for the person waiting for mail) and
 *   otherwise polls, so rows written by another instance are picked up too.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { HOUR, type Clock } from '../../kernel/clock.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { DialectName } from '../../storage/database.js';
import type { Database } from '../../storage/schema.js';
import { Poller } from '../../kernel/poller.js';
import type { BackgroundWorker } from '../../services.js';
import type { IntakeDecision, RecoveryService } from './service.js';
import { recoveryStore as store } from './store.js';

export interface IntakeDeps {
  db: Kysely<Database>;
  dialect: DialectName;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  recovery: RecoveryService;
  /** Idle polling interval (ms). */
  pollMs?: number;
}

export interface IntakeReport {
  claimed: number;
  decisions: Partial<Record<IntakeDecision | 'failed' | 'dropped', number>>;
}

export class ResetIntakeWorker implements BackgroundWorker {
  readonly name = 'reset-intake';
  readonly id = `${hostname().slice(0, 40)}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly poller: Poller;
  private lastPrune = 0;

  constructor(private readonly d: IntakeDeps) {
    this.poller = new Poller(async () => (await this.processOnce()).claimed >= this.d.recovery.limits.intakeBatch, {
      pollMs: d.pollMs ?? 1000,
      onError: (e) => this.d.logger.error({ err: e, worker: this.name }, 'reset intake batch failed'),
    });
    d.recovery.onIntake(() => this.poller.wake());
  }

  start(): void {
    this.poller.start();
  }

  stop(): Promise<void> {
    return this.poller.stop();
  }

  /** A request was written: run soon (after the answer has gone out), or again after the current batch. */
  wake(): void {
    this.poller.wake();
  }

  /** Claim and decide one batch. Tests call this directly (workers are not started there). */
  async processOnce(): Promise<IntakeReport> {
    const limits = this.d.recovery.limits;
    const now = this.d.clock.now();
    const rows = await store.claimIntake(this.d.db, this.d.dialect, this.id, now, limits.intakeLeaseMs, limits.intakeBatch);
    const report: IntakeReport = { claimed: rows.length, decisions: {} };
    const count = (k: keyof IntakeReport['decisions']) => (report.decisions[k] = (report.decisions[k] ?? 0) + 1);
    for (const row of rows) {
      if (row.attempts > limits.intakeMaxAttempts) {
        await store.deleteClaimedIntake(this.d.db, row.id, this.id);
        this.d.logger.error({ intake: row.id, requestId: row.request_id, attempts: row.attempts }, 'reset request dropped after repeated failures');
        this.d.metrics.resetRequests.inc({ decision: 'dropped' });
        count('dropped');
        continue;
      }
      try {
        count(await this.d.recovery.decideIntake(row, this.id));
      } catch (e) {
        count('failed');
        if (this.d.recovery.isLostClaim(e)) continue;
        // Retried on this worker's next poll (it takes back its own claims), or by another worker when the lease lapses.
        this.d.logger.error({ err: e, intake: row.id, requestId: row.request_id }, 'reset request could not be decided; will retry');
      }
    }
    if (now - this.lastPrune >= HOUR) {
      this.lastPrune = now;
      try {
        await this.d.recovery.prune();
      } catch (e) {
        this.d.logger.warn({ err: e }, 'pruning old recovery flows failed');
      }
    }
    return report;
  }
}
