/**
 * Vitest global setup: the browser tests drive Debian's Chromium (/usr/bin/chromium). On a fresh
 * machine where it is missing and we are root with apt-get, install it once (as .ci/run does);
 * otherwise the browser tests fail with a message saying what to install. Never downloads a
 * browser of its own.
 */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export default function setup(): void {
  if (existsSync('/usr/bin/chromium')) return;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0 || !existsSync('/usr/bin/apt-get')) return;
  process.stderr.write('test setup: /usr/bin/chromium is missing; installing Debian\'s chromium with apt-get (once)...\n');
  try {
    execSync('apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium', { stdio: 'ignore', timeout: 600_000 });
  } catch {
    process.stderr.write('test setup: could not install chromium; the browser tests will say so\n');
  }
}
