/**
 * End-to-end helpers: a real Floodgate listening on 127.0.0.1 (courier and intake running, real
 * SMTP sink) and real Chromium through playwright-core. A missing /usr/bin/chromium is a failure
 * with a clear message, never a skip.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadConfig } from '../../src/config/schema.js';
import { createFloodgate, type Floodgate } from '../../src/main.js';
import { ADMIN_TOKEN } from './harness.js';
import { startSmtpSink, type SmtpSink } from './smtp.js';
import { freePort } from './net.js';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = new URL('../../artifacts/screenshots/', import.meta.url).pathname;

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`e2e: ${CHROMIUM} is missing. The browser tests need Chromium: install it (apt-get install chromium) and run them again.`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
}


export interface Served {
  url: string;
  fg: Floodgate;
  sink: SmtpSink;
  /** JSON request to the running server. */
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any }>;
  close(): Promise<void>;
}

/** `hostname`: the public URL's host (passkeys need a domain such as localhost, not an IP address). */
export async function serve(env: Record<string, string> = {}, hostname = '127.0.0.1'): Promise<Served> {
  const sink = await startSmtpSink();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'floodgate-e2e-'));
  const url = `http://${hostname}:${port}`;
  const config = loadConfig({
    FLOODGATE_DATA_DIR: dir, FLOODGATE_DATABASE_URL: `sqlite:${join(dir, 'floodgate.db')}`, FLOODGATE_PUBLIC_URL: url,
    FLOODGATE_HOST: '127.0.0.1', FLOODGATE_PORT: String(port), FLOODGATE_SMTP_URL: sink.url, FLOODGATE_COURIER: 'in-process',
    FLOODGATE_ADMIN_TOKEN: ADMIN_TOKEN, FLOODGATE_LOG_LEVEL: 'silent', ...env,
  });
  const fg = await createFloodgate(config, { logger: pino({ level: 'silent' }), startWorkers: true });
  await fg.app.listen({ port, host: '127.0.0.1' });
  return {
    url, fg, sink,
    async api(method, path, body, headers = {}) {
      const r = await fetch(url + path, { method, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      const text = await r.text();
      let json: any = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      return { status: r.status, json };
    },
    async close() {
      await fg.close();
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });
}

/** Click a submit button and wait for the answer to the form post and the page it leads to. */
export async function submit(page: Page, selector = 'button[type=submit]'): Promise<number> {
  const answered = page.waitForResponse((r) => r.request().method() === 'POST', { timeout: 30_000 });
  await page.click(selector);
  const res = await answered;
  await page.waitForLoadState('load');
  return res.status();
}

/**
 * Wait until a JavaScript expression is truthy in the page. Polls with page.evaluate: the pages'
 * CSP forbids eval, which page.waitForFunction with a string would need (a good sign).
 */
export async function until(page: Page, expression: string, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await page.evaluate(expression))) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`until: ${expression} still false after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
