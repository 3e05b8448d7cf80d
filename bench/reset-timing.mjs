#!/usr/bin/env node
// Enumeration by timing: POST /api/v1/password-resets for known and unknown emails, 500+ each,
// interleaved in random order and paced, from rotating client addresses (a trusted proxy), with the
// flow held in `normal` by an operator override so the 202 path itself is measured. Prints both
// latency distributions and the Mann-Whitney |z| (below ~3 means no detectable difference).
import { ADMIN, mannWhitneyZ, percentile, post, sleep, startFloodgate } from './lib.mjs';

const N = Number(process.env.BENCH_TIMING_N || 600);
const fg = await startFloodgate();
const auth = { authorization: `Bearer ${ADMIN}` };
const users = Array.from({ length: N }, (_, i) => JSON.stringify({ email: `known${i}@example.test`, password: 'timing bench passphrase', emailVerified: true })).join('\n');
await post(fg.url, '/api/v1/admin/users/import', users, { ...auth, 'content-type': 'application/x-ndjson' });
await fetch(fg.url + '/api/v1/admin/guard/flows/reset', { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'normal', reason: 'bench: measure the 202 path' }) });
let ipn = 0;
const ip = () => { ipn++; return `10.${(ipn >> 8) & 255}.${ipn & 255}.${1 + (ipn % 200)}`; };
const known = [], unknown = [];
const bodies = new Set();
for (let i = 0; i < N; i++) {
  const order = Math.random() < 0.5 ? ['k', 'u'] : ['u', 'k'];
  for (const which of order) {
    const email = which === 'k' ? `known${i}@example.test` : `nobody${i}@example.test`;
    const r = await post(fg.url, '/api/v1/password-resets', { email }, { 'x-forwarded-for': ip() });
    if (r.status !== 202) throw new Error(`unexpected ${r.status}: ${r.text}`);
    bodies.add(r.text);
    (which === 'k' ? known : unknown).push(r.ms);
    await sleep(5);
  }
}
await fg.stop();
const f = (xs) => `median ${percentile(xs, 50).toFixed(3)} ms, p90 ${percentile(xs, 90).toFixed(3)}, p99 ${percentile(xs, 99).toFixed(3)}`;
console.log(`${N} known and ${N} unknown emails, interleaved, 202 path`);
console.log(`known:   ${f(known)}`);
console.log(`unknown: ${f(unknown)}`);
console.log(`ratio of medians known/unknown: ${(percentile(known, 50) / percentile(unknown, 50)).toFixed(3)}; Mann-Whitney |z| = ${mannWhitneyZ(known, unknown).toFixed(2)} (|z| < 3: indistinguishable)`);
console.log(`distinct response bodies: ${bodies.size} (must be 1)`);
process.exit(0);
