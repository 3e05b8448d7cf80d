/**
 * Watches the hash jobs a PasswordHasher sends to its threads, described by what they cost (the
 * operation, the algorithm and its cost parameters, read from the job itself): what the timing
 * tests compare between sign-in paths. The jobs still run; only one that would hold a thread for
 * hours (a bcrypt cost above 20, as the code before the bounds would have sent) is failed at once,
 * as a hash that failed, and still recorded.
 */
import type { PasswordHasher } from '../../src/modules/accounts/password-hasher.js';
import type { HashOp } from '../../src/modules/accounts/hash-pool.js';

export function describeJob(job: HashOp): string {
  switch (job.op) {
    case 'argon2.verify': {
      const m = /^\$(argon2(?:id|i|d))\$(?:v=\d+\$)?(m=\d+,t=\d+,p=\d+)\$/.exec(job.stored);
      return m ? `argon2.verify ${m[1]} ${m[2]}` : 'argon2.verify (malformed)';
    }
    case 'bcrypt.verify': return `bcrypt.verify cost=${Number(job.stored.slice(4, 6))}`;
    case 'scrypt': return `scrypt ln=${Math.log2(job.options.N)},r=${job.options.r},p=${job.options.p}`;
    case 'argon2.hash': return 'argon2.hash';
    case 'bcrypt.hash': return `bcrypt.hash cost=${job.cost}`;
  }
}

export interface JobLog {
  /** Every job sent since the last `take`, with the job itself. */
  jobs: { what: string; job: HashOp }[];
  /** The descriptions sent since the last call, sorted; clears the log. */
  take(): string[];
}

export function watchHashJobs(hasher: PasswordHasher): JobLog {
  const pool = (hasher as unknown as { pool: { run<T>(job: HashOp): Promise<T> } }).pool;
  const run = pool.run.bind(pool);
  const log: JobLog = {
    jobs: [],
    take() {
      const out = log.jobs.map((j) => j.what).sort();
      log.jobs = [];
      return out;
    },
  };
  pool.run = <T>(job: HashOp): Promise<T> => {
    const what = describeJob(job);
    log.jobs.push({ what, job });
    if ((job.op === 'bcrypt.verify' || job.op === 'bcrypt.hash') && Number(what.split('=')[1]) > 20) return Promise.reject(new Error('hours of bcrypt: failed by the test'));
    return run<T>(job);
  };
  return log;
}
