/**
 * Rate-limit primitive: a sliding-window counter per key (the two-fixed-window approximation used
 * by Cloudflare and rate-limiter-flexible). In-process keys live in a capped LRU, so memory stays
 * bounded whatever keys an attacker chooses; the Redis store (shared by instances) implements the
 * same interface.
 */
import type { Clock } from '../../kernel/clock.js';

export interface LimitRule {
  /** Window length in ms. */
  windowMs: number;
  /** Hits allowed per window. */
  limit: number;
}

export interface LimitResult {
  allowed: boolean;
  /** Weighted count in the sliding window after this hit (or before it, when refused). */
  count: number;
  /** ms until one more hit would be allowed (0 when allowed). */
  retryAfterMs: number;
}

export interface RateLimiter {
  /** Count a hit for `key` under `rule` unless it would exceed the limit. */
  hit(key: string, rule: LimitRule, cost?: number): Promise<LimitResult>;
  /** The current weighted count, without counting a hit. */
  peek(key: string, rule: LimitRule): Promise<number>;
  reset(key: string): Promise<void>;
}

/** Window lengths `reset` clears (the ones the limits use). */
export const RESET_WINDOWS = [1_000, 60_000, 600_000, 3_600_000, 86_400_000];

interface Slot {
  window: number;
  current: number;
  previous: number;
}

/** A Map used as an LRU: re-inserting moves a key to the end; the oldest is evicted past `max`. */
export class BoundedLru<V> {
  private readonly map = new Map<string, V>();
  constructor(readonly max: number) {}
  get(key: string): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: string, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly slots: BoundedLru<Slot>;
  constructor(
    private readonly clock: Clock,
    maxKeys = 100_000,
  ) {
    this.slots = new BoundedLru(maxKeys);
  }

  private weighted(key: string, rule: LimitRule, now: number): { slot: Slot; count: number } {
    const window = Math.floor(now / rule.windowMs);
    const k = `${rule.windowMs}:${key}`;
    let slot = this.slots.get(k);
    if (!slot) {
      slot = { window, current: 0, previous: 0 };
      this.slots.set(k, slot);
    } else if (slot.window < window - 1) {
      slot.window = window;
      slot.current = 0;
      slot.previous = 0;
    } else if (slot.window === window - 1) {
      slot.window = window;
      slot.previous = slot.current;
      slot.current = 0;
    }
    const elapsed = (now % rule.windowMs) / rule.windowMs;
    return { slot, count: slot.previous * (1 - elapsed) + slot.current };
  }

  async hit(key: string, rule: LimitRule, cost = 1): Promise<LimitResult> {
    const now = this.clock.now();
    const { slot, count } = this.weighted(key, rule, now);
    if (count + cost > rule.limit) {
      return { allowed: false, count, retryAfterMs: retryAfter(slot, rule, now, cost) };
    }
    slot.current += cost;
    return { allowed: true, count: count + cost, retryAfterMs: 0 };
  }

  async peek(key: string, rule: LimitRule): Promise<number> {
    return this.weighted(key, rule, this.clock.now()).count;
  }

  async reset(key: string): Promise<void> {
    // Keys are stored per window length; drop the common ones.
    for (const w of RESET_WINDOWS) this.slots.delete(`${w}:${key}`);
  }
}

/** Time until the weighted count falls enough for `cost` more (the previous window decays linearly). */
function retryAfter(slot: Slot, rule: LimitRule, now: number, cost: number): number {
  const windowStart = slot.window * rule.windowMs;
  if (slot.current + cost > rule.limit) return windowStart + rule.windowMs - now + 1;
  const need = slot.previous * (1 - (now - windowStart) / rule.windowMs) + slot.current + cost - rule.limit;
  return Math.max(1, Math.ceil((need / Math.max(slot.previous, 1)) * rule.windowMs));
}
