#!/usr/bin/env node
// Runs the compiled CLI (npm run build). From a source checkout, `npm start` builds first.
import '../dist/cli/index.js';
