/**
 * Several courier workers on one outbox (each with its own connection pool, as separate processes
 * would have on PostgreSQL): every message is delivered exactly once. On PostgreSQL this is FOR
 * UPDATE SKIP LOCKED at work; on SQLite two in-process workers share the connection and the
 * single writer serialises their claims.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../kernel/clock.js';
import { SecretBox } from '../../kernel/crypto.js';
import { Metrics } from '../../kernel/metrics.js';
import { openStorage, type Storage } from '../../storage/database.js';
import { DIALECTS, dropTestSchema, POSTGRES_URL, underSchemaLock } from '../../../test/helpers/harness.js';
import { startSmtpSink } from '../../../test/helpers/smtp.js';
import { enqueueMail } from '../../../test/helpers/courier.js';
import { SmtpChannel } from './channels/smtp.js';
import { Courier } from './courier.js';
import { Outbox } from './outbox.js';
import { courierStore } from './store.js';

const N = 300;

async function openTwo(dialect: string): Promise<{ a: Storage; b: Storage; drop(): Promise<void> }> {
  if (dialect === 'sqlite') {
    // better-sqlite3 is synchronous: two connections in one process would wait on each other's
    // locks with the event loop blocked. In-process workers share the one connection (Kysely
    // serialises its transactions); separate processes would each have their own.
    const dir = mkdtempSync(join(tmpdir(), 'floodgate-two-'));
    const a = await openStorage({ kind: 'sqlite', file: join(dir, 'floodgate.db') });
    return { a, b: a, drop: async () => { await a.close(); rmSync(dir, { recursive: true, force: true }); } };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const a = await underSchemaLock(() => openStorage({ kind: 'postgres', url: POSTGRES_URL! }, { schema, poolSize: 4 }));
  const b = await openStorage({ kind: 'postgres', url: POSTGRES_URL! }, { schema, poolSize: 4, migrate: false });
  return {
    a, b,
    drop: async () => {
      await a.close(); await b.close();
      await dropTestSchema(schema);
    },
  };
}

describe.each(DIALECTS)('two couriers on one outbox on %s', (dialect) => {
  it('deliver each message exactly once when draining concurrently', async () => {
    const sink = await startSmtpSink();
    const { a, b, drop } = await openTwo(dialect);
    const clock = new ManualClock();
    const box = new SecretBox(randomBytes(32));
    const outbox = new Outbox(clock, box);
    const courier = (s: Storage, workerId: string) => new Courier({
      db: s.db, dialect: s.dialect, clock, logger: pino({ level: 'silent' }), metrics: new Metrics(), outbox, publicUrl: 'http://floodgate.test',
      channels: { email: new SmtpChannel({ url: sink.url, from: 'Floodgate <security@example.test>', clock, dkim: null }) },
      batchSize: 10, concurrency: 4, workerId,
    });
    const one = courier(a, 'one');
    const two = courier(b, 'two');
    try {
      for (let i = 0; i < N; i++) await enqueueMail(outbox, a.db, 'signup_existing', `both${i}@example.test`, { email: `both${i}@example.test` });
      const [x, y] = await Promise.all([one.drain(), two.drain()]);
      expect(x + y).toBe(N);
      expect(x).toBeGreaterThan(0); // both took part
      expect(y).toBeGreaterThan(0);
      const counts = new Map<string, number>();
      for (const m of sink.messages) for (const to of m.to) counts.set(to, (counts.get(to) ?? 0) + 1);
      expect(counts.size).toBe(N);
      expect([...counts.values()].every((c) => c === 1)).toBe(true);
      const attempts = await a.db.selectFrom('outbox_attempts').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
      expect(Number(attempts.n)).toBe(N);
      const states = await a.db.selectFrom('outbox').select('state').distinct().execute();
      expect(states).toEqual([{ state: 'sent' }]);
    } finally {
      await one.stop();
      await two.stop();
      await drop();
      await sink.close();
    }
  }, 120_000);

  it('never hands one row to two workers, however tightly their claims race', async () => {
    const { a, b, drop } = await openTwo(dialect);
    const clock = new ManualClock();
    const outbox = new Outbox(clock, new SecretBox(randomBytes(32)));
    try {
      for (let i = 0; i < N; i++) await enqueueMail(outbox, a.db, 'signup_existing', `race${i}@example.test`, { email: `race${i}@example.test` });
      const claimed: string[] = [];
      // Claims only, no sending: the claims themselves overlap as much as they can.
      const worker = async (s: Storage, name: string) => {
        for (;;) {
          const rows = await courierStore.claimBatch(s.db, s.dialect, 7, { now: clock.now(), worker: name, leaseMs: 60_000 });
          if (!rows.length) return;
          claimed.push(...rows.map((r) => r.id));
        }
      };
      await Promise.all([worker(a, 'a1'), worker(b, 'b1'), worker(a, 'a2'), worker(b, 'b2')]);
      expect(claimed).toHaveLength(N);
      expect(new Set(claimed).size).toBe(N);
    } finally {
      await drop();
    }
  }, 120_000);
});
