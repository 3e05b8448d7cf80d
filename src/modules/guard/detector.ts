/**
 * Anomaly detection for one flow (reset, sign-up, sign-in, verification resend).
 *
 * Per one-minute window it reads: request rate, distinct targets, distinct sources, distinct
 * networks, share of unknown emails and the heaviest source's share. Each signal has a band:
 * max(configured floor, learned baseline x factor). Pressure is the highest signal/band ratio.
 *
 * Modes escalate normal -> challenge (pressure >= 1) -> hold (pressure >= holdAt) at once, and
 * step back down only after pressure stayed low (< 1 to leave hold, < 0.5 to leave challenge)
 * for a whole cool-down: hysteresis, so an attacker pausing for a few seconds does not reopen
 * the gate. The baseline learns only from windows that were calm (mode normal, pressure < 1), so
 * an attack never becomes the new normal.
 */
import { MINUTE } from '../../kernel/clock.js';

export type Mode = 'normal' | 'challenge' | 'hold';
export const MODE_LEVEL: Record<Mode, number> = { normal: 0, challenge: 1, hold: 2 };

export interface WindowStats {
  requests: number;
  targets: number;
  sources: number;
  networks: number;
  /** Requests whose target was resolved (known or unknown). */
  resolved: number;
  unknown: number;
  /** Requests from the heaviest source. */
  topSource: number;
}

export const EMPTY_STATS: WindowStats = { requests: 0, targets: 0, sources: 0, networks: 0, resolved: 0, unknown: 0, topSource: 0 };

export interface Floors {
  /** Requests per minute a fresh install accepts before any baseline is learned. */
  requests: number;
  targets: number;
  sources: number;
  networks: number;
  /** Unknown-email share above which a window is suspicious (needs minSample resolved requests). */
  unknownShare: number;
  /** Heaviest source's share above which a window is suspicious (needs minSample requests). */
  sourceShare: number;
  minSample: number;
}

export interface DetectorPolicy {
  floors: Floors;
  /** Band = max(floor, baseline x factor) for the count signals. */
  factor: number;
  /** Pressure at which the flow goes straight to hold. */
  holdAt: number;
  cooldownMs: number;
  /** EWMA weight of each calm window in the baseline. */
  alpha: number;
}

export const DEFAULT_POLICY: DetectorPolicy = {
  floors: { requests: 60, targets: 40, sources: 40, networks: 30, unknownShare: 0.6, sourceShare: 0.8, minSample: 30 },
  factor: 4,
  holdAt: 4,
  cooldownMs: 5 * MINUTE,
  alpha: 0.1,
};

export interface Baseline {
  requests: number;
  targets: number;
  sources: number;
  networks: number;
  unknownShare: number;
  windows: number;
}

export const EMPTY_BASELINE: Baseline = { requests: 0, targets: 0, sources: 0, networks: 0, unknownShare: 0, windows: 0 };

export interface Signal {
  name: 'requests' | 'targets' | 'sources' | 'networks' | 'unknownShare' | 'sourceShare';
  value: number;
  band: number;
  ratio: number;
}

export function signals(s: WindowStats, b: Baseline, p: DetectorPolicy): Signal[] {
  const band = (floor: number, base: number) => Math.max(floor, base * p.factor);
  const out: Signal[] = [
    { name: 'requests', value: s.requests, band: band(p.floors.requests, b.requests), ratio: 0 },
    { name: 'targets', value: s.targets, band: band(p.floors.targets, b.targets), ratio: 0 },
    { name: 'sources', value: s.sources, band: band(p.floors.sources, b.sources), ratio: 0 },
    { name: 'networks', value: s.networks, band: band(p.floors.networks, b.networks), ratio: 0 },
  ];
  if (s.resolved >= p.floors.minSample) {
    const share = s.unknown / s.resolved;
    // Shares saturate at 1: scale the excess over the band so a 100%-unknown flood reads as strong pressure.
    const bandShare = Math.min(0.95, Math.max(p.floors.unknownShare, b.unknownShare + 0.3));
    out.push({ name: 'unknownShare', value: share, band: bandShare, ratio: share <= bandShare ? share / bandShare : 1 + ((share - bandShare) / (1 - bandShare)) * (p.holdAt - 1) * 0.5 });
  }
  if (s.requests >= p.floors.minSample) {
    const share = s.topSource / s.requests;
    out.push({ name: 'sourceShare', value: share, band: p.floors.sourceShare, ratio: share / p.floors.sourceShare });
  }
  for (const x of out) if (x.ratio === 0) x.ratio = x.band > 0 ? x.value / x.band : 0;
  return out;
}

export function pressureOf(sig: Signal[]): number {
  return sig.reduce((m, x) => Math.max(m, x.ratio), 0);
}

/** Fold a calm window into the baseline (EWMA); the first windows are averaged plainly. */
export function learn(b: Baseline, s: WindowStats, p: DetectorPolicy): Baseline {
  const a = b.windows < 1 / p.alpha ? 1 / (b.windows + 1) : p.alpha;
  const mix = (old: number, v: number) => old + a * (v - old);
  return {
    requests: mix(b.requests, s.requests),
    targets: mix(b.targets, s.targets),
    sources: mix(b.sources, s.sources),
    networks: mix(b.networks, s.networks),
    unknownShare: s.resolved > 0 ? mix(b.unknownShare, s.unknown / s.resolved) : b.unknownShare,
    windows: b.windows + 1,
  };
}

export interface ModeState {
  mode: Mode;
  since: number;
  /** When pressure was last at or above the level that keeps the current mode. */
  lastHot: number;
}

/** The mode machine: explicit transitions with hysteresis. */
export function nextMode(state: ModeState, pressure: number, now: number, p: DetectorPolicy): ModeState {
  const target: Mode = pressure >= p.holdAt ? 'hold' : pressure >= 1 ? 'challenge' : 'normal';
  if (MODE_LEVEL[target] > MODE_LEVEL[state.mode]) return { mode: target, since: now, lastHot: now };
  switch (state.mode) {
    case 'normal':
      return state;
    case 'challenge': {
      const hot = pressure >= 0.5;
      if (hot) return { ...state, lastHot: now };
      return now - state.lastHot >= p.cooldownMs ? { mode: 'normal', since: now, lastHot: now } : state;
    }
    case 'hold': {
      const hot = pressure >= 1;
      if (hot) return { ...state, lastHot: now };
      return now - state.lastHot >= p.cooldownMs ? { mode: 'challenge', since: now, lastHot: now } : state;
    }
    default: {
      const never: never = state.mode;
      throw new Error(`unknown guard mode ${String(never)}`);
    }
  }
}
