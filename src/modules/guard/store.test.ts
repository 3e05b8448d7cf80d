import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, MINUTE } from '../../kernel/clock.js';
import { REDIS_URL, STORES } from '../../../test/helpers/harness.js';
import { HyperLogLog } from './sketch.js';
import { MemoryGuardStore, RedisGuardStore, type GuardStore } from './store.js';

const opened: GuardStore[] = [];
function open(kind: 'memory' | 'redis', clock: ManualClock): GuardStore {
  const s = kind === 'memory' ? new MemoryGuardStore(clock, { sketchSeed: 0x5eed }) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`);
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
    expect((await s.hit('ip:2', rule)).allowed).toBe(true);
    // Half a window later the previous window still weighs half: 3 * 0.5 = 1.5, so one more fits.
    clock.advance(MINUTE + MINUTE / 2);
    expect((await s.hit('ip:1', rule)).allowed).toBe(true);
    expect((await s.hit('ip:1', rule)).allowed).toBe(false);
    clock.advance(2 * MINUTE);
    expect(await s.peek('ip:1', rule)).toBe(0);
  });

  it('says when to come back, exactly, even when the full window still weighs on the next one', async () => {
    const start = Date.UTC(2026, 0, 1, 0, 0, 0);
    const rule = { windowMs: MINUTE, limit: 3 };
    // Full at the start of a window: the window's end is not enough, since its 3 hits then weigh
    // on the next window until a third of it has passed (3 * 2/3 + 1 = 3): 80 s.
    // Hits at 0 s and 50 s, one more at 65 s (2 * 11/12 + 1 <= 3), refused at 70 s: the previous
    // window decays until 2 * (1 - f) + 1 + 1 <= 3, f = 1/2: 90 s.
    for (const [hits, refusedAt, expected] of [[[0, 0, 0], 0, 80_000], [[0, 50_000, 65_000], 70_000, 90_000]] as const) {
      const clock = new ManualClock(start);
      const s = open(kind, clock);
      for (const at of hits) {
        clock.set(start + at);
        expect((await s.hit('ip:1', rule)).allowed).toBe(true);
      }
      clock.set(start + refusedAt);
      const refused = await s.hit('ip:1', rule);
      expect(refused.allowed).toBe(false);
      expect(Math.abs(start + refusedAt + refused.retryAfterMs - (start + expected))).toBeLessThanOrEqual(2);
      clock.set(start + expected - 50);
      expect((await s.hit('ip:1', rule)).allowed).toBe(false);
      clock.set(start + refusedAt + refused.retryAfterMs);
      expect((await s.hit('ip:1', rule)).allowed).toBe(true);
    }
  });

  it('keeps a client that hammers past the limit refused when refused hits count, and lets it back once it stops', async () => {
    const start = Date.UTC(2026, 0, 1, 0, 0, 0);
    const clock = new ManualClock(start);
    const s = open(kind, clock);
    const counting = { windowMs: MINUTE, limit: 120, countRefused: true };
    const plain = { windowMs: MINUTE, limit: 120 };
    // 20 requests a second for 3 minutes, across two window boundaries.
    const admitted = { counting: 0, plain: 0 };
    let lastRefusal = 0;
    for (let t = 0; t < 3 * MINUTE; t += 50) {
      clock.set(start + t);
      const c = await s.hit('net:a', counting);
      if (c.allowed) admitted.counting++;
      else lastRefusal = c.retryAfterMs;
      if ((await s.hit('net:b', plain)).allowed) admitted.plain++;
    }
    // Without counting refusals the sliding window lets one through every half second once it
    // decays: about 120 a minute after the first. Counting attempts: the first 120, then none.
    expect(admitted.counting).toBe(120);
    expect(admitted.plain).toBeGreaterThan(300);
    // It stops: back in at the promised time (the burst is remembered at twice the limit at most).
    clock.set(start + 3 * MINUTE - 50 + lastRefusal);
    expect((await s.hit('net:a', counting)).allowed).toBe(true);
    expect(lastRefusal).toBeLessThanOrEqual(1.5 * MINUTE + 2);
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

describe('memory guard store observations', () => {
  it('applies waiting observations before any read, and lets them expire from the time they were made', async () => {
    const clock = new ManualClock();
    const s = new MemoryGuardStore(clock, { sketchSeed: 0x5eed });
    await s.observe('w:a', { ip: '192.0.2.1', net: '192.0.2.0/24', target: 't@example.test' }, MINUTE);
    await s.observe('w:b', { ip: '192.0.2.2', net: '192.0.2.0/24', target: null }, MINUTE);
    await s.observe('w:a', { ip: '192.0.2.3', net: '192.0.2.0/24', target: null }, MINUTE);
    expect(await s.counter('w:a:req')).toBe(2);
    expect(await s.pfcount('w:a:src')).toBe(2);
    expect(await s.pfcount('w:a:tgt')).toBe(1);
    expect(await s.pfcount('w:b:tgt')).toBe(0);
    expect((await s.top('w:b:topsrc', 1))[0]).toMatchObject({ item: '192.0.2.2', count: 1 });
    // Made, then read only after its time: gone, as if it had been applied at once.
    await s.observe('w:c', { ip: '192.0.2.4', net: '192.0.2.0/24', target: null }, MINUTE);
    clock.advance(MINUTE + 1);
    expect(await s.counter('w:c:req')).toBe(0);
    expect(await s.pfcount('w:c:src')).toBe(0);
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
  // Fixed seeds: the bounds are about 3 standard errors, which a fresh random seed would break in
  // about one run of 400. Several seeds, so the check is not about one lucky hash.
  it.each([1, 0x5eed, 0xdeadbeef])('stays within a few percent from ten to a million distinct values, however alike they look (seed %i)', (seed) => {
    for (const n of [10, 1000, 50_000, 1_000_000]) {
      const h = new HyperLogLog(seed);
      for (let i = 0; i < n; i++) h.add(n % 2 ? `${i}` : `user${i}@example.test`);
      expect(Math.abs(h.count() - n) / n).toBeLessThan(n < 100 ? 0.11 : 0.05);
      const again = new HyperLogLog(seed);
      for (let i = 0; i < n; i++) again.add(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      expect(Math.abs(again.count() - n) / n).toBeLessThan(n < 100 ? 0.11 : 0.05);
    }
  });
});

describe.each(STORES)('account failure counts (%s)', (kind) => {
  it('counts concurrent failures atomically, remembers when, and clears', async () => {
    const clock = new ManualClock();
    const s = open(kind, clock);
    expect(await s.failures('signin:acct:a@example.test')).toEqual({ failures: 0, last: 0 });
    const all = await Promise.all(Array.from({ length: 25 }, () => s.addFailure('signin:acct:a@example.test', { firstMs: MINUTE, maxMs: 30 * MINUTE })));
    // Every concurrent failure is counted once: the counts handed back are 1..25.
    expect(all.map((r) => r.failures).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(await s.failures('signin:acct:a@example.test')).toEqual({ failures: 25, last: clock.now() });
    await s.clearFailures('signin:acct:a@example.test');
    expect((await s.failures('signin:acct:a@example.test')).failures).toBe(0);
    if (kind === 'redis') {
      // Redis expires keys on its own clock: read the TTLs it was given.
      const prefix = `fgtest:${randomBytes(4).toString('hex')}:`;
      const rs = new RedisGuardStore(new Redis(REDIS_URL!), clock, prefix);
      opened.push(rs);
      const r = new Redis(REDIS_URL!);
      try {
        const ttl = { firstMs: 86_400_000, maxMs: 30 * 86_400_000 };
        await rs.addFailure('signin:acct:once@example.test', ttl);
        const one = await r.pttl(`${prefix}fail:signin:acct:once@example.test`);
        expect(one).toBeGreaterThan(86_400_000 - 60_000);
        expect(one).toBeLessThanOrEqual(86_400_000);
        for (let i = 0; i < 8; i++) await rs.addFailure('signin:acct:many@example.test', ttl);
        expect(await r.pttl(`${prefix}fail:signin:acct:many@example.test`)).toBeGreaterThan(29 * 86_400_000);
        expect((await rs.failures('signin:acct:many@example.test')).failures).toBe(8);
      } finally {
        r.disconnect();
      }
    } else {
      // Kept a minute after one failure, two after a second, four after a third...
      await s.addFailure('signin:acct:b@example.test', { firstMs: MINUTE, maxMs: 30 * MINUTE });
      clock.advance(MINUTE + 1);
      expect((await s.failures('signin:acct:b@example.test')).failures).toBe(0);
      for (let i = 0; i < 3; i++) await s.addFailure('signin:acct:c@example.test', { firstMs: MINUTE, maxMs: 30 * MINUTE });
      clock.advance(3 * MINUTE);
      expect((await s.failures('signin:acct:c@example.test')).failures).toBe(3);
      clock.advance(MINUTE + 1);
      expect((await s.failures('signin:acct:c@example.test')).failures).toBe(0);
      for (let i = 0; i < 12; i++) await s.addFailure('signin:acct:d@example.test', { firstMs: MINUTE, maxMs: 30 * MINUTE });
      clock.advance(30 * MINUTE - 1);
      expect((await s.failures('signin:acct:d@example.test')).failures).toBe(12);
    }
  });
});

describe('memory guard store under a flood of attacker-chosen keys', () => {
  it("keeps a victim account's failures and the guard's own state while junk emails pour in", async () => {
    const clock = new ManualClock();
    const s = new MemoryGuardStore(clock);
    await s.setValue('override:reset', 'hold');
    await s.setValue('mode:reset', '{"mode":"challenge"}');
    for (let i = 0; i < 40; i++) await s.addFailure('signin:acct:victim@example.test', { firstMs: 86_400_000, maxMs: 30 * 86_400_000 });
    // Three times the table's capacity of one-failure junk emails.
    for (let i = 0; i < 400_000; i++) await s.addFailure(`signin:acct:junk${i}@example.test`, { firstMs: 86_400_000, maxMs: 30 * 86_400_000 });
    expect((await s.failures('signin:acct:victim@example.test')).failures).toBe(40);
    expect(await s.getValue('override:reset')).toBe('hold');
    expect(await s.getValue('mode:reset')).toBe('{"mode":"challenge"}');
  });

  it("keeps a heavy source's window while a million fresh addresses pass once each", async () => {
    const clock = new ManualClock();
    const s = new MemoryGuardStore(clock);
    const rule = { windowMs: 3_600_000, limit: 60 };
    for (let i = 0; i < 59; i++) expect((await s.hit('reset:source:198.51.100.7', rule)).allowed).toBe(true);
    for (let i = 0; i < 1_000_000; i++) await s.hit(`reset:source:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, rule);
    expect((await s.hit('reset:source:198.51.100.7', rule)).allowed).toBe(true);
    expect((await s.hit('reset:source:198.51.100.7', rule)).allowed).toBe(false);
  });

  it('refuses a claim it may have forgotten (fail closed) and accepts later ones', async () => {
    const clock = new ManualClock();
    const s = new MemoryGuardStore(clock);
    expect(await s.once('altcha:first', 10 * MINUTE)).toBe(true);
    clock.advance(1000);
    // 200k later claims push the first one out of the LRU while it is still live.
    for (let i = 0; i < 200_000; i++) await s.once(`altcha:${i}`, 10 * MINUTE);
    expect(await s.once('altcha:first', 10 * MINUTE - 1000)).toBe(false);
    // A claim that lives past everything forgotten is a new one.
    clock.advance(2000);
    expect(await s.once('altcha:new', 10 * MINUTE)).toBe(true);
  });
});

