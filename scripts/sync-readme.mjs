#!/usr/bin/env node
// Rewrites the configuration table in README.md from the config schema (npx tsx scripts/sync-readme.mjs).
import { readFileSync, writeFileSync } from 'node:fs';
import { configReferenceMarkdown } from '../src/config/schema.ts';

const file = new URL('../README.md', import.meta.url);
const readme = readFileSync(file, 'utf8');
const next = readme.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${configReferenceMarkdown()}\n<!-- config:end -->`);
writeFileSync(file, next);
console.log(next === readme ? 'README.md configuration table already up to date' : 'README.md configuration table rewritten');
