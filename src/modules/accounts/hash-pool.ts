/**
 * Worker threads for password hashes. Invariants:
 * - at most `size` hashes compute at once, one per thread;
 * - each thread holds one more hash in its port behind the running one, so when a hash ends its
 *   core starts the next without waiting for the event loop to hand it over;
 * - beyond that, hashes wait here in arrival order (known and unknown accounts alike);
 * - a thread that dies fails only the hashes it held (as wrong passwords would) and is replaced;
 * - idle threads do not keep the process alive; busy ones do.
 *
 * Why threads of our own rather than a queue in front of libuv's pool: the queue lived on the
 * event loop, so a finished hash's turn passed to the next only when the loop got to it, and in
 * the sign-in bench the cores sat idle about 7% of the time. With the queue inside the hashing
 * threads that idle time goes. libuv's pool stays free for file reads and DNS lookups.
 *
 * Hand-written (about a hundred lines) rather than piscina: piscina loads its task from a file,
 * and the TypeScript sources under test have no JavaScript file to give it; the worker here is a
 * few lines of CommonJS evaluated in the thread, loading the same native modules by path.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export type HashOp =
  | { op: 'argon2.hash'; password: string; options: Record<string, number> }
  | { op: 'argon2.verify'; stored: string; password: string }
  | { op: 'bcrypt.verify'; stored: string; password: string }
  | { op: 'bcrypt.hash'; password: string; cost: number }
  | { op: 'scrypt'; password: string; salt: Buffer; keylen: number; options: { N: number; r: number; p: number; maxmem: number } };

const require = createRequire(import.meta.url);
const MODULES = { argon2: require.resolve('@node-rs/argon2'), bcrypt: require.resolve('@node-rs/bcrypt') };

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
const argon2 = require(workerData.argon2);
const bcrypt = require(workerData.bcrypt);
parentPort.on('message', ({ id, job }) => {
  try {
    let result;
    switch (job.op) {
      case 'argon2.hash': result = argon2.hashSync(job.password, job.options); break;
      case 'argon2.verify': result = argon2.verifySync(job.stored, job.password); break;
      case 'bcrypt.verify': result = bcrypt.verifySync(job.password, job.stored); break;
      case 'bcrypt.hash': result = bcrypt.hashSync(job.password, job.cost); break;
      case 'scrypt': result = scryptSync(job.password, job.salt, job.keylen, job.options); break;
      default: throw new Error('unknown hash operation');
    }
    parentPort.postMessage({ id, ok: true, result });
  } catch (e) {
    parentPort.postMessage({ id, ok: false, error: e && e.message ? String(e.message) : String(e) });
  }
});
`;

/** Hashes a thread holds: the running one and the next. */
const DEPTH = 2;

interface Pending {
  job: HashOp;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Thread {
  worker: Worker;
  held: Map<number, Pending>;
}

export class HashPool {
  private readonly threads: Thread[] = [];
  private readonly queue: Pending[] = [];
  private queueHead = 0;
  private seq = 0;
  private closed = false;

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError('hash pool size must be a whole number of at least 1');
  }

  run<T>(job: HashOp): Promise<T> {
    if (this.closed) return Promise.reject(new Error('hash pool closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ job, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** Hashes computing now, and hashes waiting for a thread (in a thread's port or here). */
  get load(): { running: number; waiting: number } {
    let running = 0, held = 0;
    for (const t of this.threads) {
      running += Math.min(1, t.held.size);
      held += t.held.size;
    }
    return { running, waiting: held - running + this.queue.length - this.queueHead };
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    for (const t of threads) for (const p of t.held.values()) p.reject(new Error('hash pool closed'));
    for (const p of this.queue.splice(0).slice(this.queueHead)) p.reject(new Error('hash pool closed'));
    this.queueHead = 0;
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private pump(): void {
    while (this.queueHead < this.queue.length) {
      const t = this.leastBusy();
      if (!t) return;
      const p = this.queue[this.queueHead++]!;
      const id = this.seq++;
      if (t.held.size === 0) t.worker.ref();
      t.held.set(id, p);
      t.worker.postMessage({ id, job: p.job });
    }
    // Drop the served prefix now and then rather than shifting on every hash.
    if (this.queueHead > 1024 || this.queueHead === this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
  }

  private leastBusy(): Thread | null {
    let best: Thread | null = null;
    for (const t of this.threads) if (t.held.size < DEPTH && (!best || t.held.size < best.held.size)) best = t;
    if (best && best.held.size === 0) return best;
    if (this.threads.length < this.size) return this.spawn();
    return best;
  }

  private spawn(): Thread {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: MODULES, name: 'floodgate-hash' });
    const t: Thread = { worker, held: new Map() };
    worker.unref();
    worker.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: string }) => {
      const p = t.held.get(m.id);
      if (!p) return;
      t.held.delete(m.id);
      if (t.held.size === 0) worker.unref();
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(m.error ?? 'hash failed'));
      this.pump();
    });
    const lost = (why: string) => {
      const i = this.threads.indexOf(t);
      if (i < 0) return;
      this.threads.splice(i, 1);
      for (const p of t.held.values()) p.reject(new Error(`hash thread ${why}`));
      t.held.clear();
      if (!this.closed) this.pump();
    };
    worker.on('error', (e) => lost(`failed: ${e.message}`));
    worker.on('exit', (code) => lost(`exited with ${code}`));
    this.threads.push(t);
    return t;
  }
}
