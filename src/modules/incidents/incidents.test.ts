import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, makeHarness, type Harness } from '../../../test/helpers/harness.js';
import { classify, type Evidence } from './incidents.js';

const quiet: Evidence = { windowMinutes: 60, resetRequests: 0, resetDenials: 0, signinFailures: 0, signinSuccesses: 0, newDeviceSignins: 0, passwordResetsCompleted: 0, mailByCause: [], held: 0, unknownShare: null };

describe('incident classification', () => {
  it('tells an internal bug from an outside flood by the cause of the mail', () => {
    const bug = classify('breaker:broadcast:operator', { ...quiet, mailByCause: [{ type: 'broadcast', causeKind: 'operator', count: 5000 }, { type: 'password_reset', causeKind: 'anonymous', count: 12 }] });
    expect(bug.classification).toBe('internal_bug');
    expect(bug.reasons.join(' ')).toMatch(/operator actions or jobs/);
    const flood = classify('breaker:password_reset:anonymous', { ...quiet, resetRequests: 9000, unknownShare: 0.7, mailByCause: [{ type: 'password_reset', causeKind: 'anonymous', count: 30 }] });
    expect(flood.classification).toBe('external_flood');
    expect(flood.reasons[0]).toMatch(/70% for addresses with no account/);
  });

  it('recognises credential stuffing, and a possible breach when guesses succeed from new devices', () => {
    expect(classify('guard:signin', { ...quiet, signinFailures: 4000, signinSuccesses: 20 }).classification).toBe('credential_stuffing');
    expect(classify('guard:signin', { ...quiet, signinFailures: 4000, signinSuccesses: 60, newDeviceSignins: 45 }).classification).toBe('possible_breach');
  });

  it('recognises resets requested for real accounts that their owners deny', () => {
    const c = classify('guard:reset', { ...quiet, resetRequests: 40, resetDenials: 15, unknownShare: 0.05, passwordResetsCompleted: 2 });
    expect(c.classification).toBe('targeted_resets');
    expect(c.reasons.join(' ')).toMatch(/2 resets were completed/);
    expect(classify('guard:reset', quiet).classification).toBe('unclear');
    expect(classify('guard:reset', quiet, { signals: ['sources', 'targets'] }).reasons[0]).toMatch(/left their band \(sources, targets\)/);
  });
});

describe.each(DIALECTS)('incidents on %s', (dialect) => {
  let h: Harness;
  beforeAll(async () => { h = await makeHarness(dialect); });
  afterAll(async () => { await h.close(); });

  it('keeps one open incident per key, even when opened concurrently, and a new one after closing', async () => {
    const ids = await Promise.all(Array.from({ length: 5 }, () => h.s.incidents.open(h.s.storage.db, 'guard:reset', 'Guard: reset escalated', { n: 1 })));
    expect(new Set(ids).size).toBe(1);
    await h.s.incidents.close(h.s.storage.db, 'guard:reset');
    const again = await h.s.incidents.open(h.s.storage.db, 'guard:reset', 'Guard: reset escalated', { n: 2 });
    expect(again).not.toBe(ids[0]);
    const list = await h.s.incidents.list();
    expect(list.map((i) => i.state)).toEqual(['open', 'closed']);
  });
});
