import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { solveChallenge } from 'altcha-lib';
import { deriveKey } from 'altcha-lib/algorithms/pbkdf2';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, MINUTE, SECOND } from '../../kernel/clock.js';
import { Metrics } from '../../kernel/metrics.js';
import { REDIS_URL, STORES } from '../../../test/helpers/harness.js';
import { ChallengeService } from './challenge.js';
import { DEFAULT_POLICY, EMPTY_BASELINE, learn, nextMode, pressureOf, signals, type ModeState } from './detector.js';
import { Guard, type ModeChange } from './guard.js';
import { delayAfter, DEVICE_FAILURES, GuardSignInThrottle, LOCK_AFTER } from './signin-throttle.js';
import { MemoryGuardStore, RedisGuardStore, type GuardStore } from './store.js';

const stores: GuardStore[] = [];
afterAll(async () => { for (const s of stores) await s.close(); });

function makeGuard(kind: 'memory' | 'redis', clock: ManualClock, store?: GuardStore) {
  const st = store ?? (kind === 'memory' ? new MemoryGuardStore(clock) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`));
  stores.push(st);
  const changes: ModeChange[] = [];
  const guard = new Guard({ store: st, clock, metrics: new Metrics(), challenges: new ChallengeService(Buffer.alloc(32, 9), clock, st), logger: pino({ level: 'silent' }), onModeChange: async (c) => { changes.push(c); } });
  return { guard, changes, store: st };
}

const ip = (i: number) => `198.${18 + ((i >> 16) & 1)}.${(i >> 8) & 255}.${i & 255}`;

describe('detector', () => {
  it('escalates at once and steps down only after a calm cool-down', () => {
    const p = DEFAULT_POLICY;
    let s: ModeState = { mode: 'normal', since: 0, lastHot: 0 };
    s = nextMode(s, 1.2, 1000, p);
    expect(s.mode).toBe('challenge');
    s = nextMode(s, 5, 2000, p);
    expect(s.mode).toBe('hold');
    s = nextMode(s, 0.2, 3000, p);
    expect(s.mode).toBe('hold');
    s = nextMode(s, 0.2, 2000 + p.cooldownMs - 1, p);
    expect(s.mode).toBe('hold');
    s = nextMode(s, 0.2, 2000 + p.cooldownMs, p);
    expect(s.mode).toBe('challenge');
    // A short burst during the cool-down restarts it.
    s = nextMode(s, 0.7, 2000 + p.cooldownMs + MINUTE, p);
    s = nextMode(s, 0.1, 2000 + 2 * p.cooldownMs, p);
    expect(s.mode).toBe('challenge');
    s = nextMode(s, 0.1, 2000 + p.cooldownMs + MINUTE + p.cooldownMs, p);
    expect(s.mode).toBe('normal');
  });

  it('learns a baseline from calm windows and widens the band with it', () => {
    let b = EMPTY_BASELINE;
    for (let i = 0; i < 30; i++) b = learn(b, { requests: 100, targets: 90, sources: 80, networks: 70, resolved: 100, unknown: 10, topSource: 3 }, DEFAULT_POLICY);
    expect(b.requests).toBeCloseTo(100, 5);
    expect(b.unknownShare).toBeCloseTo(0.1, 5);
    const calm = signals({ requests: 150, targets: 120, sources: 100, networks: 90, resolved: 150, unknown: 20, topSource: 4 }, b, DEFAULT_POLICY);
    expect(pressureOf(calm)).toBeLessThan(1);
    const flood = signals({ requests: 5000, targets: 4000, sources: 3000, networks: 900, resolved: 5000, unknown: 4000, topSource: 10 }, b, DEFAULT_POLICY);
    expect(pressureOf(flood)).toBeGreaterThan(DEFAULT_POLICY.holdAt);
    expect(flood.filter((x) => x.ratio >= 1).map((x) => x.name)).toEqual(expect.arrayContaining(['requests', 'targets', 'sources', 'unknownShare']));
  });
});

describe.each(STORES)('guard (%s)', (kind) => {
  it('throttles one source without touching others, identically for any target', async () => {
    const clock = new ManualClock();
    const { guard } = makeGuard(kind, clock);
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push((await guard.inspect('reset', { ip: '203.0.113.5', target: i % 2 ? 'known@example.test' : `nobody${i}@example.test` })).kind);
    expect(answers.slice(0, 10).every((a) => a === 'allow')).toBe(true);
    expect(answers.slice(10)).toEqual(['throttle', 'throttle']);
    expect((await guard.inspect('reset', { ip: '203.0.113.6', target: 'x@example.test' })).kind).toBe('allow');
  });

  it('escalates a distributed flood to challenge and hold, lets solved challenges through, and calms down', async () => {
    const clock = new ManualClock();
    const { guard, changes } = makeGuard(kind, clock);
    // Calm traffic first: a baseline of ~5 requests a minute.
    for (let m = 0; m < 5; m++) {
      for (let i = 0; i < 5; i++) await guard.inspect('reset', { ip: ip(i), target: `user${i}@example.test` });
      clock.advance(MINUTE);
    }
    expect(await guard.mode('reset')).toBe('normal');
    let first428 = -1;
    for (let i = 0; i < 400; i++) {
      clock.advance(50);
      const d = await guard.inspect('reset', { ip: ip(1000 + i), target: `victim${i}@example.test` });
      if (i % 2) await guard.observe('reset', { known: false });
      if (d.kind === 'challenge' && first428 < 0) first428 = i;
    }
    expect(first428).toBeGreaterThan(0);
    expect(first428).toBeLessThan(200);
    expect(await guard.mode('reset')).toBe('hold');
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual(['normal->challenge', 'challenge->hold']);
    // A person who solves the challenge is let through, once per challenge.
    const d = await guard.inspect('reset', { ip: '192.0.2.44', target: 'real@example.test' });
    expect(d.kind).toBe('challenge');
    if (d.kind !== 'challenge') return;
    const solution = await solveChallenge({ challenge: d.challenge, deriveKey });
    const altcha = Buffer.from(JSON.stringify({ challenge: d.challenge, solution })).toString('base64');
    expect(await guard.inspect('reset', { ip: '192.0.2.44', target: 'real@example.test', altcha })).toMatchObject({ kind: 'allow', solved: true, mode: 'hold' });
    expect((await guard.inspect('reset', { ip: '192.0.2.44', target: 'real@example.test', altcha })).kind).toBe('challenge');
    // Quiet: hold -> challenge after a cool-down, then -> normal after another.
    for (let t = 0; t < 12; t++) { clock.advance(MINUTE); await guard.evaluate('reset', true); }
    expect(await guard.mode('reset')).toBe('normal');
    expect(changes.map((c) => c.to)).toEqual(['challenge', 'hold', 'challenge', 'normal']);
  }, 60_000);

  it('lets an operator override a flow and lift the override', async () => {
    const clock = new ManualClock();
    const { guard, changes } = makeGuard(kind, clock);
    await guard.override('signup', 'hold', 'alice');
    expect(await guard.mode('signup')).toBe('hold');
    expect((await guard.inspect('signup', { ip: '192.0.2.1' })).kind).toBe('challenge');
    await guard.override('signup', null, 'alice');
    expect(await guard.mode('signup')).toBe('normal');
    expect(changes.map((c) => [c.to, c.byOperator])).toEqual([['hold', 'alice'], ['normal', 'alice']]);
  });

  it('shares one view between two instances on the same store', async () => {
    const clock = new ManualClock();
    const a = makeGuard(kind, clock);
    const b = makeGuard(kind, clock, a.store);
    for (let i = 0; i < 300; i++) { clock.advance(20); await (i % 2 ? a : b).guard.inspect('signup', { ip: ip(i), target: `t${i}@example.test` }); }
    clock.advance(SECOND);
    expect(await a.guard.mode('signup')).not.toBe('normal');
    expect(await b.guard.mode('signup')).toBe(await a.guard.mode('signup'));
  });

  it('throttles sign-in failures per account with growing delays and locks only after 100', async () => {
    const clock = new ManualClock();
    const st = kind === 'memory' ? new MemoryGuardStore(clock) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`);
    stores.push(st);
    const t = new GuardSignInThrottle(st, clock);
    let locked = false;
    let failures = 0;
    let waited = 0;
    while (!locked) {
      const ctx = { requestId: 'r', ip: ip(failures), userAgent: null };
      const wait = await t.check('victim@example.test', ctx);
      if (wait !== null) { clock.advance(wait * 1000); waited += wait; continue; }
      locked = (await t.failed('victim@example.test', ctx)).lockAccount;
      failures++;
    }
    expect(failures).toBe(LOCK_AFTER);
    // The growing delays add up to most of a day before the lock can be reached.
    expect(waited).toBeGreaterThan(18 * 3600);
    expect(delayAfter(4)).toBe(0);
    expect(delayAfter(6)).toBe(2000);
    await t.succeeded('victim@example.test');
    expect(await t.check('victim@example.test', { requestId: 'r', ip: '192.0.2.9', userAgent: null })).toBeNull();
  });

  it('lets a trusted device past the account\'s delays within its own budget, and starts a new count at each password change', async () => {
    const clock = new ManualClock();
    const st = kind === 'memory' ? new MemoryGuardStore(clock) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`);
    stores.push(st);
    const t = new GuardSignInThrottle(st, clock);
    const since = 1_000;
    const ctx = (i: number) => ({ requestId: 'r', ip: ip(1000 + i), userAgent: null });
    for (let i = 0; i < 20; i++) await t.failed('owner@example.test', ctx(i), { since });
    expect(await t.check('owner@example.test', ctx(99), { since })).toBeGreaterThan(60);
    // The owner's browser: not held back, its failures its own, its success leaves the count alone.
    expect(await t.deviceTrusted('dev1')).toBe(true);
    expect(await t.check('owner@example.test', ctx(99), { since, device: 'dev1' })).toBeNull();
    for (let i = 0; i < DEVICE_FAILURES.limit; i++) expect((await t.failed('owner@example.test', ctx(99), { since, device: 'dev1' })).lockAccount).toBe(false);
    expect(await t.deviceTrusted('dev1')).toBe(false);
    expect(await t.deviceTrusted('dev2')).toBe(true);
    await t.succeeded('owner@example.test', ctx(99), { since, device: 'dev2' });
    expect(await t.check('owner@example.test', ctx(98), { since })).toBeGreaterThan(60);
    // A password change: failures before it do not count.
    expect(await t.check('owner@example.test', ctx(98), { since: since + 1 })).toBeNull();
    // Source limits hold for every attempt, trusted or not.
    for (let i = 0; i < 30; i++) await t.failed(`x${i}@example.test`, ctx(500));
    expect(await t.check('owner@example.test', ctx(500), { since, device: 'dev2' })).toBe(60);
  });

  it('counts every one of many concurrent wrong guesses at one account', async () => {
    const clock = new ManualClock();
    const st = kind === 'memory' ? new MemoryGuardStore(clock) : new RedisGuardStore(new Redis(REDIS_URL!), clock, `fgtest:${randomBytes(4).toString('hex')}:`);
    stores.push(st);
    const t = new GuardSignInThrottle(st, clock);
    // 100 guesses in flight at once, each from its own address, all past the check before any fails.
    const ctxs = Array.from({ length: LOCK_AFTER }, (_, i) => ({ requestId: `r${i}`, ip: ip(i), userAgent: null }));
    for (const c of ctxs) expect(await t.check('victim@example.test', c)).toBeNull();
    const outcomes = await Promise.all(ctxs.map((c) => t.failed('victim@example.test', c)));
    // A read-then-write count would have lost most of them; the lock is reached exactly once.
    expect(outcomes.filter((o) => o.lockAccount).length).toBe(1);
    expect(await t.check('victim@example.test', { requestId: 'x', ip: '192.0.2.200', userAgent: null })).toBeGreaterThan(60);
  });
});
