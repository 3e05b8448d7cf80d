/**
 * Sign-in throttling (NIST SP 800-63B 5.2.2): per account, growing delays after a few failures
 * and a lock only after 100 consecutive failures, which the owner lifts with a password reset;
 * per source and per network, sliding-window limits on failures; per trusted device (OWASP's
 * device cookies), a small budget of its own. Invariants:
 * - keys are the normalised email as typed, so an unknown email is throttled exactly like a
 *   known one (the answers reveal nothing);
 * - no hard lock is reachable without first passing the growing delays (about a day of them),
 *   so an attacker cannot lock an owner out at will;
 * - an account's count starts afresh at each password change: the key carries the time of the
 *   last change (`since`), so failures before a reset or a change never count after it, and a
 *   reset cannot be undone by the next wrong guess;
 * - a device cookie known for the account (the sessions module checks it), while its budget
 *   lasts, is neither delayed by the account's failures nor counted in them: strangers' guesses
 *   do not slow or lock the owner out of the browsers they already use, and the owner's own
 *   typos do not add to the account's count; past its budget it is treated like any client;
 * - per-source and per-network limits apply to every attempt, trusted device or not;
 * - an untrusted success resets the account's counter; a trusted one resets only its device's
 *   (the owner signing in from home does not hand a guesser a fresh set of free attempts).
 */
import { DAY, HOUR, MINUTE, SECOND, type Clock } from '../../kernel/clock.js';
import type { RequestContext } from '../../kernel/context.js';
import type { SignInThrottle, ThrottleOptions } from '../sessions/index.js';
import type { LimitRule } from './limiter.js';
import { networkOf, sourceKey } from './sketch.js';
import type { GuardStore } from './store.js';

export const FREE_FAILURES = 5;
export const LOCK_AFTER = 100;
const MAX_DELAY_MS = 15 * MINUTE;
const SOURCE_FAILURES = { windowMs: 10 * MINUTE, limit: 30 };
const NETWORK_FAILURES = { windowMs: 10 * MINUTE, limit: 300 };
/** Failures a trusted device may make before it is treated like any other client (OWASP's "N in period T"). */
export const DEVICE_FAILURES: LimitRule = { windowMs: HOUR, limit: 10 };
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

/**
 * The account's failure counter: the email as typed and, for an existing account, the time of its
 * last password change, so a change starts a new count (the old key simply expires). Should a
 * typed string equal some account's key, all it can do is add failures to that key, which
 * typing that account's address does anyway.
 */
function accountKey(key: string, since: number | undefined): string {
  return since ? `signin:acct:${key}#${since}` : `signin:acct:${key}`;
}

const deviceKey = (id: string) => `signin-fail:device:${id}`;

export class GuardSignInThrottle implements SignInThrottle {
  constructor(
    private readonly store: GuardStore,
    private readonly clock: Clock,
  ) {}

  async deviceTrusted(deviceId: string): Promise<boolean> {
    return (await this.store.peek(deviceKey(deviceId), DEVICE_FAILURES)) < DEVICE_FAILURES.limit;
  }

  async check(key: string, ctx: RequestContext, opts: ThrottleOptions = {}): Promise<number | null> {
    const now = this.clock.now();
    const ip = sourceKey(ctx.ip);
    const [src, net, acct] = await Promise.all([
      this.store.peek(`signin-fail:source:${ip}`, SOURCE_FAILURES),
      this.store.peek(`signin-fail:network:${networkOf(ctx.ip)}`, NETWORK_FAILURES),
      // A trusted device is not held back by what untrusted clients did to the account.
      opts.device ? null : this.store.failures(accountKey(key, opts.since)),
    ]);
    if (src >= SOURCE_FAILURES.limit || net >= NETWORK_FAILURES.limit) return 60;
    if (!acct) return null;
    const wait = acct.last + delayAfter(acct.failures) - now;
    return wait > 0 ? Math.ceil(wait / 1000) : null;
  }

  async failed(key: string, ctx: RequestContext, opts: ThrottleOptions = {}): Promise<{ lockAccount: boolean }> {
    const ip = sourceKey(ctx.ip);
    // Counted atomically in the store: concurrent wrong guesses cannot overwrite each other's count.
    const [, , acct] = await Promise.all([
      this.store.hit(`signin-fail:source:${ip}`, SOURCE_FAILURES),
      this.store.hit(`signin-fail:network:${networkOf(ctx.ip)}`, NETWORK_FAILURES),
      opts.device ? this.store.hit(deviceKey(opts.device), DEVICE_FAILURES).then(() => null) : this.store.addFailure(accountKey(key, opts.since), FAILURE_TTL),
    ]);
    return { lockAccount: acct !== null && acct.failures >= LOCK_AFTER };
  }

  async succeeded(key: string, _ctx?: RequestContext, opts: ThrottleOptions = {}): Promise<void> {
    if (opts.device) await this.store.reset(deviceKey(opts.device));
    else await this.store.clearFailures(accountKey(key, opts.since));
  }
}
