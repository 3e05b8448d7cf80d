/**
 * The loop behind a background worker: run `tick` now and then, sooner when woken, again at once
 * while it reports more work, never two ticks at a time, and on stop wait for the tick in
 * flight. Timers are unref'd (they never keep a process alive) and a failing tick is reported
 * and retried on the next period, not thrown.
 */
export interface PollerOptions {
  /** Idle period between ticks, in ms. */
  pollMs: number;
  /** A tick failed; it is retried after the idle period. */
  onError(e: unknown): void;
}

export class Poller {
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private current: Promise<void> | null = null;
  private again = false;

  /** `tick` answers whether more work is waiting (run again at once). */
  constructor(
    private readonly tick: () => Promise<boolean>,
    private readonly o: PollerOptions,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = null;
    this.immediate = null;
    await this.current;
  }

  /** Work arrived: tick soon, or again right after the tick in flight. */
  wake(): void {
    if (!this.running) return;
    if (this.current) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (ms === 0) {
      if (this.immediate) return;
      // setImmediate: whatever woke us (e.g. an HTTP answer being written) finishes first.
      this.immediate = setImmediate(() => {
        this.immediate = null;
        this.run();
      });
    } else {
      this.timer = setTimeout(() => this.run(), ms);
      this.timer.unref();
    }
  }

  private run(): void {
    if (!this.running || this.current) return;
    this.again = false;
    this.current = (async () => {
      let more = false;
      try {
        more = await this.tick();
      } catch (e) {
        this.o.onError(e);
      } finally {
        this.current = null;
      }
      this.schedule(more || this.again ? 0 : this.o.pollMs);
    })();
  }
}
