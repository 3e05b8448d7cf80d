#!/usr/bin/env node
// The local breached-password list: how big it is, what it costs in memory and build time, and
// how fast a lookup is, next to the same list kept as a Set of strings (the obvious alternative).
// Run: npm run bench -- breached   (node --expose-gc gives steadier memory figures)
import { performance } from 'node:perf_hooks';
import { buildPrefixSet, hasPrefix, loadZxcvbnPasswords } from '../dist/modules/mfa/breached.js';

const gc = globalThis.gc ?? (() => {});
const mem = () => { gc(); gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
const kb = (b) => `${Math.round(b / 1024)} KB`;

const t0 = performance.now();
const before = mem();
let raw = loadZxcvbnPasswords();
const entries = raw.length;
const set = buildPrefixSet(raw);
const buildMs = performance.now() - t0;
raw = null;
const after = mem();

const t1 = performance.now();
let strings = new Set(loadZxcvbnPasswords().map((p) => p.toLowerCase()));
const setMs = performance.now() - t1;
const afterSet = mem();

const probes = ['password1', 'iloveyou12', 'correct horse battery staple', 'Zx9!vQ2#mL7$', 'qwertyuiop', 'a passphrase of my own 42'];
const N = 200_000;
let hits = 0;
const t2 = performance.now();
for (let i = 0; i < N; i++) if (hasPrefix(set, probes[i % probes.length])) hits++;
const lookupUs = ((performance.now() - t2) * 1000) / N;
let setHits = 0;
const t3 = performance.now();
for (let i = 0; i < N; i++) if (strings.has(probes[i % probes.length].toLowerCase())) setHits++;
const setLookupUs = ((performance.now() - t3) * 1000) / N;

console.log(`entries in @zxcvbn-ts/language-common passwords: ${entries}`);
console.log(`distinct 64-bit SHA-1 prefixes:                 ${set.length}`);
console.log(`sorted BigUint64Array:  ${kb(set.byteLength)} of data; heap+buffers after build ${kb(after - before)}; build ${buildMs.toFixed(0)} ms`);
console.log(`Set<string> (baseline): heap+buffers ${kb(afterSet - after)}; build ${setMs.toFixed(0)} ms`);
console.log(`lookup (SHA-1 + binary search): ${lookupUs.toFixed(2)} µs   Set.has baseline: ${setLookupUs.toFixed(3)} µs   (both find ${Math.round((hits * probes.length) / N)} of the ${probes.length} probes: ${Math.round((setHits * probes.length) / N)})`);
strings = null;
