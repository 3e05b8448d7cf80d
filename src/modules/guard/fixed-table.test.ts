import { describe, expect, it } from 'vitest';
import { FixedTable } from './fixed-table.js';

describe('FixedTable', () => {
  it('finds, expires, reuses and deletes records', () => {
    const t = new FixedTable(64, 1);
    expect(t.capacity).toBe(64);
    expect(t.find('a', 0)).toBe(-1);
    const a = t.claim('a', 0, 100, () => 0);
    expect(a.fresh).toBe(true);
    t.set(a.slot, 0, 7);
    expect(t.claim('a', 10, 100, () => 0)).toEqual({ slot: a.slot, fresh: false });
    expect(t.find('a', 99)).toBe(a.slot);
    expect(t.find('a', 100)).toBe(-1); // expired
    const again = t.claim('a', 100, 200, () => 0);
    expect(again.fresh).toBe(true);
    expect(t.get(again.slot, 0)).toBe(0); // a reclaimed record starts from zero
    t.delete('a');
    expect(t.find('a', 150)).toBe(-1);
  });

  it('never grows, and evicts the record its caller values least', () => {
    const t = new FixedTable(1024, 1);
    const keep = t.claim('precious', 0, Infinity, () => 0).slot;
    t.set(keep, 0, 1_000);
    for (let i = 0; i < 100_000; i++) {
      const { slot, fresh } = t.claim(`junk${i}`, 0, Infinity, (j) => t.get(j, 0));
      if (fresh) t.set(slot, 0, 1);
    }
    expect(t.capacity).toBe(1024);
    expect(t.size).toBeLessThanOrEqual(1024);
    expect(t.find('precious', 0)).toBe(keep);
    expect(t.get(keep, 0)).toBe(1_000);
  });

  it('spreads keys over the whole table', () => {
    const t = new FixedTable(4096, 1);
    for (let i = 0; i < 4096; i++) t.claim(`k${i}`, 0, Infinity, () => 0);
    // 4,096 keys into 512 buckets of 8: with a uniform hash a bucket gets Poisson(8) keys and
    // keeps at most 8, so about 3,524 slots fill (standard deviation 35). A hash that clustered
    // keys would fill far fewer; 3,300 is more than six deviations below the mean.
    expect(t.size).toBeGreaterThan(3300);
  });
});
