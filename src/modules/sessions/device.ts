import UAParser from 'ua-parser-js';

// A sign-in describes its device several times (session, event, new-device check): parse each
// user agent once. Bounded, since the strings are the client's choice.
const cache = new Map<string, string>();
const CACHE_MAX = 1000;

/** "Chrome 120 on Linux": what a person recognises in a session list. Bounded length. */
export function describeDevice(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown device';
  const ua = userAgent.slice(0, 512);
  const hit = cache.get(ua);
  if (hit !== undefined) return hit;
  const d = parse(ua);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(ua, d);
  return d;
}

function parse(userAgent: string): string {
  const r = new UAParser(userAgent).getResult();
  const browser = r.browser.name ? `${r.browser.name}${r.browser.major ? ' ' + r.browser.major : ''}` : null;
  const os = r.os.name ? `${r.os.name}${r.os.version ? ' ' + r.os.version : ''}` : null;
  const dev = r.device.model ? `${r.device.vendor ? r.device.vendor + ' ' : ''}${r.device.model}` : null;
  const parts = [browser, os && `on ${os}`, dev && `(${dev})`].filter(Boolean);
  return (parts.length ? parts.join(' ') : userAgent.slice(0, 60)).slice(0, 120);
}
