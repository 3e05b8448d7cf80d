#!/usr/bin/env node
// npm run bench: every benchmark, one after another, each in its own process (so one's heap and
// threads do not colour the next). Each prints its figures next to a baseline measured in the
// same run. Pass names to run some: npm run bench -- signin
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const ALL = ['signin', 'import', 'reset-timing', 'signin-timing', 'courier', 'breached', 'guard'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ALL;
let failed = 0;
for (const name of wanted) {
  const file = new URL(`./${name}.mjs`, import.meta.url);
  if (!existsSync(file)) { console.log(`\n## ${name}: no bench/${name}.mjs yet`); continue; }
  console.log(`\n## ${name}`);
  const r = spawnSync(process.execPath, ['--expose-gc', file.pathname], { stdio: 'inherit', env: process.env });
  if (r.status !== 0) { failed++; console.log(`(${name} exited with ${r.status})`); }
}
process.exit(failed ? 1 : 0);
