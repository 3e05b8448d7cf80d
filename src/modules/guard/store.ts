/**
 * Where the guard keeps its counters, distinct-count sketches and shared flags: in-process
 * (bounded LRUs) for one instance, or Redis so that several instances share one view. Both
 * implement the same interface and run the same tests. Time always comes from the injected
 * clock (window indexes are computed by the caller), never from the store.
 */
import type { Redis } from 'ioredis';
import type { Clock } from '../../kernel/clock.js';
import { BoundedLru, MemoryRateLimiter, RESET_WINDOWS, retryAfterMs, type LimitResult, type LimitRule, type RateLimiter } from './limiter.js';
import { FixedTable } from './fixed-table.js';
import { HyperLogLog, SpaceSaving } from './sketch.js';

export interface GuardStore extends RateLimiter {
  readonly kind: 'memory' | 'redis';
  incr(key: string, by: number, ttlMs: number): Promise<void>;
  counter(key: string): Promise<number>;
  /** Add to a distinct-count sketch (HyperLogLog). */
  pfadd(key: string, member: string, ttlMs: number): Promise<void>;
  pfcount(key: string): Promise<number>;
  /** Count an item in a bounded heavy-hitters table. */
  topAdd(key: string, member: string, ttlMs: number): Promise<void>;
  top(key: string, n: number): Promise<{ item: string; count: number }[]>;
  /**
   * One anonymous request in a window's sketches, in one call (one Redis round trip): `${key}:req`
   * counts it; `:src`, `:net` and `:tgt` (when a target is given) are distinct counts; `:topsrc`
   * and `:topnet` are heavy hitters.
   */
  observe(key: string, r: { ip: string; net: string; target: string | null }, ttlMs: number): Promise<void>;
  /**
   * true the first time a key is claimed within ttl (replay protection). Fails closed: where a
   * bounded store had to forget a live key, a claim that may be that key's again is refused.
   */
  once(key: string, ttlMs: number): Promise<boolean>;
  /** Consecutive sign-in failures recorded under an account key, and when the last one was. */
  failures(key: string): Promise<FailureRecord>;
  /**
   * One more failure, counted atomically; returns the new record. The record is kept
   * `ttl.firstMs x 2^(failures - 1)`, at most `ttl.maxMs`: a junk email that failed once is
   * forgotten soon (Redis memory does not fill with a flood's one-off emails), an account that
   * keeps failing is remembered long.
   */
  addFailure(key: string, ttl: FailureTtl): Promise<FailureRecord>;
  clearFailures(key: string): Promise<void>;
  /** Shared values under keys chosen by this code (modes, overrides, baselines), never by clients. */
  getValue(key: string): Promise<string | null>;
  setValue(key: string, value: string, ttlMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface FailureRecord {
  failures: number;
  /** When the last failure was (ms), 0 when none. */
  last: number;
}

export interface FailureTtl {
  firstMs: number;
  maxMs: number;
}

export function failureTtlMs(failures: number, ttl: FailureTtl): number {
  return Math.min(ttl.maxMs, ttl.firstMs * 2 ** Math.min(40, Math.max(0, failures - 1)));
}

/** Observations applied together at most (see MemoryGuardStore.observe). */
const OBSERVE_BATCH = 256;

const FAILURES = 0;
const LAST = 1;

export class MemoryGuardStore implements GuardStore {
  readonly kind = 'memory' as const;
  private readonly limiter: MemoryRateLimiter;
  private readonly counters = new BoundedLru<{ v: number; until: number }>(20_000);
  private readonly sketches = new BoundedLru<{ v: HyperLogLog; until: number }>(512); // 4 KiB each: <= 2 MiB
  private readonly tops = new BoundedLru<{ v: SpaceSaving; until: number }>(512);
  private readonly onceKeys = new BoundedLru<number>(200_000);
  /** Latest expiry of a live once-key the LRU had to forget (see `once`). */
  private onceForgottenUntil = 0;
  // Keys chosen by this code only (a few per flow and breaker): the cap is a safety net, and no
  // client can fill it, so an operator's override or a flow's mode is never evicted by a flood.
  private readonly values = new BoundedLru<{ v: string; until: number }>(10_000);
  // Keyed by the email as typed (attacker-chosen): a fixed table that, when full, evicts the
  // account with the fewest failures, so junk emails cannot push a victim's count out.
  private readonly accountFailures = new FixedTable(131_072, 2);

  /** `sketchSeed` fixes the distinct-count hash (tests only; the default is a secret per-process seed). */
  constructor(private readonly clock: Clock, private readonly opts: { sketchSeed?: number } = {}) {
    this.limiter = new MemoryRateLimiter(clock);
  }

  hit(key: string, rule: LimitRule, cost?: number): Promise<LimitResult> {
    return this.limiter.hit(key, rule, cost);
  }
  peek(key: string, rule: LimitRule): Promise<number> {
    return this.limiter.peek(key, rule);
  }
  reset(key: string): Promise<void> {
    return this.limiter.reset(key);
  }

  private live<T>(lru: BoundedLru<{ v: T; until: number }>, key: string): T | undefined {
    const e = lru.get(key);
    if (!e) return undefined;
    if (e.until <= this.clock.now()) {
      lru.delete(key);
      return undefined;
    }
    return e.v;
  }

  async incr(key: string, by: number, ttlMs: number): Promise<void> {
    this.flush();
    this.add(key, by, ttlMs);
  }
  private add(key: string, by: number, ttlMs: number): void {
    const now = this.clock.now();
    const e = this.counters.get(key);
    if (e && e.until > now) {
      e.v += by;
      e.until = now + ttlMs;
    } else this.counters.set(key, { v: by, until: now + ttlMs });
  }
  private sketch(key: string, ttlMs: number): HyperLogLog {
    let h = this.live(this.sketches, key);
    if (!h) {
      h = new HyperLogLog(this.opts.sketchSeed);
      this.sketches.set(key, { v: h, until: this.clock.now() + ttlMs });
    }
    return h;
  }
  private topTable(key: string, ttlMs: number): SpaceSaving {
    let t = this.live(this.tops, key);
    if (!t) {
      t = new SpaceSaving(32);
      this.tops.set(key, { v: t, until: this.clock.now() + ttlMs });
    }
    return t;
  }
  /**
   * Observations are applied in batches: a flood observes every request, and applying one alone
   * in the middle of a request (six table lookups, cold code) cost several times what it costs in
   * a loop. Every method that reads or writes the windows' counters, sketches or tables applies
   * what is pending first, so no reader ever sees a stale count; at most OBSERVE_BATCH wait.
   */
  private readonly pending: { key: string; ip: string; net: string; target: string | null; until: number }[] = [];
  async observe(key: string, r: { ip: string; net: string; target: string | null }, ttlMs: number): Promise<void> {
    // Expiry from the time of the observation, so applying it later does not make it live longer.
    this.pending.push({ key, ip: r.ip, net: r.net, target: r.target, until: this.clock.now() + ttlMs });
    if (this.pending.length >= OBSERVE_BATCH) this.flush();
  }
  private flush(): void {
    const pending = this.pending;
    if (pending.length === 0) return;
    // Observations come in runs of one window key: look its structures up once per run.
    const now = this.clock.now();
    let at = '';
    let until = 0;
    let run = 0;
    let src!: HyperLogLog, net!: HyperLogLog, topsrc!: SpaceSaving, topnet!: SpaceSaving;
    let tgt: HyperLogLog | null = null;
    for (const o of pending) {
      if (o.until <= now) continue; // expired while it waited
      if (o.key !== at) {
        if (run > 0) this.add(`${at}:req`, run, until - now);
        at = o.key;
        run = 0;
        const ttlMs = o.until - now;
        src = this.sketch(`${at}:src`, ttlMs);
        net = this.sketch(`${at}:net`, ttlMs);
        tgt = null;
        topsrc = this.topTable(`${at}:topsrc`, ttlMs);
        topnet = this.topTable(`${at}:topnet`, ttlMs);
      }
      run++;
      until = o.until;
      src.add(o.ip);
      net.add(o.net);
      if (o.target) (tgt ??= this.sketch(`${at}:tgt`, o.until - now)).add(o.target);
      topsrc.add(o.ip);
      topnet.add(o.net);
    }
    if (run > 0) this.add(`${at}:req`, run, until - now);
    pending.length = 0;
  }
  async counter(key: string): Promise<number> {
    this.flush();
    return this.live(this.counters, key) ?? 0;
  }
  async pfadd(key: string, member: string, ttlMs: number): Promise<void> {
    this.flush();
    this.sketch(key, ttlMs).add(member);
  }
  async pfcount(key: string): Promise<number> {
    this.flush();
    return this.live(this.sketches, key)?.count() ?? 0;
  }
  async topAdd(key: string, member: string, ttlMs: number): Promise<void> {
    this.flush();
    this.topTable(key, ttlMs).add(member);
  }
  async top(key: string, n: number): Promise<{ item: string; count: number }[]> {
    this.flush();
    return (this.live(this.tops, key)?.top(n) ?? []).map(({ item, count }) => ({ item, count }));
  }
  async once(key: string, ttlMs: number): Promise<boolean> {
    const now = this.clock.now();
    const until = this.onceKeys.get(key);
    if (until !== undefined && until > now) return false;
    // A claim that would expire no later than a live key we had to forget may be that key's
    // replay: refuse it. Fresh claims (a challenge issued after the flood) expire later and pass.
    if (until === undefined && now + ttlMs <= this.onceForgottenUntil) return false;
    const evicted = this.onceKeys.set(key, now + ttlMs);
    if (evicted !== undefined && evicted > now) this.onceForgottenUntil = Math.max(this.onceForgottenUntil, evicted);
    return true;
  }
  async failures(key: string): Promise<FailureRecord> {
    const t = this.accountFailures;
    const i = t.find(key, this.clock.now());
    return i < 0 ? { failures: 0, last: 0 } : { failures: t.get(i, FAILURES), last: t.get(i, LAST) };
  }
  async addFailure(key: string, ttl: FailureTtl): Promise<FailureRecord> {
    const now = this.clock.now();
    const t = this.accountFailures;
    const { slot } = t.claim(key, now, now + ttl.firstMs, (i) => t.get(i, FAILURES));
    const failures = t.get(slot, FAILURES) + 1;
    t.setUntil(slot, now + failureTtlMs(failures, ttl));
    t.set(slot, FAILURES, failures);
    t.set(slot, LAST, now);
    return { failures, last: now };
  }
  async clearFailures(key: string): Promise<void> {
    this.accountFailures.delete(key);
  }
  async getValue(key: string): Promise<string | null> {
    return this.live(this.values, key) ?? null;
  }
  async setValue(key: string, value: string, ttlMs = 365 * 86_400_000): Promise<void> {
    this.values.set(key, { v: value, until: this.clock.now() + ttlMs });
  }
  async close(): Promise<void> {}
}

// Sliding window over two fixed windows, atomically: KEYS cur, prev; ARGV limit, cost, elapsed fraction, ttl ms.
const HIT_LUA = `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local frac = tonumber(ARGV[3])
local count = prev * (1 - frac) + cur
if count + cost > limit then
  -- countRefused (ARGV[5] is the cap, 0 without): see LimitRule.countRefused.
  local cap = tonumber(ARGV[5])
  if cap > 0 and cur < cap then
    cur = math.min(cur + cost, cap)
    redis.call('SET', KEYS[1], tostring(cur), 'PX', ARGV[4])
  end
  return {0, tostring(count), tostring(cur), tostring(prev)}
end
redis.call('INCRBYFLOAT', KEYS[1], cost)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, tostring(count + cost), tostring(cur + cost), tostring(prev)}
`;

// Heavy hitters in a sorted set kept to 64 members (the smallest are trimmed): bounded whatever arrives.
const TOP_LUA = `
redis.call('ZINCRBY', KEYS[1], 1, ARGV[1])
if redis.call('ZCARD', KEYS[1]) > 64 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -65) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;

// One more failure under KEYS[1]; ARGV now, first ttl ms, max ttl ms (see failureTtlMs).
const FAIL_LUA = `
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
redis.call('HSET', KEYS[1], 'l', ARGV[1])
local ttl = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ math.min(40, f - 1))
redis.call('PEXPIRE', KEYS[1], math.floor(ttl))
return f
`;

export class RedisGuardStore implements GuardStore {
  readonly kind = 'redis' as const;
  constructor(
    private readonly redis: Redis,
    private readonly clock: Clock,
    private readonly prefix = 'floodgate:',
  ) {
    redis.defineCommand('fgHit', { numberOfKeys: 2, lua: HIT_LUA });
    redis.defineCommand('fgTop', { numberOfKeys: 1, lua: TOP_LUA });
    redis.defineCommand('fgFail', { numberOfKeys: 1, lua: FAIL_LUA });
  }

  private k(key: string): string {
    return this.prefix + key;
  }

  async hit(key: string, rule: LimitRule, cost = 1): Promise<LimitResult> {
    const now = this.clock.now();
    const w = Math.floor(now / rule.windowMs);
    const frac = (now % rule.windowMs) / rule.windowMs;
    const base = `rl:${rule.windowMs}:${key}`;
    const cap = rule.countRefused ? 2 * rule.limit : 0;
    const [ok, count, cur, prev] = (await (this.redis as any).fgHit(this.k(`${base}:${w}`), this.k(`${base}:${w - 1}`), rule.limit, cost, frac, rule.windowMs * 2, cap)) as [number, string, string, string];
    if (ok === 1) return { allowed: true, count: Number(count), retryAfterMs: 0 };
    return { allowed: false, count: Number(count), retryAfterMs: retryAfterMs(w, Number(cur), Number(prev), rule, now, cost) };
  }

  async peek(key: string, rule: LimitRule): Promise<number> {
    const now = this.clock.now();
    const w = Math.floor(now / rule.windowMs);
    const base = `rl:${rule.windowMs}:${key}`;
    const [cur, prev] = await this.redis.mget(this.k(`${base}:${w}`), this.k(`${base}:${w - 1}`));
    return Number(prev ?? 0) * (1 - (now % rule.windowMs) / rule.windowMs) + Number(cur ?? 0);
  }

  async reset(key: string): Promise<void> {
    // The current and previous window of the common window lengths (no KEYS scan on a shared Redis).
    const now = this.clock.now();
    const keys = RESET_WINDOWS.flatMap((ms) => {
      const w = Math.floor(now / ms);
      return [this.k(`rl:${ms}:${key}:${w}`), this.k(`rl:${ms}:${key}:${w - 1}`)];
    });
    await this.redis.del(...keys);
  }

  async incr(key: string, by: number, ttlMs: number): Promise<void> {
    await this.redis.multi().incrby(this.k(key), by).pexpire(this.k(key), ttlMs).exec();
  }
  async counter(key: string): Promise<number> {
    return Number((await this.redis.get(this.k(key))) ?? 0);
  }
  async pfadd(key: string, member: string, ttlMs: number): Promise<void> {
    await this.redis.multi().pfadd(this.k(key), member).pexpire(this.k(key), ttlMs).exec();
  }
  async pfcount(key: string): Promise<number> {
    return this.redis.pfcount(this.k(key));
  }
  async observe(key: string, r: { ip: string; net: string; target: string | null }, ttlMs: number): Promise<void> {
    const k = (s: string) => this.k(`${key}:${s}`);
    const p = this.redis.pipeline()
      .incrby(k('req'), 1).pexpire(k('req'), ttlMs)
      .pfadd(k('src'), r.ip).pexpire(k('src'), ttlMs)
      .pfadd(k('net'), r.net).pexpire(k('net'), ttlMs);
    if (r.target) p.pfadd(k('tgt'), r.target).pexpire(k('tgt'), ttlMs);
    (p as any).fgTop(k('topsrc'), r.ip, ttlMs).fgTop(k('topnet'), r.net, ttlMs);
    const results = await p.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
  }
  async topAdd(key: string, member: string, ttlMs: number): Promise<void> {
    await (this.redis as any).fgTop(this.k(key), member, ttlMs);
  }
  async top(key: string, n: number): Promise<{ item: string; count: number }[]> {
    const flat = await this.redis.zrevrange(this.k(key), 0, n - 1, 'WITHSCORES');
    const out: { item: string; count: number }[] = [];
    for (let i = 0; i < flat.length; i += 2) out.push({ item: flat[i]!, count: Number(flat[i + 1]) });
    return out;
  }
  async once(key: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.k(`once:${key}`), '1', 'PX', ttlMs, 'NX')) === 'OK';
  }
  async failures(key: string): Promise<FailureRecord> {
    const [f, l] = await this.redis.hmget(this.k(`fail:${key}`), 'f', 'l');
    return { failures: Number(f ?? 0) || 0, last: Number(l ?? 0) || 0 };
  }
  async addFailure(key: string, ttl: FailureTtl): Promise<FailureRecord> {
    const now = this.clock.now();
    // One script: the count is atomic (concurrent wrong guesses on several instances are all
    // counted) and its expiry follows the new count.
    const failures = Number(await (this.redis as any).fgFail(this.k(`fail:${key}`), now, ttl.firstMs, ttl.maxMs));
    return { failures, last: now };
  }
  async clearFailures(key: string): Promise<void> {
    await this.redis.del(this.k(`fail:${key}`));
  }
  async getValue(key: string): Promise<string | null> {
    return this.redis.get(this.k(`v:${key}`));
  }
  async setValue(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs) await this.redis.set(this.k(`v:${key}`), value, 'PX', ttlMs);
    else await this.redis.set(this.k(`v:${key}`), value);
  }
  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
