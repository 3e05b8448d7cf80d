import UAParser from 'ua-parser-js';

/** "Chrome 120 on Linux": what a person recognises in a session list. Bounded length. */
export function describeDevice(userAgent: string | null | undefined): string {
  if (!userAgent) return 'Unknown device';
  const r = new UAParser(userAgent.slice(0, 512)).getResult();
  const browser = r.browser.name ? `${r.browser.name}${r.browser.major ? ' ' + r.browser.major : ''}` : null;
  const os = r.os.name ? `${r.os.name}${r.os.version ? ' ' + r.os.version : ''}` : null;
  const dev = r.device.model ? `${r.device.vendor ? r.device.vendor + ' ' : ''}${r.device.model}` : null;
  const parts = [browser, os && `on ${os}`, dev && `(${dev})`].filter(Boolean);
  return (parts.length ? parts.join(' ') : userAgent.slice(0, 60)).slice(0, 120);
}
