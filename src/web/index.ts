/**
 * The hosted pages and the console, registered from http/app.ts. The page chrome (footer with
 * the status link, and the dev mailbox link when FLOODGATE_DEV_MAILBOX is on) is set here once
 * per app, so every page sent with sendPage carries it, including the recovery module's.
 */
import type { App } from '../http/app.js';
import type { Services } from '../services.js';
import { accountPages } from './account-pages.js';
import { consoleRoutes } from './console/index.js';
import { html } from './layout.js';
import { securityPages } from './security-page.js';
import { statusPage } from './status-page.js';

export async function webPages(app: App, s: Services): Promise<void> {
  app.decorate('floodgatePageChrome', {
    footer: html`<a href="/status">Service status</a> · <a href="/security">Security settings</a>${s.config.devMailbox ? html` · <a href="/dev/mailbox">Dev mailbox</a> <span class="hint">(development only: mail is kept here, not sent)</span>` : ''}`,
  });
  await accountPages(app, s);
  await securityPages(app, s);
  await statusPage(app, s);
  await consoleRoutes(app, s);
}
