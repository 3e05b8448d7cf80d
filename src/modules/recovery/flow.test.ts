import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY, HOUR, MINUTE } from '../../kernel/clock.js';
import { decideRequest, effectiveState, FLOW_STATES, issue, transition, UnknownFlowStateError, type AccountRecoveryView, type FlowEvent, type RecoveryFlow } from './flow.js';
import { RECOVERY_LIMITS, sourceKey } from './limits.js';

const T0 = Date.UTC(2026, 0, 15, 12);

function issued(overrides: Partial<RecoveryFlow> = {}): RecoveryFlow {
  const { flow } = issue({ id: 'f1', userId: 'u1', strategy: 'link', ttlMs: 30 * MINUTE, token: { id: 't', hash: 'h' }, denyToken: { id: 'd', hash: 'dh' }, requestId: 'r', requestIp: '192.0.2.1', prompt: false }, T0);
  return { ...flow, ...overrides };
}

const deny: FlowEvent = { type: 'deny', denyWindowMs: 7 * DAY };

describe('recovery flow model', () => {
  it('issues a 30-minute flow that delivers mail, supersedes older ones and records the request', () => {
    const { flow, effects } = issue({ id: 'f', userId: 'u', strategy: 'link', ttlMs: 30 * MINUTE, token: { id: 't', hash: 'h' }, denyToken: { id: 'd', hash: 'dh' }, requestId: null, requestIp: null, prompt: true }, T0);
    expect(flow).toMatchObject({ state: 'issued', issuedAt: T0, expiresAt: T0 + 30 * MINUTE, sendCount: 1, lastSentAt: T0 });
    expect(effects.map((e) => e.kind)).toEqual(['supersede_others', 'deliver_reset', 'prompt_inbox', 'record']);
    expect(() => issue({ id: 'f', userId: 'u', strategy: 'link', ttlMs: 31 * MINUTE, token: { id: 't', hash: 'h' }, denyToken: { id: 'd', hash: 'dh' }, requestId: null, requestIp: null, prompt: false }, T0)).toThrow(RangeError);
  });

  it('consumes only a live flow, once', () => {
    const f = issued();
    const t = transition(f, { type: 'consume' }, T0 + MINUTE);
    expect(t.ok).toBe(true);
    if (!t.ok) return;
    expect(t.flow).toMatchObject({ state: 'used', endedAt: T0 + MINUTE });
    expect(t.effects.map((e) => e.kind)).toEqual(['set_password', 'revoke_sessions', 'supersede_others', 'record', 'record', 'notify_password_changed']);
    expect(transition(t.flow, { type: 'consume' }, T0 + MINUTE)).toEqual({ ok: false, reason: 'not_live' });
    expect(transition(f, { type: 'consume' }, T0 + 30 * MINUTE)).toEqual({ ok: false, reason: 'expired' });
    for (const state of ['denied', 'superseded', 'expired'] as const) expect(transition(issued({ state }), { type: 'consume' }, T0).ok).toBe(false);
  });

  it('treats an issued flow past its expiry as expired', () => {
    expect(effectiveState(issued(), T0 + 30 * MINUTE - 1)).toBe('issued');
    expect(effectiveState(issued(), T0 + 30 * MINUTE)).toBe('expired');
    const t = transition(issued(), { type: 'supersede', reason: 'newer_token' }, T0 + HOUR);
    expect(t.ok && t.flow).toMatchObject({ state: 'expired', endedAt: T0 + 30 * MINUTE, endReason: 'ttl' });
  });

  it('accepts a deny for a week after issue, whatever became of the token, and only once', () => {
    for (const state of ['issued', 'superseded', 'expired'] as const) {
      const t = transition(issued({ state }), deny, T0 + DAY);
      expect(t.ok && t.flow.state).toBe('denied');
      expect(t.ok && t.effects.map((e) => e.kind)).toEqual(['supersede_others', 'quiet_account', 'record']);
    }
    const used = transition(issued({ state: 'used' }), deny, T0 + HOUR);
    expect(used.ok && used.flow.state).toBe('used');
    expect(used.ok && used.effects.length).toBe(3);
    const twice = transition(issued({ state: 'denied' }), deny, T0 + HOUR);
    expect(twice).toMatchObject({ ok: true, effects: [] });
    expect(transition(issued(), deny, T0 + 7 * DAY)).toEqual({ ok: false, reason: 'too_late' });
  });

  it('counts wrong second-factor codes and kills the token at the limit', () => {
    let f = issued();
    for (let i = 1; i <= 4; i++) {
      const t = transition(f, { type: 'otp_failed', maxFailures: 5 }, T0 + i);
      if (!t.ok) throw new Error('refused');
      f = t.flow;
      expect(f).toMatchObject({ state: 'issued', otpFailures: i });
    }
    const last = transition(f, { type: 'otp_failed', maxFailures: 5 }, T0 + 5);
    expect(last.ok && last.flow).toMatchObject({ state: 'expired', endReason: 'otp_failures', otpFailures: 5 });
  });

  it('sends unknown states to an error instead of guessing', () => {
    const weird = issued({ state: 'paused' as never });
    expect(() => effectiveState(weird, T0)).toThrow(UnknownFlowStateError);
    for (const ev of [{ type: 'consume' }, deny, { type: 'supersede', reason: 'x' }, { type: 'expire', reason: 'x' }, { type: 'otp_failed', maxFailures: 5 }] as FlowEvent[]) {
      expect(() => transition(weird, ev, T0)).toThrow(UnknownFlowStateError);
    }
  });

  it('never leaves a terminal state, whatever the events (property)', () => {
    const ev = fc.oneof(
      fc.constant<FlowEvent>({ type: 'consume' }),
      fc.constant<FlowEvent>(deny),
      fc.constant<FlowEvent>({ type: 'supersede', reason: 'r' }),
      fc.constant<FlowEvent>({ type: 'expire', reason: 'r' }),
      fc.constant<FlowEvent>({ type: 'otp_failed', maxFailures: 5 }),
    );
    fc.assert(fc.property(fc.array(fc.tuple(ev, fc.integer({ min: 0, max: 2 * HOUR })), { maxLength: 20 }), (steps) => {
      let f = issued();
      let now = T0;
      let consumed = 0;
      for (const [e, dt] of steps) {
        now += dt;
        const before = effectiveState(f, now);
        const t = transition(f, e, now);
        if (!t.ok) continue;
        const after = effectiveState(t.flow, now);
        if (before !== 'issued') expect(['denied', before]).toContain(after);
        if (before === 'issued' && after === 'used') consumed++;
        expect(FLOW_STATES).toContain(t.flow.state);
        f = t.flow;
      }
      expect(consumed).toBeLessThanOrEqual(1);
    }));
  });
});

describe('per-account send policy', () => {
  const policy = RECOVERY_LIMITS.send;
  const view = (v: Partial<AccountRecoveryView>): AccountRecoveryView => ({ live: null, sendsInWindow: 0, lastSentAt: null, quietUntil: null, requesterIsOwner: false, ...v });

  it('sends the first at once, then wants 2 min, 10 min, and stops at 3 a day', () => {
    expect(decideRequest(view({}), policy, T0)).toEqual({ kind: 'issue' });
    const live = issued();
    expect(decideRequest(view({ live, sendsInWindow: 1, lastSentAt: T0 }), policy, T0 + 2 * MINUTE - 1)).toEqual({ kind: 'reuse', flowId: 'f1' });
    expect(decideRequest(view({ live, sendsInWindow: 1, lastSentAt: T0 }), policy, T0 + 2 * MINUTE)).toEqual({ kind: 'issue' });
    expect(decideRequest(view({ sendsInWindow: 2, lastSentAt: T0 }), policy, T0 + 10 * MINUTE - 1)).toEqual({ kind: 'suppress', reason: 'gap' });
    expect(decideRequest(view({ sendsInWindow: 2, lastSentAt: T0 }), policy, T0 + 10 * MINUTE)).toEqual({ kind: 'issue' });
    expect(decideRequest(view({ sendsInWindow: 3, lastSentAt: T0 }), policy, T0 + 20 * HOUR)).toEqual({ kind: 'suppress', reason: 'daily_cap' });
    expect(decideRequest({ ...view({ sendsInWindow: 3, lastSentAt: T0 }) }, { ...policy, maxSends: 10 }, T0 + HOUR - 1)).toEqual({ kind: 'suppress', reason: 'gap' });
  });

  it('keeps quiet after a deny unless the signed-in owner asks', () => {
    expect(decideRequest(view({ quietUntil: T0 + DAY }), policy, T0)).toEqual({ kind: 'quiet' });
    expect(decideRequest(view({ quietUntil: T0 + DAY, requesterIsOwner: true }), policy, T0)).toEqual({ kind: 'issue' });
    expect(decideRequest(view({ quietUntil: T0 + DAY }), policy, T0 + DAY)).toEqual({ kind: 'issue' });
  });

  it('never allows more sends in a window than the cap (property)', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 3 * HOUR }), { maxLength: 60 }), (gaps) => {
      const sends: number[] = [];
      let now = T0;
      for (const g of gaps) {
        now += g;
        const inWindow = sends.filter((t) => t > now - policy.windowMs);
        const d = decideRequest(view({ sendsInWindow: inWindow.length, lastSentAt: inWindow.length ? Math.max(...inWindow) : null }), policy, now);
        if (d.kind === 'issue') sends.push(now);
        expect(sends.filter((t) => t > now - policy.windowMs).length).toBeLessThanOrEqual(policy.maxSends);
      }
    }));
  });
});

describe('source keys', () => {
  it('counts an IPv4 address alone and an IPv6 client per /64', () => {
    expect(sourceKey('192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(sourceKey('2001:db8:aa:bb::1')).toBe('2001:db8:aa:bb::/64');
    expect(sourceKey('2001:0db8:00aa:00bb:1:2:3:4')).toBe('2001:db8:aa:bb::/64');
    expect(sourceKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(sourceKey(null)).toBe('none');
  });
});
