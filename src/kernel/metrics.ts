/**
 * Prometheus metrics, one registry per service instance (tests build many apps in one process).
 * Domain counters live here so every module increments the same names.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({ name: 'floodgate_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['method', 'route', 'status'] as const, registers: [this.registry] });
  readonly httpDuration = new Histogram({ name: 'floodgate_http_request_duration_seconds', help: 'HTTP request latency', labelNames: ['method', 'route'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers: [this.registry] });
  readonly signIns = new Counter({ name: 'floodgate_signins_total', help: 'Sign-in attempts by outcome', labelNames: ['outcome'] as const, registers: [this.registry] });
  readonly signUps = new Counter({ name: 'floodgate_signups_total', help: 'Sign-up requests (new and existing addresses alike)', registers: [this.registry] });
  readonly resetRequests = new Counter({ name: 'floodgate_password_reset_requests_total', help: 'Password reset requests by decision', labelNames: ['decision'] as const, registers: [this.registry] });
  readonly messages = new Counter({ name: 'floodgate_messages_total', help: 'Outbox messages by type, channel and event (queued, sent, failed, held, discarded, retried)', labelNames: ['type', 'channel', 'event'] as const, registers: [this.registry] });
  readonly outboxDepth = new Gauge({ name: 'floodgate_outbox_depth', help: 'Messages waiting in the outbox by state', labelNames: ['state'] as const, registers: [this.registry] });
  readonly outboxOldestAge = new Gauge({ name: 'floodgate_outbox_oldest_age_seconds', help: 'Age of the oldest queued message', registers: [this.registry] });
  readonly guardMode = new Gauge({ name: 'floodgate_guard_mode', help: 'Guard mode per flow (0 normal, 1 challenge, 2 hold)', labelNames: ['flow'] as const, registers: [this.registry] });
  readonly guardDecisions = new Counter({ name: 'floodgate_guard_decisions_total', help: 'Guard decisions per flow', labelNames: ['flow', 'decision'] as const, registers: [this.registry] });

  /** Set by the composition root: the password hasher's queue, read at scrape time. */
  hashLoad: (() => { running: number; waiting: number }) | null = null;
  readonly passwordHashes = new Gauge({
    name: 'floodgate_password_hashes', help: 'Password hashes running and waiting for a turn (FLOODGATE_HASH_CONCURRENCY)', labelNames: ['state'] as const, registers: [this.registry],
    collect: () => {
      const l = this.hashLoad?.() ?? { running: 0, waiting: 0 };
      this.passwordHashes.set({ state: 'running' }, l.running);
      this.passwordHashes.set({ state: 'waiting' }, l.waiting);
    },
  });

  /** Set by the composition root: log lines the log stream dropped (reader behind or gone). */
  logLinesDropped: (() => number) | null = null;
  readonly logDrops = new Counter({
    name: 'floodgate_log_lines_dropped_total', help: 'Log lines dropped because the reader of standard output fell too far behind or went away', registers: [this.registry],
    collect: () => {
      this.logDrops.reset();
      this.logDrops.inc(this.logLinesDropped?.() ?? 0);
    },
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'floodgate_' });
  }
}
