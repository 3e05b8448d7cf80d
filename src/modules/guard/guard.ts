/**
 * The inbound guard: every sensitive anonymous request (reset, sign-up, sign-in, verification
 * resend) passes `inspect` before any account lookup. Invariants:
 * - decisions depend only on the source, the network, the flow's mode and the challenge, never
 *   on whether the target account exists: a throttled or challenged request for a known account
 *   is answered exactly like one for an unknown account;
 * - everything kept per source, network or target lives in bounded structures (sliding-window
 *   slots in a capped LRU, HyperLogLogs, top-k tables) or in Redis with TTLs;
 * - mode changes are security events, metrics and operator alerts; an operator override wins.
 */
import type { Logger } from 'pino';
import { MINUTE, HOUR, type Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Metrics } from '../../kernel/metrics.js';
import type { Challenge } from 'altcha-lib';
import type { ChallengeService } from './challenge.js';
import { DEFAULT_POLICY, EMPTY_BASELINE, EMPTY_STATS, learn, MODE_LEVEL, nextMode, pressureOf, signals, type Baseline, type DetectorPolicy, type Mode, type ModeState, type Signal, type WindowStats } from './detector.js';
import type { LimitRule } from './limiter.js';
import { networkOf, sourceKey } from './sketch.js';
import type { GuardStore } from './store.js';

export const FLOWS = ['reset', 'signup', 'signin', 'verify_resend'] as const;
export type Flow = (typeof FLOWS)[number];

interface SourceRule {
  scope: 'source' | 'network';
  rule: LimitRule;
}

/**
 * A limit on attempts (`countRefused`): a source or network that keeps sending past it stays
 * refused, instead of getting a request through each time the window slides.
 */
const attempts = (windowMs: number, limit: number): LimitRule => ({ windowMs, limit, countRefused: true });

/** Declarative per-source and per-network limits. Per-account limits live with each flow. */
export const SOURCE_LIMITS: Record<Flow, SourceRule[]> = {
  reset: [
    { scope: 'source', rule: attempts(MINUTE, 10) },
    { scope: 'source', rule: attempts(HOUR, 60) },
    { scope: 'network', rule: attempts(MINUTE, 120) },
  ],
  signup: [
    { scope: 'source', rule: attempts(MINUTE, 10) },
    { scope: 'source', rule: attempts(HOUR, 60) },
    { scope: 'network', rule: attempts(MINUTE, 120) },
  ],
  signin: [
    { scope: 'source', rule: attempts(MINUTE, 30) },
    { scope: 'network', rule: attempts(MINUTE, 300) },
  ],
  verify_resend: [
    { scope: 'source', rule: attempts(MINUTE, 5) },
    { scope: 'source', rule: attempts(HOUR, 30) },
  ],
};

/** Flows whose anonymous requests are challenged when the flow is escalated. */
const CHALLENGED: ReadonlySet<Flow> = new Set(['reset', 'signup', 'signin', 'verify_resend']);

const WINDOW_MS = MINUTE;
const EVALUATE_EVERY_MS = 250;
const KEEP_MS = 3 * WINDOW_MS;

export type Decision =
  | { kind: 'allow'; mode: Mode; solved: boolean }
  | { kind: 'throttle'; retryAfterS: number }
  | { kind: 'challenge'; challenge: Challenge; mode: Mode };

export interface FlowView {
  flow: Flow;
  mode: Mode;
  override: Mode | null;
  since: string;
  pressure: number;
  signals: Signal[];
  current: WindowStats;
  previous: WindowStats;
  baseline: Baseline;
  topSources: { item: string; count: number }[];
  topNetworks: { item: string; count: number }[];
}

export interface ModeChange {
  flow: Flow;
  from: Mode;
  to: Mode;
  pressure: number;
  signals: Signal[];
  byOperator: string | null;
}

export interface GuardDeps {
  store: GuardStore;
  clock: Clock;
  metrics: Metrics;
  challenges: ChallengeService;
  logger: Logger;
  policies?: Partial<Record<Flow, DetectorPolicy>>;
  /** Called once per change (event, alert, incident); errors are logged, never thrown at callers. */
  onModeChange?: (change: ModeChange) => Promise<void>;
}

interface Cached {
  at: number;
  state: ModeState;
  override: Mode | null;
  pressure: number;
}

export class Guard {
  private readonly cache = new Map<Flow, Cached>();
  // Counter children per flow and decision (a fixed set), looked up once rather than per request.
  private readonly decisions = new Map<string, { inc(): void }>();
  constructor(private readonly d: GuardDeps) {}

  private decided(flow: Flow, decision: 'throttle' | 'challenge' | 'allow' | 'allow_solved'): void {
    const key = `${flow}:${decision}`;
    let c = this.decisions.get(key);
    if (!c) this.decisions.set(key, (c = this.d.metrics.guardDecisions.labels({ flow, decision })));
    c.inc();
  }

  policy(flow: Flow): DetectorPolicy {
    return this.d.policies?.[flow] ?? DEFAULT_POLICY;
  }

  private win(now: number): number {
    return Math.floor(now / WINDOW_MS);
  }

  /** Check limits and mode for one anonymous request, and count it. */
  async inspect(flow: Flow, req: { ip: string | null; target?: string | null; altcha?: unknown }): Promise<Decision> {
    const ip = sourceKey(req.ip);
    const net = networkOf(req.ip);
    for (const { scope, rule } of SOURCE_LIMITS[flow]) {
      const key = `${flow}:${scope}:${scope === 'source' ? ip : net}`;
      const r = await this.d.store.hit(key, rule);
      if (!r.allowed) {
        this.decided(flow, 'throttle');
        return { kind: 'throttle', retryAfterS: Math.max(1, Math.ceil(r.retryAfterMs / 1000)) };
      }
    }
    await this.d.store.observe(`w:${flow}:${this.win(this.d.clock.now())}`, { ip, net, target: req.target ?? null }, KEEP_MS);
    // The cached evaluation without a promise hop (every request of a flood reads it).
    const state = this.cached(flow) ?? (await this.evaluate(flow));
    const mode = state.override ?? state.state.mode;
    let solved = false;
    if (req.altcha !== undefined && req.altcha !== null && req.altcha !== '') {
      solved = (await this.d.challenges.verify(flow, req.altcha)) === 'ok';
    }
    if (mode !== 'normal' && CHALLENGED.has(flow) && !solved) {
      this.decided(flow, 'challenge');
      return { kind: 'challenge', challenge: await this.d.challenges.create(flow, state.pressure), mode };
    }
    this.decided(flow, solved ? 'allow_solved' : 'allow');
    return { kind: 'allow', mode, solved };
  }

  /** Throw the HTTP form of a refusal; return the allow decision otherwise. */
  async enforce(flow: Flow, req: { ip: string | null; target?: string | null; altcha?: unknown }): Promise<{ mode: Mode; solved: boolean }> {
    const d = await this.inspect(flow, req);
    if (d.kind === 'throttle') throw new AppError('rate_limited', 'Too many requests from your network. Try again later.', { headers: { 'retry-after': String(d.retryAfterS) } });
    if (d.kind === 'challenge') throw new AppError('challenge_required', 'Solve the proof-of-work challenge and repeat the request with `altcha`.', { extra: { challenge: d.challenge } });
    return { mode: d.mode, solved: d.solved };
  }

  /** After the target is resolved (asynchronously, off the request path): known or unknown. */
  async observe(flow: Flow, outcome: { known: boolean }, at?: number): Promise<void> {
    const w = this.win(at ?? this.d.clock.now());
    const k = `w:${flow}:${w}`;
    await this.d.store.incr(`${k}:resolved`, 1, KEEP_MS);
    if (!outcome.known) await this.d.store.incr(`${k}:unknown`, 1, KEEP_MS);
  }

  private async stats(flow: Flow, w: number): Promise<WindowStats> {
    const k = `w:${flow}:${w}`;
    const s = this.d.store;
    const [requests, sources, networks, targets, resolved, unknown, top] = await Promise.all([
      s.counter(`${k}:req`), s.pfcount(`${k}:src`), s.pfcount(`${k}:net`), s.pfcount(`${k}:tgt`), s.counter(`${k}:resolved`), s.counter(`${k}:unknown`), s.top(`${k}:topsrc`, 1),
    ]);
    return { requests, sources, networks, targets, resolved, unknown, topSource: top[0]?.count ?? 0 };
  }

  private async readState(flow: Flow): Promise<{ state: ModeState; override: Mode | null; baseline: Baseline }> {
    const [st, ov, bl] = await Promise.all([this.d.store.getValue(`mode:${flow}`), this.d.store.getValue(`override:${flow}`), this.d.store.getValue(`baseline:${flow}`)]);
    const now = this.d.clock.now();
    return {
      state: st ? (JSON.parse(st) as ModeState) : { mode: 'normal', since: now, lastHot: now },
      override: ov === 'normal' || ov === 'challenge' || ov === 'hold' ? ov : null,
      baseline: bl ? (JSON.parse(bl) as Baseline) : EMPTY_BASELINE,
    };
  }

  /** The flow's evaluation while it is fresh (younger than EVALUATE_EVERY_MS), else undefined. */
  private cached(flow: Flow): Cached | undefined {
    const now = this.d.clock.now();
    const c = this.cache.get(flow);
    return c && now - c.at < EVALUATE_EVERY_MS && now >= c.at ? c : undefined;
  }

  /**
   * Re-evaluate a flow at most every 250 ms per instance (a flood at a thousand requests a second
   * should meet the challenge within a few hundred requests): pressure from the current and the
   * previous window, the mode machine, and the baseline (learned once per window, from calm ones).
   */
  async evaluate(flow: Flow, force = false): Promise<Cached> {
    const now = this.d.clock.now();
    const cached = force ? undefined : this.cached(flow);
    if (cached) return cached;
    const policy = this.policy(flow);
    const w = this.win(now);
    const [{ state, override, baseline }, cur, prev] = await Promise.all([this.readState(flow), this.stats(flow, w), this.stats(flow, w - 1)]);
    const pressure = Math.max(pressureOf(signals(cur, baseline, policy)), pressureOf(signals(prev, baseline, policy)));
    const next = nextMode(state, pressure, now, policy);
    if (next.mode !== state.mode || next.lastHot !== state.lastHot) await this.d.store.setValue(`mode:${flow}`, JSON.stringify(next));
    if (next.mode !== state.mode && !override) await this.changed({ flow, from: state.mode, to: next.mode, pressure, signals: signals(cur.requests >= prev.requests ? cur : prev, baseline, policy), byOperator: null });
    // Learn from the previous window once (whoever gets there first), only if it was calm.
    if (next.mode === 'normal' && pressureOf(signals(prev, baseline, policy)) < 1 && prev.requests > 0 && (await this.d.store.once(`learned:${flow}:${w - 1}`, KEEP_MS))) {
      await this.d.store.setValue(`baseline:${flow}`, JSON.stringify(learn(baseline, prev, policy)));
    }
    const result: Cached = { at: now, state: next, override, pressure };
    this.cache.set(flow, result);
    this.d.metrics.guardMode.set({ flow }, MODE_LEVEL[override ?? next.mode]);
    return result;
  }

  private async changed(c: ModeChange): Promise<void> {
    this.d.logger.warn({ flow: c.flow, from: c.from, to: c.to, pressure: Math.round(c.pressure * 100) / 100, byOperator: c.byOperator }, `guard: ${c.flow} flow ${c.from} -> ${c.to}`);
    try {
      await this.d.onModeChange?.(c);
    } catch (e) {
      this.d.logger.error({ err: e }, 'guard: mode change hook failed');
    }
  }

  /** Share of unknown emails over the current and previous window (null: too few resolved). */
  async unknownShare(flow: Flow): Promise<number | null> {
    const w = this.win(this.d.clock.now());
    const [a, b] = await Promise.all([this.stats(flow, w), this.stats(flow, w - 1)]);
    const resolved = a.resolved + b.resolved;
    return resolved >= 10 ? (a.unknown + b.unknown) / resolved : null;
  }

  async mode(flow: Flow): Promise<Mode> {
    const c = await this.evaluate(flow);
    return c.override ?? c.state.mode;
  }

  /** Operator override of a flow's mode (null lifts it). */
  async override(flow: Flow, mode: Mode | null, operator: string): Promise<void> {
    const before = await this.mode(flow);
    await this.d.store.setValue(`override:${flow}`, mode ?? 'none');
    this.cache.delete(flow);
    const after = await this.mode(flow);
    if (after !== before) await this.changed({ flow, from: before, to: after, pressure: 0, signals: [], byOperator: operator });
  }

  async view(flow: Flow): Promise<FlowView> {
    const c = await this.evaluate(flow, true);
    const w = this.win(this.d.clock.now());
    const { baseline } = await this.readState(flow);
    const [cur, prev, topSources, topNetworks] = await Promise.all([this.stats(flow, w), this.stats(flow, w - 1), this.d.store.top(`w:${flow}:${w}:topsrc`, 10), this.d.store.top(`w:${flow}:${w}:topnet`, 10)]);
    return {
      flow, mode: c.override ?? c.state.mode, override: c.override, since: new Date(c.state.since).toISOString(), pressure: Math.round(c.pressure * 1000) / 1000,
      signals: signals(cur, baseline, this.policy(flow)), current: cur, previous: prev, baseline, topSources, topNetworks,
    };
  }
}

export { EMPTY_STATS };
