/**
 * Sign-in throttling (NIST SP 800-63B 5.2.2): per account, growing delays after a few failures
 * and a lock only after 100 consecutive failures, which the owner lifts with a password reset;
 * per source and per network, sliding-window limits on failures. Invariants:
 * - keys are the normalised email as typed, so an unknown email is throttled exactly like a
 *   known one (the answers reveal nothing);
 * - no hard lock is reachable without first passing the growing delays (about a day of them),
 *   so an attacker cannot lock an owner out at will;
 * - a success resets the account's counter.
 */
import { DAY, MINUTE, SECOND, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import type { SignInThrottle } from '../sessions/index.js';
import { networkOf, sourceKey } from './sketch.js';
import type { GuardStore } from './store.js';

export const FREE_FAILURES = 5;
export const LOCK_AFTER = 100;
const MAX_DELAY_MS = 15 * MINUTE;
const SOURCE_FAILURES = { windowMs: 10 * MINUTE, limit: 30 };
const NETWORK_FAILURES = { windowMs: 10 * MINUTE, limit: 300 };
/**
 * How long an account's failures are remembered: a day after the first, doubling with each
 * further one, at most 30 days. One-off junk emails from a stuffing run are gone in a day (so
 * Redis does not keep millions of them for a month); an account under attack keeps its count
 * while the delays grow (from the sixth failure on it is kept the full 30 days).
 */
const FAILURE_TTL = { firstMs: DAY, maxMs: 30 * DAY };

/** Delay before the next attempt after `failures` consecutive failures. */
export function delayAfter(failures: number): number {
  if (failures < FREE_FAILURES) return 0;
  return Math.min(MAX_DELAY_MS, SECOND * 2 ** Math.min(20, failures - FREE_FAILURES));
}

export class GuardSignInThrottle implements SignInThrottle {
  constructor(
    private readonly store: GuardStore,
    private readonly clock: Clock,
  ) {}

  async check(key: string, ctx: RequestContext): Promise<number | null> {
    const now = this.clock.now();
    const ip = sourceKey(ctx.ip);
    const [src, net, acct] = await Promise.all([
      this.store.peek(`signin-fail:source:${ip}`, SOURCE_FAILURES),
      this.store.peek(`signin-fail:network:${networkOf(ctx.ip)}`, NETWORK_FAILURES),
      this.store.failures(`signin:acct:${key}`),
    ]);
    if (src >= SOURCE_FAILURES.limit || net >= NETWORK_FAILURES.limit) return 60;
    const wait = acct.last + delayAfter(acct.failures) - now;
    return wait > 0 ? Math.ceil(wait / 1000) : null;
  }

  async failed(key: string, ctx: RequestContext): Promise<{ lockAccount: boolean }> {
    const ip = sourceKey(ctx.ip);
    // Counted atomically in the store: concurrent wrong guesses cannot overwrite each other's count.
    const [, , acct] = await Promise.all([
      this.store.hit(`signin-fail:source:${ip}`, SOURCE_FAILURES),
      this.store.hit(`signin-fail:network:${networkOf(ctx.ip)}`, NETWORK_FAILURES),
      this.store.addFailure(`signin:acct:${key}`, FAILURE_TTL),
    ]);
    return { lockAccount: acct.failures >= LOCK_AFTER };
  }

  async succeeded(key: string): Promise<void> {
    await this.store.clearFailures(`signin:acct:${key}`);
  }
}
