#!/usr/bin/env node
// Rewrites the endpoint table in docs/api.md from the live OpenAPI document (npx tsx scripts/sync-api-doc.mjs).
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config/schema.ts';
import { createFloodgate } from '../src/main.ts';
import { endpointTable } from '../src/http/api-doc.ts';

const dir = mkdtempSync(join(tmpdir(), 'fg-doc-'));
const fg = await createFloodgate(loadConfig({ FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir, FLOODGATE_LOG_LEVEL: 'silent' }), { logger: pino({ level: 'silent' }) });
await fg.app.ready();
const table = endpointTable(fg.app.swagger());
await fg.close();
const file = new URL('../docs/api.md', import.meta.url);
const doc = readFileSync(file, 'utf8');
const next = doc.replace(/<!-- endpoints:start -->[\s\S]*<!-- endpoints:end -->/, `<!-- endpoints:start -->\n${table}\n<!-- endpoints:end -->`);
writeFileSync(file, next);
console.log(next === doc ? 'docs/api.md endpoint table already up to date' : 'docs/api.md endpoint table rewritten');
process.exit(0);
