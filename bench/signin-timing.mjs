#!/usr/bin/env node
// Enumeration by sign-in timing: POST /api/v1/sessions with a wrong password for an unknown email,
// an argon2id account, an imported bcrypt account and an imported scrypt account, one of each per
// round in random order, paced, from rotating client addresses (a trusted proxy), with the flow
// held in `normal` by an operator override so the 401 path itself is measured. Each email is
// tried once (per-account delays are not what is measured). Prints each latency distribution and
// the Mann-Whitney |z| between each pair (the goal: every |z| < 3.5).
// BENCH_TIMING_N rounds (default 300); the imported hashes are bcrypt at BENCH_BCRYPT_COST
// (default 10, PHP's and Spring's default) and scrypt at ln=BENCH_SCRYPT_LN, r=8, p=1 (default 14,
// Django's).
import { randomBytes, scryptSync } from 'node:crypto';
import { hash as argonHash } from '@node-rs/argon2';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import { ADMIN, mannWhitneyZ, percentile, post, sleep, startFloodgate } from './lib.mjs';

const N = Number(process.env.BENCH_TIMING_N || 300);
const BCRYPT_COST = Number(process.env.BENCH_BCRYPT_COST || 10);
const SCRYPT_LN = Number(process.env.BENCH_SCRYPT_LN || 14);
const PASSWORD = 'the right passphrase';

const salt = randomBytes(16);
const hashes = {
  argon2id: await argonHash(PASSWORD, { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 }),
  bcrypt: await bcryptHash(PASSWORD, BCRYPT_COST),
  scrypt: `$scrypt$ln=${SCRYPT_LN},r=8,p=1$${salt.toString('base64')}$${
    scryptSync(PASSWORD, salt, 32, { N: 2 ** SCRYPT_LN, r: 8, p: 1, maxmem: 2 ** 30 }).toString('base64')}`,
};
const KINDS = ['unknown', 'argon2id', 'bcrypt', 'scrypt'];
const emailOf = (kind, i) => `${kind}${i}@example.test`;

const fg = await startFloodgate({ FLOODGATE_COURIER: 'off' });
const auth = { authorization: `Bearer ${ADMIN}` };
const lines = [];
for (const kind of KINDS.slice(1)) for (let i = 0; i < N + 10; i++) lines.push(JSON.stringify({ email: emailOf(kind, i), passwordHash: hashes[kind], emailVerified: true }));
const imported = JSON.parse((await post(fg.url, '/api/v1/admin/users/import', lines.join('\n'), { ...auth, 'content-type': 'application/x-ndjson' })).text);
if (imported.failed) throw new Error(`import: ${JSON.stringify(imported.errors.slice(0, 3))}`);
await fetch(fg.url + '/api/v1/admin/guard/flows/signin', {
  method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ mode: 'normal', reason: 'bench: measure the 401 path' }),
});

let ipn = 0;
const ip = () => { ipn++; return `10.${(ipn >> 16) & 255}.${(ipn >> 8) & 255}.${ipn & 255}`; };
const signIn = async (email) => {
  const r = await post(fg.url, '/api/v1/sessions', { email, password: 'a wrong passphrase' }, { 'x-forwarded-for': ip() });
  if (r.status !== 401) throw new Error(`unexpected ${r.status}: ${r.text}`);
  return r;
};
// Warm-up, not measured: the first sign-in reads the stored hash kinds and makes their dummies.
for (let i = N; i < N + 10; i++) for (const kind of KINDS) await signIn(emailOf(kind, i));

const ms = Object.fromEntries(KINDS.map((k) => [k, []]));
const bodies = new Set();
for (let i = 0; i < N; i++) {
  const order = [...KINDS].sort(() => Math.random() - 0.5);
  for (const kind of order) {
    const r = await signIn(emailOf(kind, i));
    bodies.add(r.text.replace(/"requestId":"[^"]*"/, ''));
    ms[kind].push(r.ms);
    await sleep(5);
  }
}
await fg.stop();

const f = (xs) => `median ${percentile(xs, 50).toFixed(2)} ms, p10 ${percentile(xs, 10).toFixed(2)}, p90 ${percentile(xs, 90).toFixed(2)}, p99 ${percentile(xs, 99).toFixed(2)}`;
console.log(`${N} rounds of one wrong-password sign-in each: unknown email, argon2id account, imported bcrypt (cost ${BCRYPT_COST}), imported scrypt (ln=${SCRYPT_LN}, r=8, p=1)`);
for (const k of KINDS) console.log(`${k.padEnd(9)} ${f(ms[k])}`);
let worst = 0;
for (let a = 0; a < KINDS.length; a++) {
  for (let b = a + 1; b < KINDS.length; b++) {
    const z = mannWhitneyZ(ms[KINDS[a]], ms[KINDS[b]]);
    worst = Math.max(worst, z);
    console.log(`|z| ${KINDS[a]} vs ${KINDS[b]}: ${z.toFixed(2)}; ratio of medians ${(percentile(ms[KINDS[a]], 50) / percentile(ms[KINDS[b]], 50)).toFixed(3)}`);
  }
}
console.log(`largest |z| ${worst.toFixed(2)} (goal < 3.5: indistinguishable); distinct response bodies: ${bodies.size} (must be 1)`);
process.exit(0);
