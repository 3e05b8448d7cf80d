/**
 * Prometheus metrics, one registry per service instance (tests build many apps in one process).
 * Domain counters live here so every module increments the same names.
 *
 * Two audiences. `publicRegistry` holds only what cannot tell accounts apart: the process, the
 * HTTP layer by route and status (every public route answers known and unknown emails with the
 * same status) and the log stream. Everything that counts domain decisions (reset decisions,
 * message types such as `signup_existing`, sign-in outcomes, outbox and guard state) is for
 * operators only: a reader who could diff it around one request would learn whether an email
 * has an account. `registry` is the whole set.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  /** Metrics that reveal nothing about any account: served to anyone who may scrape. */
  readonly publicRegistry = new Registry();
  /** Operators only (domain decisions); `registry` merges both. */
  private readonly operatorRegistry = new Registry();
  /** Every metric: what an operator scrapes. */
  readonly registry: Registry;
  readonly httpRequests = new Counter({ name: 'floodgate_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['method', 'route', 'status'] as const, registers: [this.publicRegistry] });
  readonly httpDuration = new Histogram({ name: 'floodgate_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.publicRegistry] });
  readonly signIns = new Counter({ name: 'floodgate_signins_total', help: 'Sign-in attempts by outcome', labelNames: ['outcome'] as const, registers: [this.operatorRegistry] });
  readonly signUps = new Counter({ name: 'floodgate_signups_total', help: 'Sign-up requests (new and existing addresses alike)', registers: [this.operatorRegistry] });
  readonly resetRequests = new Counter({ name: 'floodgate_password_reset_requests_total', help: 'Password reset requests by decision', labelNames: ['decision'] as const, registers: [this.operatorRegistry] });
  readonly messages = new Counter({ name: 'floodgate_messages_total', help: 'Outbox messages by type, channel and event (queued, sent, failed, held, discarded, retried)', labelNames: ['type', 'channel', 'event'] as const, registers: [this.operatorRegistry] });
  readonly outboxDepth = new Gauge({ name: 'floodgate_outbox_depth', help: 'Messages waiting in the outbox by state', labelNames: ['state'] as const, registers: [this.operatorRegistry] });
  readonly outboxOldestAge = new Gauge({ name: 'floodgate_outbox_oldest_age_seconds', help: 'Age of the oldest queued message', registers: [this.operatorRegistry] });
  readonly guardMode = new Gauge({ name: 'floodgate_guard_mode', help: 'Guard mode per flow (0 normal, 1 challenge, 2 hold)', labelNames: ['flow'] as const, registers: [this.operatorRegistry] });
  readonly guardDecisions = new Counter({ name: 'floodgate_guard_decisions_total', help: 'Guard decisions per flow', labelNames: ['flow', 'decision'] as const, registers: [this.operatorRegistry] });

  /** Set by the composition root: the password hasher's queue, read at scrape time. */
  hashLoad: (() => { running: number; waiting: number }) | null = null;
  readonly passwordHashes = new Gauge({
    name: 'floodgate_password_hashes', help: 'Password hashes running and waiting for a turn (FLOODGATE_HASH_CONCURRENCY)', labelNames: ['state'] as const, registers: [this.operatorRegistry],
    collect: () => {
      const l = this.hashLoad?.() ?? { running: 0, waiting: 0 };
      this.passwordHashes.set({ state: 'running' }, l.running);
      this.passwordHashes.set({ state: 'waiting' }, l.waiting);
    },
  });

  /** Set by the composition root: log lines the log stream dropped (reader behind or gone). */
  logLinesDropped: (() => number) | null = null;
  readonly logDrops = new Counter({
    name: 'floodgate_log_lines_dropped_total', help: 'Log lines dropped because the reader of standard output fell too far behind or went away', registers: [this.publicRegistry],
    collect: () => {
      this.logDrops.reset();
      this.logDrops.inc(this.logLinesDropped?.() ?? 0);
    },
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.publicRegistry, prefix: 'floodgate_' });
    // The same metric objects in one more registry (merge copies references, not values).
    this.registry = Registry.merge([this.publicRegistry, this.operatorRegistry]);
  }
}
