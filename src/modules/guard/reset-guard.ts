/**
 * The guard in front of password resets (implements the recovery module's RecoveryGuard port).
 * On the request path: per-source limits and the flow's mode (429 / 428), never an account
 * lookup. In the intake worker, once the account is known: the unknown-email signal, kill
 * switches, secondary confirmation (a recently signed-in device is asked "was it you?" instead
 * of a mail while the flow is escalated) and, in hold, keeping unsolved requests for an operator.
 */
import type { RequestContext } from '../../kernel/context.js';
import { normalizeEmail } from '../../kernel/email.js';
import type { Guard } from './guard.js';
import type { OutboundGuard } from './outbound.js';

export interface ResetGuardDeps {
  guard: Guard;
  outbound: OutboundGuard;
  /** Whether the account has a device that was active recently (sessions module). */
  recentDevice(userId: string): Promise<boolean>;
}

export function resetGuard(d: ResetGuardDeps) {
  return {
    async enter(email: string, ctx: RequestContext, altcha: unknown): Promise<{ solved: boolean }> {
      const r = await d.guard.enforce('reset', { ip: ctx.ip, target: normalizeEmail(email).slice(0, 320), altcha });
      return { solved: r.solved };
    },
    async resolved(known: boolean, at: number): Promise<void> {
      await d.guard.observe('reset', { known }, at);
    },
    async route(req: { userId: string; solved: boolean; at: number }): Promise<'mail' | 'prompt' | 'hold' | 'pause'> {
      const ks = await d.outbound.flowSwitch('reset');
      if (ks === 'pause') return 'pause';
      // In-app only: the prompt waits in the inbox for the owner's next sign-in.
      if (ks === 'inbox_only') return 'prompt';
      const mode = await d.guard.mode('reset');
      if (mode === 'normal') return 'mail';
      if (await d.recentDevice(req.userId)) return 'prompt';
      // In hold, a solved challenge is the requester's cost, not ours: real people keep being served.
      if (mode === 'hold' && !req.solved) return 'hold';
      return 'mail';
    },
  };
}
