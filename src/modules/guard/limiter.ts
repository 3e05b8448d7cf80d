/**
 * Rate-limit primitive: a sliding-window counter per key (the two-fixed-window approximation used
 * by Cloudflare and rate-limiter-flexible). In-process keys live in a fixed table (fixed-table.ts),
 * so memory stays bounded whatever keys an attacker chooses; the Redis store (shared by instances)
 * implements the same interface.
 */
import type { Clock } from '../../kernel/clock.js';
import { FixedTable } from './fixed-table.js';

export interface LimitRule {
  /** Window length in ms. */
  windowMs: number;
  /** Hits allowed per window. */
  limit: number;
  /**
   * Count refused hits too, up to twice the limit. Without it a client that keeps sending past
   * the limit gets one request through each time the sliding window has decayed by one hit (every
   * half second at 120 a minute); with it, what is limited is the rate of attempts, so a source
   * or network that keeps hammering stays refused, and one that stops is let in again within a
   * window and a half at most (the cap bounds how long a burst is remembered).
   */
  countRefused?: boolean;
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
  /** Store `v` under `key`; returns the value evicted to make room, if any. */
  set(key: string, v: V): V | undefined {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size <= this.max) return undefined;
    const [oldest, evicted] = this.map.entries().next().value!;
    this.map.delete(oldest);
    return evicted;
  }
  delete(key: string): void {
    this.map.delete(key);
  }
  get size(): number {
    return this.map.size;
  }
}

// Columns of a limiter slot in the fixed table.
const WINDOW = 0;
const CURRENT = 1;
const PREVIOUS = 2;
const WINDOW_MS = 3;
const LIMIT = 4;

/** The sliding-window count: the previous window's hits decay linearly across the current one. */
function weighted(previous: number, current: number, now: number, windowMs: number): number {
  return previous * (1 - (now % windowMs) / windowMs) + current;
}

/**
 * In-process limiter: the windows of up to `maxKeys` keys (rounded up to a power of two) in a
 * FixedTable, 8 MB allocated once. Under pressure a new key evicts, within its bucket, the
 * key furthest from its limit: a flood of fresh addresses pushes out other one-request addresses,
 * not the sources that are close to being refused.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly table: FixedTable;
  constructor(
    private readonly clock: Clock,
    maxKeys = 131_072,
  ) {
    this.table = new FixedTable(maxKeys, 5);
  }

  /** How full a slot is at `now`, relative to its own limit (stale windows count nothing). */
  private worth(slot: number, now: number): number {
    const t = this.table;
    const ms = t.get(slot, WINDOW_MS);
    const window = Math.floor(now / ms);
    const w = t.get(slot, WINDOW);
    const cur = w === window ? t.get(slot, CURRENT) : 0;
    const prev = w === window ? t.get(slot, PREVIOUS) : w === window - 1 ? t.get(slot, CURRENT) : 0;
    return weighted(prev, cur, now, ms) / t.get(slot, LIMIT);
  }

  /** The slot of a key under a rule, rolled forward to the current window. */
  private slotOf(key: string, rule: LimitRule, now: number, create: boolean): (Slot & { index: number }) | null {
    const t = this.table;
    const window = Math.floor(now / rule.windowMs);
    const k = `${rule.windowMs}:${key}`;
    const until = (window + 2) * rule.windowMs;
    let index: number;
    if (create) {
      index = t.claim(k, now, until, (i) => this.worth(i, now)).slot;
      t.setUntil(index, until);
    } else {
      index = t.find(k, now);
      if (index < 0) return null;
    }
    const w = t.get(index, WINDOW_MS) === 0 ? window : t.get(index, WINDOW);
    t.set(index, WINDOW_MS, rule.windowMs);
    t.set(index, LIMIT, Math.max(rule.limit, 1e-9));
    if (w < window - 1) {
      t.set(index, CURRENT, 0);
      t.set(index, PREVIOUS, 0);
    } else if (w === window - 1) {
      t.set(index, PREVIOUS, t.get(index, CURRENT));
      t.set(index, CURRENT, 0);
    }
    t.set(index, WINDOW, window);
    return { index, window, current: t.get(index, CURRENT), previous: t.get(index, PREVIOUS) };
  }

  async hit(key: string, rule: LimitRule, cost = 1): Promise<LimitResult> {
    const now = this.clock.now();
    const slot = this.slotOf(key, rule, now, true)!;
    const count = weighted(slot.previous, slot.current, now, rule.windowMs);
    if (count + cost > rule.limit) {
      let current = slot.current;
      if (rule.countRefused && current < 2 * rule.limit) {
        current = Math.min(current + cost, 2 * rule.limit);
        this.table.set(slot.index, CURRENT, current);
      }
      return { allowed: false, count, retryAfterMs: retryAfterMs(slot.window, current, slot.previous, rule, now, cost) };
    }
    this.table.set(slot.index, CURRENT, slot.current + cost);
    return { allowed: true, count: count + cost, retryAfterMs: 0 };
  }

  async peek(key: string, rule: LimitRule): Promise<number> {
    const now = this.clock.now();
    const slot = this.slotOf(key, rule, now, false);
    return slot ? weighted(slot.previous, slot.current, now, rule.windowMs) : 0;
  }

  async reset(key: string): Promise<void> {
    // Keys are stored per window length; drop the common ones.
    for (const w of RESET_WINDOWS) this.table.delete(`${w}:${key}`);
  }
}

/**
 * ms until `cost` more hits would be allowed if nothing else arrives. Either in this window, once
 * the previous window has decayed enough, or, when this window alone is already too full, in the
 * next one, where this window's count becomes the decaying previous: waiting only for the window
 * to end would send a client back while it is still refused. Shared by both stores.
 */
export function retryAfterMs(window: number, current: number, previous: number, rule: LimitRule, now: number, cost: number): number {
  const ms = rule.windowMs;
  const start = window * ms;
  let at: number;
  if (current + cost <= rule.limit) at = start + ms * (1 - (rule.limit - current - cost) / Math.max(previous, 1e-9));
  else if (cost > rule.limit) return 2 * ms; // can never fit; a full two windows is the honest bound
  else at = start + ms + ms * Math.max(0, 1 - (rule.limit - cost) / current);
  // One ms past the exact point, so that rounding in the weighted count cannot refuse a client
  // that came back on time.
  return Math.max(1, Math.ceil(at - now) + 1);
}
