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

/**
 * Passkeys in the hosted pages: signing in on /login and /console/login, and adding one on /security, through the
 * JSON API (same origin, the session cookie). The browser's own JSON codecs
 * (PublicKeyCredential.parse*OptionsFromJSON and credential.toJSON) do the base64url work; where
 * they are missing the passkey controls stay hidden and the pages work as before.
 */
export const PASSKEY_JS = `const supported = !!(window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON && PublicKeyCredential.parseCreationOptionsFromJSON);
const $ = (id) => document.getElementById(id);
async function post(path, body) {
  const r = await fetch(path, { method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  let json = null;
  try { json = await r.json(); } catch { /* no body */ }
  return { ok: r.ok, status: r.status, json };
}
function say(el, message) { if (el) { el.textContent = message; el.hidden = !message; } }
const TOO_MANY = 'Too many attempts. Wait a minute, then try again.';
function failed(e) { return e && e.name === 'NotAllowedError' ? 'The passkey request was cancelled or timed out.' : 'This browser could not use a passkey here.'; }

// A passkey section (#ID, with #ID-button and #ID-error) shown where the browser can use passkeys:
// its button runs \`run\`, and whatever goes wrong is said in its error line.
function passkeySection(id, run) {
  const section = $(id);
  if (!section || !supported) return;
  section.hidden = false;
  const error = $(id + '-error');
  $(id + '-button').addEventListener('click', async () => {
    say(error, '');
    try { await run(section, (message) => say(error, message)); } catch (e) { say(error, failed(e)); }
  });
}

passkeySection('passkey-signin', async (signin, error) => {
  const options = await post('/api/v1/sessions/passkey/options', {});
  if (!options.ok) return error(options.status === 429 ? TOO_MANY : 'Signing in with a passkey is not possible right now.');
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.json) });
  const r = await post('/api/v1/sessions/passkey', { response: credential.toJSON() });
  if (!r.ok) return error(r.status === 429 ? TOO_MANY : 'That passkey did not sign you in.');
  location.assign(signin.dataset.next || '/security');
});

passkeySection('console-passkey', async (section, error) => {
  const options = await post('/console/login/passkey/options', {});
  if (!options.ok) return error(options.status === 429 ? TOO_MANY : 'Signing in with a passkey is not possible right now.');
  const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.json) });
  const r = await post('/console/login/passkey', { response: credential.toJSON() });
  if (!r.ok) return error(r.status === 429 ? TOO_MANY : r.status === 403 ? 'This account has no access to the operator console.' : r.status === 428 ? 'Sign in with your password and code for now: the console asks for one more step.' : 'That passkey did not sign you in.');
  location.assign('/console');
});

passkeySection('passkey-add', async (add, error) => {
  const password = $('passkey-password');
  const name = $('passkey-name');
  const options = await post('/api/v1/me/passkeys/registration/options', password && password.value ? { password: password.value } : {});
  if (!options.ok) return error(options.json && options.json.code === 'forbidden' ? 'Confirm it is you: enter your password.' : (options.json && options.json.detail) || 'Adding a passkey is not possible right now.');
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.json) });
  const r = await post('/api/v1/me/passkeys/registration/verify', { response: credential.toJSON(), ...(name && name.value ? { name: name.value.slice(0, 64) } : {}) });
  if (!r.ok) return error((r.json && r.json.detail) || 'The passkey could not be added.');
  const codes = r.json.recoveryCodes;
  if (codes && codes.length) {
    // The first second factor: its recovery codes are shown once, here.
    const list = $('passkey-codes-list');
    list.replaceChildren(...codes.map((c) => { const li = document.createElement('li'); const code = document.createElement('code'); code.textContent = c; li.append(code); return li; }));
    $('passkey-codes').hidden = false;
    add.querySelector('.passkey-form').hidden = true;
    $('passkey-codes-done').focus();
    return;
  }
  location.assign('/security?done=passkey_added#passkeys');
});
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
