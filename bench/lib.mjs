// Shared bench helpers: start Floodgate as its own process (so the load generator does not share
// its event loop), keep-alive HTTP, a lean HTTP client for CPU-bound loads, closed loops,
// percentiles, Mann-Whitney.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import net from 'node:net';

export const ROOT = new URL('..', import.meta.url).pathname;
export const ADMIN = 'bench-admin-token-0123456789';

export function freePort() {
  return new Promise((res) => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}

export async function startFloodgate(env = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'fg-bench-'));
  const child = spawn(process.execPath, [join(ROOT, 'bin/floodgate.js'), 'serve'], {
    cwd: dir, stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLOODGATE_'))), NODE_ENV: 'production', FLOODGATE_PORT: String(port), FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'fg.db')}`, FLOODGATE_DATA_DIR: dir, FLOODGATE_ADMIN_TOKEN: ADMIN, FLOODGATE_LOG_LEVEL: 'warn', FLOODGATE_TRUST_PROXY: 'loopback', FLOODGATE_PUBLIC_URL: `http://127.0.0.1:${port}`, ...env },
  });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(url + '/healthz')).status === 200) return { url, pid: child.pid, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }) }; } catch { /* not yet */ }
    if (child.exitCode !== null) throw new Error(`floodgate exited: ${err.slice(-500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('floodgate did not start');
}

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** POST JSON; resolves with status and the time to response headers (ms). */
export function post(base, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    const t0 = process.hrtime.bigint();
    const req = http.request(base + path, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers } }, (res) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * A lean keep-alive HTTP/1.1 connection for loads where the client's own CPU time matters (on a
 * 2-core machine it is taken from the server): one request at a time, each a whole prebuilt
 * buffer (postBytes), answers parsed only for their status and Content-Length. Node's http
 * client costs about 1 ms of CPU per request on this machine; this, about a third of that.
 * Written by hand because a load generator in C (wrk) is not on every machine; it only speaks to
 * Floodgate's own answers (Content-Length bodies, no chunked encoding).
 */
export function leanConnection(port) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  let buf = Buffer.alloc(0);
  let waiting = null;
  socket.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const end = buf.indexOf('\r\n\r\n');
    if (!waiting || end < 0) return;
    const head = buf.toString('latin1', 0, end);
    if (/\r\ntransfer-encoding:/i.test(head)) { waiting.reject(new Error('leanConnection: chunked answer')); waiting = null; return; }
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const total = end + 4 + (length ? Number(length[1]) : 0);
    if (buf.length < total) return;
    buf = buf.subarray(total);
    const w = waiting;
    waiting = null;
    w.resolve(Number(head.slice(9, 12)));
  });
  const fail = (e) => { if (waiting) { waiting.reject(e); waiting = null; } };
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('leanConnection: closed by the server')));
  return {
    ready: new Promise((res, rej) => { socket.once('connect', res); socket.once('error', rej); }),
    /** Sends one request; resolves with the answer's status. */
    request(bytes) { return new Promise((resolve, reject) => { waiting = { resolve, reject }; socket.write(bytes); }); },
    close() { socket.destroy(); },
  };
}

/** A whole HTTP/1.1 POST of a JSON body, as bytes for leanConnection. */
export function postBytes(path, body, headers = {}) {
  const payload = Buffer.from(JSON.stringify(body));
  let head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`), payload]);
}

/** CPU time (ms) a process has used so far, from /proc (Linux): user + system, all threads. */
export function processCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * (1000 / 100); // clock ticks: USER_HZ is 100 on Linux
}

export async function closedLoop(seconds, concurrency, op) {
  let done = 0;
  const start = performance.now(), end = start + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => { while (performance.now() < end) { await op(); done++; } }));
  return done / ((performance.now() - start) / 1000); // the last operations end after `end`
}

export function percentile(xs, p) { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; }

export function mannWhitneyZ(a, b) {
  const all = a.map((v) => [v, 0]).concat(b.map((v) => [v, 1])).sort((x, y) => x[0] - y[0]);
  const ranks = new Array(all.length);
  for (let i = 0; i < all.length;) { let j = i; while (j < all.length && all[j][0] === all[i][0]) j++; for (let k = i; k < j; k++) ranks[k] = (i + j + 1) / 2; i = j; }
  let ra = 0; all.forEach((x, i) => { if (x[1] === 0) ra += ranks[i]; });
  const n1 = a.length, n2 = b.length; const u = ra - n1 * (n1 + 1) / 2;
  return Math.abs((u - n1 * n2 / 2) / Math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
