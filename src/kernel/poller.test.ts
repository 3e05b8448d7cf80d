import { describe, expect, it } from 'vitest';
import { Poller } from './poller.js';

const tickUntil = async (cond: () => boolean, ms = 2000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('Poller', () => {
  it('runs at start, again at once while there is more, then waits for the period or a wake', async () => {
    let ticks = 0;
    let backlog = 3;
    const p = new Poller(async () => { ticks++; return --backlog > 0; }, { pollMs: 60_000, onError: () => {} });
    p.start();
    await tickUntil(() => ticks === 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(ticks).toBe(3);
    p.wake();
    await tickUntil(() => ticks === 4);
    await p.stop();
    p.wake();
    await new Promise((r) => setTimeout(r, 20));
    expect(ticks).toBe(4);
  });

  it('never runs two ticks at once, remembers a wake during a tick, and waits for it on stop', async () => {
    let inFlight = 0, maxInFlight = 0, ticks = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const p = new Poller(async () => {
      inFlight++; maxInFlight = Math.max(maxInFlight, inFlight); ticks++;
      if (ticks === 1) await gate;
      inFlight--;
      return false;
    }, { pollMs: 60_000, onError: () => {} });
    p.start();
    await tickUntil(() => ticks === 1);
    p.wake();
    p.wake();
    release();
    await tickUntil(() => ticks === 2);
    expect(maxInFlight).toBe(1);
    let stopped = false;
    const stopping = p.stop().then(() => { stopped = true; });
    await stopping;
    expect(stopped).toBe(true);
  });

  it('reports a failing tick and keeps going', async () => {
    const errors: unknown[] = [];
    let ticks = 0;
    const p = new Poller(async () => { ticks++; if (ticks === 1) throw new Error('boom'); return false; }, { pollMs: 10, onError: (e) => errors.push(e) });
    p.start();
    await tickUntil(() => ticks >= 2);
    await p.stop();
    expect(String(errors[0])).toMatch(/boom/);
  });
});
