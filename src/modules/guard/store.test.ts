import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, MINUTE } from '../../kernel/clock.js';
import { REDIS_URL, STORES } from '../../../test/helpers/harness.js';
import { HyperLogLog } from './sketch.js';
import { MemoryGuardStore, RedisGuardStore, type GuardStore } from './store.js';

const opened: GuardStore[] = [];
function open(kind: 'memory' | 'redis', clock: ManualClock): GuardStore {
  const s = kind === 'memory' ? new MemoryGuardStore(clock) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`);
  opened.push(s);
  return s;
}
afterAll(async () => { for (const s of opened) await s.close(); });

describe.each(STORES)('guard store (%s)', (kind) => {
  it('limits with a sliding window and says when to come back', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1, 0, 0, 0));
    const s = open(kind, clock);
    const rule = { windowMs: MINUTE, limit: 3 };
    for (let i = 0; i < 3; i++) expect((await s.hit('ip:1', rule)).allowed).toBe(true);
    const refused = await s.hit('ip:1', rule);
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(MINUTE + 1);
    expect((await s.hit('ip:2', rule)).allowed).toBe(true);
    // Half a window later the previous window still weighs half: 3 * 0.5 = 1.5, so one more fits.
    clock.advance(MINUTE + MINUTE / 2);
    expect((await s.hit('ip:1', rule)).allowed).toBe(true);
    expect((await s.hit('ip:1', rule)).allowed).toBe(false);
    clock.advance(2 * MINUTE);
    expect(await s.peek('ip:1', rule)).toBe(0);
  });

  it('counts distinct members approximately and keeps heavy hitters', async () => {
    const clock = new ManualClock();
    const s = open(kind, clock);
    for (let i = 0; i < 5000; i++) await s.pfadd('targets', `user${i % 2000}@example.test`, MINUTE);
    const n = await s.pfcount('targets');
    expect(Math.abs(n - 2000) / 2000).toBeLessThan(0.05);
    for (let i = 0; i < 300; i++) await s.topAdd('sources', i % 3 === 0 ? '198.51.100.7' : `10.0.${i % 250}.1`, MINUTE);
    const top = await s.top('sources', 3);
    expect(top[0]).toMatchObject({ item: '198.51.100.7', count: 100 });
  });

  it('observes a request in all of a window\'s sketches at once, and forgets them after their time', async () => {
    const clock = new ManualClock();
    const s = open(kind, clock);
    for (let i = 0; i < 600; i++) await s.observe('w:reset:1', { ip: i % 3 === 0 ? '198.51.100.7' : `10.0.${i % 200}.1`, net: `10.0.${i % 200}.0/24`, target: i % 2 ? `u${i % 50}@example.test` : null }, MINUTE);
    expect(await s.counter('w:reset:1:req')).toBe(600);
    expect(Math.abs((await s.pfcount('w:reset:1:src')) - 201) / 201).toBeLessThan(0.05);
    expect(Math.abs((await s.pfcount('w:reset:1:net')) - 200) / 200).toBeLessThan(0.05);
    expect(Math.abs((await s.pfcount('w:reset:1:tgt')) - 25) / 25).toBeLessThan(0.05);
    expect((await s.top('w:reset:1:topsrc', 1))[0]).toMatchObject({ item: '198.51.100.7', count: 200 });
    clock.advance(MINUTE + 1);
    if (kind === 'memory') expect(await s.counter('w:reset:1:req')).toBe(0); // Redis expires on its own clock
  });

  it('claims a key once, counts, and stores shared values', async () => {
    const clock = new ManualClock();
    const s = open(kind, clock);
    expect(await s.once('challenge:abc', MINUTE)).toBe(true);
    expect(await s.once('challenge:abc', MINUTE)).toBe(false);
    await s.incr('c', 2, MINUTE);
    await s.incr('c', 3, MINUTE);
    expect(await s.counter('c')).toBe(5);
    await s.setValue('mode:reset', 'challenge');
    expect(await s.getValue('mode:reset')).toBe('challenge');
    expect(await s.getValue('missing')).toBeNull();
  });
});

describe('memory guard store bounds', () => {
  it('keeps memory bounded past its key caps', async () => {
    const clock = new ManualClock();
    const s = new MemoryGuardStore(clock);
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 120_000; i++) await s.hit(`ip:${i}`, { windowMs: MINUTE, limit: 10 });
    for (let i = 0; i < 120_000; i++) await s.once(`c:${i}`, MINUTE);
    global.gc?.();
    const grown = (process.memoryUsage().heapUsed - before) / 1e6;
    // 100k limiter slots + 200k once keys at most, whatever arrives; generous bound for the JS heap.
    expect(grown).toBeLessThan(120);
  });
});

describe.each(STORES)('guard store reset (%s)', (kind) => {
  it('forgets a key\'s windows', async () => {
    const clock = new ManualClock();
    const s = open(kind, clock);
    const rule = { windowMs: MINUTE, limit: 2 };
    await s.hit('k', rule);
    await s.hit('k', rule);
    expect((await s.hit('k', rule)).allowed).toBe(false);
    await s.reset('k');
    expect((await s.hit('k', rule)).allowed).toBe(true);
  });
});

describe('HyperLogLog', () => {
  it('stays within a few percent from ten to a million distinct values, however alike they look', () => {
    for (const n of [10, 1000, 50_000, 1_000_000]) {
      const h = new HyperLogLog();
      for (let i = 0; i < n; i++) h.add(n % 2 ? `${i}` : `user${i}@example.test`);
      expect(Math.abs(h.count() - n) / n).toBeLessThan(n < 100 ? 0.11 : 0.05);
      const again = new HyperLogLog();
      for (let i = 0; i < n; i++) again.add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      expect(Math.abs(again.count() - n) / n).toBeLessThan(n < 100 ? 0.11 : 0.05);
    }
  });
});
