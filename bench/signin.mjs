#!/usr/bin/env node
// Sign-ins per second through the whole service (HTTP, throttle, argon2id verify, session insert,
// security event) next to raw argon2id verifications per second with the same parameters and
// concurrency, measured in the same run on this machine. The ratio shows what the service adds.
// The two are measured in alternating rounds and compared by their medians: on a shared 2-core
// machine the speed drifts by several percent within a minute, and alternating puts the drift
// on both sides.
import { mkdtempSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { hash, verify } from '@node-rs/argon2';
import pino from 'pino';
import { loadConfig } from '../dist/config/schema.js';
import { createFloodgate } from '../dist/main.js';

const SECONDS = Number(process.env.BENCH_SECONDS || 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY || 4);
const PARAMS = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const PASSWORD = 'bench passphrase 0123';

async function closedLoop(seconds, concurrency, op) {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (performance.now() < end) { await op(); done++; } }));
  return done / seconds;
}

const phc = await hash(PASSWORD, PARAMS);
await closedLoop(1, CONCURRENCY, () => verify(phc, PASSWORD)); // warm-up
const rawOnce = () => closedLoop(SECONDS, CONCURRENCY, async () => { if (!(await verify(phc, PASSWORD))) throw new Error('verify failed'); });

const dir = mkdtempSync(join(tmpdir(), 'fg-bench-'));
const config = loadConfig({ FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir, FLOODGATE_ADMIN_TOKEN: 'bench-admin-token-0123456789', FLOODGATE_PORT: '0', FLOODGATE_LOG_LEVEL: 'silent', FLOODGATE_COURIER: 'off', FLOODGATE_TRUST_PROXY: 'loopback' });
const fg = await createFloodgate(config, { logger: pino({ level: 'silent' }) });
await fg.app.listen({ port: 0, host: '127.0.0.1' });
const port = fg.app.server.address().port;
const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
function post(path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject); req.end(payload);
  });
}
const users = Array.from({ length: 64 }, (_, i) => `bench${i}@example.test`);
for (const email of users) await post('/api/v1/admin/users', { email, password: PASSWORD, emailVerified: true }, { authorization: 'Bearer bench-admin-token-0123456789' });
// Measure the sign-in itself: the flow is held in normal by an operator override (a thousand
// sign-ins a minute from fresh addresses would otherwise, rightly, be challenged), and each
// request comes from its own address (per-source limits are not what is measured here).
await fetch(`http://127.0.0.1:${port}/api/v1/admin/guard/flows/signin`, { method: 'PUT', headers: { authorization: 'Bearer bench-admin-token-0123456789', 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'normal', reason: 'bench' }) });
let i = 0, bad = 0;
const signIn = async () => { const n = i++; const s = await post('/api/v1/sessions', { email: users[n % users.length], password: PASSWORD }, { 'x-forwarded-for': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` }); if (s !== 201) bad++; };
await closedLoop(1, CONCURRENCY, signIn);
const raws = [], services = [];
console.log(`cores ${availableParallelism()}, concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${SECONDS} s each, argon2id m=19456 t=2 p=1`);
for (let r = 1; r <= ROUNDS; r++) {
  raws.push(await rawOnce());
  services.push(await closedLoop(SECONDS, CONCURRENCY, signIn));
  console.log(`  round ${r}: raw ${raws.at(-1).toFixed(1)} /s, service ${services.at(-1).toFixed(1)} /s, ratio ${(services.at(-1) / raws.at(-1)).toFixed(3)}`);
}
await fg.close();
agent.destroy();

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const raw = median(raws), service = median(services);
console.log(`raw argon2id verify:      ${raw.toFixed(1)} /s (median)`);
console.log(`sign-ins through service: ${service.toFixed(1)} /s (median)${bad ? `  (${bad} non-201 answers!)` : ''}`);
console.log(`ratio service/raw:        ${(service / raw).toFixed(3)}  (goal >= 0.9)`);
