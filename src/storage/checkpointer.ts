/**
 * SQLite WAL checkpoints off the event loop.
 *
 * By default SQLite checkpoints inside whichever commit pushes the WAL past 1,000 pages: that
 * commit copies the pages into the database file and fsyncs it, on the thread that committed,
 * which for better-sqlite3 is the event loop. Measured on a sign-in, the commit that does it
 * took the average commit from 69 µs to 158 µs, and every request queued behind it waited.
 *
 * So the main connection turns automatic checkpoints off, and a watcher looks at the WAL file's
 * size once a second (an async stat, on libuv's pool). Past `thresholdBytes` it asks a worker
 * thread, started on first need and holding its own connection, for a PASSIVE checkpoint, which
 * never blocks readers or writers; the writer that next restarts the WAL cuts the file back
 * (journal_size_limit), so its size keeps telling whether there is work. A database that stays
 * small never starts the worker. SQLite
 * itself checkpoints when the last connection closes, so nothing is left behind on shutdown.
 */
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Checkpoint once the WAL file is larger than this (default 4 MiB, SQLite's own 1,000 pages). */
  thresholdBytes?: number;
  /** How often to look at the WAL's size (default 1 s). */
  intervalMs?: number;
  onError?: (err: unknown) => void;
}

export interface CheckpointStats {
  checkpoints: number;
  /** Pages moved into the database file by the last checkpoint. */
  lastPages: number;
}

// Runs in the worker: one connection, a PASSIVE checkpoint per message, the result posted back.
// Evaluated as a script (not a module file) so the same code runs from src/ under the tests and
// from dist/ in production; better-sqlite3 is resolved by the parent and passed in.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 5000');
parentPort.on('message', (m) => {
  if (m === 'close') { db.close(); parentPort.close(); return; }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)');
    parentPort.postMessage({ ok: true, pages: r.checkpointed });
  } catch (e) {
    parentPort.postMessage({ ok: false, error: String(e && e.message || e) });
  }
});
`;

export class WalCheckpointer {
  readonly stats: CheckpointStats = { checkpoints: 0, lastPages: 0 };
  private worker: Worker | null = null;
  private busy = false;
  private readonly timer: NodeJS.Timeout;
  readonly thresholdBytes: number;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly opts: CheckpointerOptions = {},
  ) {
    this.thresholdBytes = opts.thresholdBytes ?? 4 * 1024 * 1024;
    this.timer = setInterval(() => void this.tick(), opts.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Look at the WAL and checkpoint if it is past the threshold; resolves when done (for tests). */
  async tick(): Promise<void> {
    if (this.busy || this.closed) return;
    this.busy = true;
    try {
      const size = await stat(`${this.file}-wal`).then((s) => s.size, () => 0);
      if (size > this.thresholdBytes && !this.closed) await this.checkpoint();
    } catch (e) {
      this.opts.onError?.(e);
    } finally {
      this.busy = false;
    }
  }

  private checkpoint(): Promise<void> {
    const w = (this.worker ??= this.start());
    return new Promise((resolve, reject) => {
      const onExit = () => reject(new Error('the checkpoint worker stopped'));
      w.once('exit', onExit);
      w.once('message', (m: { ok: boolean; pages?: number; error?: string }) => {
        w.off('exit', onExit);
        if (!m.ok) return reject(new Error(`WAL checkpoint failed: ${m.error}`));
        this.stats.checkpoints++;
        this.stats.lastPages = m.pages ?? 0;
        resolve();
      });
      w.postMessage('checkpoint');
    });
  }

  private start(): Worker {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const w = new Worker(WORKER, { eval: true, workerData: { file: this.file, driver } });
    w.unref();
    w.on('error', (e) => {
      this.opts.onError?.(e);
      this.worker = null;
    });
    return w;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      // Unref'd while it works, so it never keeps a process alive; ref'd now, or a process with
      // nothing else left to do would exit under our feet before the worker closes its connection.
      w.ref();
      w.postMessage('close');
      setTimeout(() => void w.terminate(), 5000).unref();
    });
  }
}
