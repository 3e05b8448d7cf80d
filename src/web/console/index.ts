/** The operator console: access (grants, sessions), sign-in, pages and the live feed. */
import type { App } from '../../http/app.js';
import type { Services } from '../../services.js';
import { ConsoleAccess } from './access.js';
import { consoleAuthRoutes } from './auth.js';
import { liveRoutes } from './live.js';
import { consolePages } from './pages.js';

export { ConsoleAccess, CONSOLE_COOKIE, CONSOLE_IDLE_MS, CONSOLE_SESSION_MS, grantedOperatorIds, operatorOf, type ConsoleOperator, type ConsoleSession, type GrantView } from './access.js';
export { LiveSampler, TICK_MS, type LiveSample } from './live.js';

export function consoleAccess(s: Services): ConsoleAccess {
  return new ConsoleAccess({ db: s.storage.db, clock: s.clock, accounts: s.accounts, audit: s.audit });
}

export async function consoleRoutes(app: App, s: Services): Promise<void> {
  const access = consoleAccess(s);
  await consoleAuthRoutes(app, s, access);
  await consolePages(app, s, access);
  await liveRoutes(app, s, access);
}
