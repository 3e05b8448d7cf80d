#!/usr/bin/env node
// Sign-ins per second through the whole service (HTTP, guard, throttle, argon2id verify, session
// insert, security event) next to raw argon2id verifications per second with the same parameters,
// measured in the same run on this machine. The ratio shows what the service adds.
//
// Method. On a shared 2-core machine the speed of argon2id itself drifts by 10-20% from one
// few-second window to the next (memory bandwidth, neighbours), so one long window of each would
// compare two different machines. The loads are measured in many short rounds, in an order that
// alternates, and each round's service rate is divided by that round's baselines:
//   - raw at its best: argon2id straight from @node-rs/argon2, whichever was fastest in the
//     round of three ways to run it: its async API at the client concurrency, its async API at
//     one hash per core (oversubscribed cores lose 5-20%), and its sync API in a loop on one
//     worker thread per core (no event loop at all between hashes); the goal is about this one;
//   - raw at the client concurrency (the only baseline before the hash queue existed);
//   - a bare Fastify route that parses the same body and verifies through the same hash queue,
//     answering 201: what any Fastify service with this client on this machine can reach, so
//     service/bare is what Floodgate itself adds (guard, throttle, SQL, session, event, cookie).
// Each figure is the median of the per-round ratios, with its quartiles.
//
// The service (with its default log level, info) and the bare route each run in a process of
// their own, and the load comes from this one through lean keep-alive connections (lib.mjs): the
// machine has two cores, so whatever CPU the load generator spends is taken from the hashes, and
// Node's own http client spends about 1 ms per request, a sixteenth of a hash. The CPU time of
// the service process and of this one per sign-in are printed, so what the ratio hides is shown.
import { createRequire } from 'node:module';
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { hash, verify } from '@node-rs/argon2';
import { ADMIN, closedLoop, freePort, leanConnection, post, postBytes, processCpuMs, startFloodgate } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS || 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 10);
const CORES = availableParallelism();
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 4);
const PARAMS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const PASSWORD = 'bench passphrase 0123';
const hashEnv = process.env.FLOODGATE_HASH_CONCURRENCY ? { FLOODGATE_HASH_CONCURRENCY: process.env.FLOODGATE_HASH_CONCURRENCY } : {};

const phc = await hash(PASSWORD, PARAMS);
const rawVerify = async () => { if (!(await verify(phc, PASSWORD))) throw new Error('verify failed'); };
await closedLoop(1, CONCURRENCY, rawVerify); // warm-up

// One thread per core, each verifying in a loop with the sync API for the window.
const ARGON2_PATH = createRequire(import.meta.url).resolve('@node-rs/argon2');
const LOOP_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { verifySync } = require(workerData.argon2);
parentPort.on('message', (ms) => {
  let n = 0; const t0 = performance.now();
  while (performance.now() - t0 < ms) { if (!verifySync(workerData.phc, workerData.password)) throw new Error('verify failed'); n++; }
  parentPort.postMessage({ n, ms: performance.now() - t0 });
});`;
const loopers = Array.from({ length: CORES }, () => new Worker(LOOP_SOURCE, { eval: true, workerData: { argon2: ARGON2_PATH, phc, password: PASSWORD } }));
async function rawThreads(seconds) {
  const got = await Promise.all(loopers.map((w) => new Promise((res) => { w.once('message', res); w.postMessage(seconds * 1000); })));
  return got.reduce((a, g) => a + g.n / (g.ms / 1000), 0);
}
await rawThreads(1); // warm-up

// The service: `floodgate serve` on its defaults but for the courier (nothing to deliver here).
const fg = await startFloodgate({ FLOODGATE_COURIER: 'off', FLOODGATE_LOG_LEVEL: 'info', ...hashEnv });
const barePort = await freePort();
const bare = fork(new URL('./bare-signin.mjs', import.meta.url).pathname, [String(barePort), phc], { stdio: 'ignore', env: { ...process.env, ...hashEnv } });
await new Promise((res, rej) => { bare.once('message', res); bare.once('exit', (c) => rej(new Error(`bare route exited with ${c}`))); });

const users = Array.from({ length: 64 }, (_, i) => `bench${i}@example.test`);
for (const email of users) await post(fg.url, '/api/v1/admin/users', { email, password: PASSWORD, emailVerified: true }, { authorization: `Bearer ${ADMIN}` });
// Measure the sign-in itself: the flow is held in normal by an operator override (a thousand
// sign-ins a minute from fresh addresses would otherwise, rightly, be challenged), and each
// request comes from its own address (per-source limits are not what is measured here).
await fetch(`${fg.url}/api/v1/admin/guard/flows/signin`, { method: 'PUT', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'normal', reason: 'bench' }) });
const requests = Array.from({ length: 1 << 15 }, (_, n) => postBytes('/api/v1/sessions', { email: users[n % users.length], password: PASSWORD }, { 'x-forwarded-for': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` }));
let next = 0, bad = 0;
async function connections(port) {
  const conns = Array.from({ length: CONCURRENCY }, () => leanConnection(port));
  await Promise.all(conns.map((c) => c.ready));
  return conns;
}
const targets = { service: { conns: await connections(Number(new URL(fg.url).port)), pid: fg.pid }, bare: { conns: await connections(barePort), pid: bare.pid } };
const cpu = { service: { server: 0, client: 0, n: 0 }, bare: { server: 0, client: 0, n: 0 } };
async function signIns(name, seconds) {
  const t = targets[name];
  const s0 = processCpuMs(t.pid), c0 = process.cpuUsage(), n0 = next;
  let done = 0;
  const start = performance.now(), end = start + seconds * 1000;
  await Promise.all(t.conns.map(async (c) => {
    while (performance.now() < end) {
      if ((await c.request(requests[next++ % requests.length])) !== 201) bad++;
      done++;
    }
  }));
  const rate = done / ((performance.now() - start) / 1000);
  const c = process.cpuUsage(c0);
  cpu[name].server += processCpuMs(t.pid) - s0; cpu[name].client += (c.user + c.system) / 1000; cpu[name].n += next - n0;
  return rate;
}
const loads = {
  rawC: () => closedLoop(SECONDS, CONCURRENCY, rawVerify),
  rawCores: () => closedLoop(SECONDS, CORES, rawVerify),
  rawThreads: () => rawThreads(SECONDS),
  bare: () => signIns('bare', SECONDS),
  service: () => signIns('service', SECONDS),
};
await loads.service(); await loads.bare(); // warm-up
for (const k of Object.keys(cpu)) cpu[k] = { server: 0, client: 0, n: 0 };

const rates = { rawC: [], rawCores: [], rawThreads: [], bare: [], service: [] };
const ratio = { best: [], rawC: [], bare: [], bareBest: [] };
console.log(`cores ${CORES}, client concurrency ${CONCURRENCY}, hash concurrency ${process.env.FLOODGATE_HASH_CONCURRENCY || CORES}, ${ROUNDS} rounds of 5 x ${SECONDS} s, argon2id m=19456 t=2 p=1`);
for (let r = 1; r <= ROUNDS; r++) {
  const order = r % 2 ? ['rawC', 'service', 'rawThreads', 'rawCores', 'bare'] : ['bare', 'rawCores', 'rawThreads', 'service', 'rawC'];
  const got = {};
  for (const k of order) got[k] = await loads[k]();
  for (const k of order) rates[k].push(got[k]);
  const best = Math.max(got.rawC, got.rawCores, got.rawThreads);
  ratio.best.push(got.service / best); ratio.rawC.push(got.service / got.rawC); ratio.bare.push(got.service / got.bare); ratio.bareBest.push(got.bare / best);
  console.log(`  round ${String(r).padStart(2)}: raw x${CONCURRENCY} ${got.rawC.toFixed(1)}, raw x${CORES} ${got.rawCores.toFixed(1)}, raw threads ${got.rawThreads.toFixed(1)}, bare Fastify ${got.bare.toFixed(1)}, service ${got.service.toFixed(1)} /s; service/best raw ${ratio.best.at(-1).toFixed(3)}`);
}
for (const t of Object.values(targets)) t.conns.forEach((c) => c.close());
await fg.stop();
await new Promise((res) => { bare.once('exit', res); bare.kill('SIGTERM'); });
await Promise.all(loopers.map((w) => w.terminate()));

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); const x = (s.length - 1) * q, lo = Math.floor(x); return s[lo] + (s[Math.ceil(x)] - s[lo]) * (x - lo); };
const med = (xs) => quantile(xs, 0.5).toFixed(1);
const fig = (xs) => `${quantile(xs, 0.5).toFixed(3)}  (quartiles ${quantile(xs, 0.25).toFixed(3)}-${quantile(xs, 0.75).toFixed(3)})`;
const per = (k) => `server process ${(cpu[k].server / cpu[k].n).toFixed(2)} ms, load generator ${(cpu[k].client / cpu[k].n).toFixed(2)} ms`;
const hashMs = (1000 * CORES) / quantile(rates.rawThreads, 0.5);
console.log(`raw argon2id verify:        ${med(rates.rawC)} /s async ${CONCURRENCY} at once, ${med(rates.rawCores)} /s async ${CORES} at once, ${med(rates.rawThreads)} /s sync on ${CORES} threads (medians; one hash ~${hashMs.toFixed(1)} ms of CPU)`);
console.log(`bare Fastify route + hash:  ${med(rates.bare)} /s (median); CPU per sign-in: ${per('bare')}`);
console.log(`sign-ins through service:   ${med(rates.service)} /s (median); CPU per sign-in: ${per('service')}${bad ? `  (${bad} non-201 answers!)` : ''}`);
console.log(`ratio service/raw x${CONCURRENCY}:       ${fig(ratio.rawC)}`);
console.log(`ratio bare/best raw:        ${fig(ratio.bareBest)}  (the ceiling for a Fastify service here)`);
console.log(`ratio service/bare:         ${fig(ratio.bare)}  (what Floodgate adds)`);
console.log(`ratio service/best raw:     ${fig(ratio.best)}  (goal >= 0.9)`);
