/**
 * Crash recovery: a courier in a child process is SIGKILLed mid-batch; a second courier finishes.
 * Every message arrives at least once and at most twice (the ones in flight at the kill), none is lost.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, SECOND } from '../../kernel/clock.js';
import { SecretBox } from '../../kernel/crypto.js';
import { Metrics } from '../../kernel/metrics.js';
import { openStorage } from '../../storage/database.js';
import { startSmtpSink, waitFor } from '../../../test/helpers/smtp.js';
import { enqueueMail } from '../../../test/helpers/courier.js';
import { SmtpChannel } from './channels/smtp.js';
import { Courier } from './courier.js';
import { Outbox } from './outbox.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const N = 60;

describe('courier crash recovery on sqlite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-crash-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loses nothing and resends at most once when a courier is killed mid-batch', async () => {
    const file = join(dir, 'floodgate.db');
    const key = randomBytes(32);
    const sink = await startSmtpSink({ delayMs: 40 });
    const storage = await openStorage({ kind: 'sqlite', file });
    const clock = new ManualClock(Date.now());
    const outbox = new Outbox(clock, new SecretBox(key));
    const recipients = Array.from({ length: N }, (_, i) => `crash${i}@example.test`);
    for (const to of recipients) await enqueueMail(outbox, storage.db, 'verify_email', to, { email: to, expiresInMinutes: 30 }, { secret: { link: `http://floodgate.test/verify?token=${to}` } });

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/courier-crash-child.ts', file, sink.url, key.toString('hex')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const exited = new Promise<NodeJS.Signals | number | null>((r) => child.on('exit', (code, signal) => r(signal ?? code)));
    try {
      await waitFor(() => sink.messages.length >= 15 || child.exitCode !== null, 30_000);
      expect(child.exitCode, err).toBeNull();
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      await new Promise((r) => setTimeout(r, 300)); // messages the sink was still accepting land
      const before = sink.messages.length;
      expect(before).toBeLessThan(N); // killed mid-way, not after the end

      const stuck = await storage.db.selectFrom('outbox').select(['state', 'claimed_by']).where('state', '=', 'sending').execute();
      expect(stuck.length).toBeGreaterThan(0);
      expect(stuck.every((r) => r.claimed_by === 'doomed')).toBe(true);

      // The survivor: the doomed worker's lease (60 s) has passed on its clock.
      clock.set(Date.now() + 61 * SECOND);
      const survivor = new Courier({
        db: storage.db, dialect: 'sqlite', clock, logger: pino({ level: 'silent' }), metrics: new Metrics(), outbox, publicUrl: 'http://floodgate.test',
        channels: { email: new SmtpChannel({ url: sink.url, from: 'Floodgate <security@example.test>', clock, dkim: null }) },
      });
      await survivor.drain();
      await survivor.stop();

      const counts = new Map<string, number>();
      for (const m of sink.messages) for (const to of m.to) counts.set(to, (counts.get(to) ?? 0) + 1);
      for (const to of recipients) {
        expect(counts.get(to) ?? 0, to).toBeGreaterThanOrEqual(1);
        expect(counts.get(to), to).toBeLessThanOrEqual(2);
      }
      const duplicates = [...counts.values()].filter((c) => c === 2).length;
      expect(duplicates).toBeLessThanOrEqual(2); // at most the messages in flight (concurrency 2) at the kill
      const rows = await storage.db.selectFrom('outbox').select(['state', 'sealed']).execute();
      expect(rows.every((r) => r.state === 'sent' && r.sealed === null)).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await storage.close();
      await sink.close();
    }
  }, 90_000);
});
