/**
 * The pages' own JavaScript, served from /assets/ (the CSP allows only same-origin scripts, no
 * inline ones). Progressive enhancement only: every page works without it. Rules for this code:
 * data from the server is put into the page with textContent / createElement, never innerHTML.
 */

/** Registers the proof-of-work worker for the ALTCHA widget (the external build bundles none, so no blob: workers and no inline styles). */
export const ALTCHA_INIT_JS = `import '/assets/altcha.js';
const pbkdf2 = () => new Worker('/assets/altcha-pbkdf2.js');
for (const name of ['PBKDF2/SHA-256', 'PBKDF2/SHA-384', 'PBKDF2/SHA-512']) globalThis.$altcha.algorithms.set(name, pbkdf2);
`;

/** The console overview: uPlot charts fed by Server-Sent Events from /console/events. */
export const CONSOLE_JS = `import uPlot from '/assets/uplot.js';

const status = document.getElementById('live-status');
const elReq = document.getElementById('chart-requests');
const elMail = document.getElementById('chart-mail');
const POINTS = 150; // five minutes of 2-second samples

function text(el, value) { if (el) el.textContent = value; }
function pct(v) { return v === null || v === undefined ? '\\u2014' : Math.round(v * 100) + '%'; }
function badge(mode) {
  const s = document.createElement('span');
  s.className = 'badge ' + ({ normal: 'ok', challenge: 'warn', hold: 'bad' }[mode] || '');
  s.textContent = mode;
  return s;
}
function topList(cell, items) {
  if (!cell) return;
  cell.replaceChildren();
  for (const t of items.slice(0, 3)) {
    const c = document.createElement('code');
    c.textContent = t.item;
    cell.append(c, ' ' + t.count, document.createElement('br'));
  }
}

function updateFlows(flows) {
  for (const f of flows) {
    const row = document.querySelector('tr[data-flow="' + CSS.escape(f.flow) + '"]');
    if (!row) continue;
    const cell = (k) => row.querySelector('[data-k="' + k + '"]');
    const mode = cell('mode');
    if (mode) { mode.replaceChildren(badge(f.mode)); if (f.override) mode.append(' (set by an operator)'); }
    text(cell('pressure'), String(f.pressure));
    text(cell('requests'), String(f.requests));
    text(cell('sources'), String(f.sources));
    if (f.flow === 'reset') text(cell('unknown'), pct(f.unknownShare));
    topList(cell('topSources'), f.topSources);
    topList(cell('topNetworks'), f.topNetworks);
  }
}

function updateMailTable(byType) {
  const body = document.querySelector('#mail-by-type tbody');
  if (!body) return;
  body.replaceChildren();
  const types = Object.keys(byType).sort();
  if (!types.length) {
    const tr = document.createElement('tr');
    const td = document.createElement('td');
    td.colSpan = 4; td.className = 'hint'; td.textContent = 'No mail in the last 2 s.';
    tr.append(td); body.append(tr);
    return;
  }
  for (const t of types) {
    const tr = document.createElement('tr');
    for (const v of [t, byType[t].queued, byType[t].sent, byType[t].held]) {
      const td = document.createElement('td'); td.textContent = String(v); tr.append(td);
    }
    body.append(tr);
  }
}

if (elReq && elMail && 'EventSource' in window) {
  const fg = getComputedStyle(document.body).color;
  const grid = getComputedStyle(document.documentElement).getPropertyValue('--line').trim() || '#ccc';
  const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const size = (el) => ({ width: Math.max(260, el.clientWidth || 600), height: 220 });
  const opts = (el, series) => ({ ...size(el), series: [{}, ...series], axes: [axis, axis], scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max)] } } });
  const t = [], reset = [], fail = [], queued = [], sent = [], held = [];
  const reqChart = new uPlot(opts(elReq, [{ label: 'Reset requests', stroke: '#3b7ddd', width: 2 }, { label: 'Failed sign-ins', stroke: '#d9534f', width: 2 }]), [t, reset, fail], elReq);
  const mailChart = new uPlot(opts(elMail, [{ label: 'Queued', stroke: '#8a94a3', width: 2 }, { label: 'Sent', stroke: '#2e9e5b', width: 2 }, { label: 'Held', stroke: '#e0a100', width: 2 }]), [t, queued, sent, held], elMail);
  addEventListener('resize', () => { reqChart.setSize(size(elReq)); mailChart.setSize(size(elMail)); });

  const es = new EventSource('/console/events');
  es.addEventListener('sample', (ev) => {
    const d = JSON.parse(ev.data);
    t.push(d.t / 1000); reset.push(d.resetRequests); fail.push(d.signinFailures);
    queued.push(d.mail.queued); sent.push(d.mail.sent); held.push(d.mail.held);
    if (t.length > POINTS) for (const a of [t, reset, fail, queued, sent, held]) a.shift();
    reqChart.setData([t, reset, fail]);
    mailChart.setData([t, queued, sent, held]);
    updateFlows(d.flows);
    updateMailTable(d.mailByType);
    text(document.getElementById('held-total'), String(d.held + d.heldRequests));
    text(status, 'Live: last update ' + new Date(d.t).toLocaleTimeString() + '.');
    if (status) status.dataset.samples = String(Number(status.dataset.samples || 0) + 1);
  });
  es.addEventListener('error', () => text(status, 'Live feed interrupted; reconnecting\\u2026'));
}
`;
