/**
 * Configuration: environment variables (and a .env file, read by the CLI), validated once at
 * boot into a frozen object. Every problem is collected so the operator sees them all at once.
 * This table is the single source of the configuration reference in README.md (a test keeps
 * them in step).
 */
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';

export type DatabaseUrl = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string;
  readonly database: DatabaseUrl;
  readonly redisUrl: string | null;
  readonly smtpUrl: string | null;
  readonly mailFrom: string;
  readonly dkim: { readonly domain: string; readonly selector: string; readonly keyFile: string } | null;
  readonly trustProxy: readonly string[];
  readonly adminToken: string | null;
  /** base64 or hex of 32 bytes; null: generated into the data directory on first start. */
  readonly secretKey: string | null;
  readonly dataDir: string;
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly sessionIdleMs: number;
  readonly sessionAbsoluteMs: number;
  readonly courier: 'in-process' | 'off';
  readonly blastRadius: number;
  /** Operators who must approve a broadcast the blast radius holds: 1 (not the creator alone when another exists) or 2. */
  readonly approvals: 1 | 2;
  readonly resetDenyQuietMs: number;
  readonly devMailbox: boolean;
  readonly production: boolean;
  /** Pwned Passwords range API base (k-anonymity); null: the local breached list only. */
  readonly pwnedRangeUrl: string | null;
  /** Operator webhook (courier channel `webhook`): both set or neither. */
  readonly webhook: { readonly url: string; readonly secret: string } | null;
  /** Password hashes computed at once (the rest queue); default: the CPU cores available. */
  readonly hashConcurrency: number;
  /** A listener of its own for /metrics (every metric, no token); null: /metrics on the main listener only. */
  readonly metrics: { readonly port: number; readonly host: string } | null;
}

type Parsed<T> = T;
interface VarSpec {
  name: string;
  default: string | null;
  doc: string;
}

export const CONFIG_VARS: readonly VarSpec[] = [
  { name: 'FLOODGATE_PORT', default: '8080', doc: 'TCP port to listen on (1-65535).' },
  { name: 'FLOODGATE_HOST', default: '127.0.0.1', doc: 'Address to listen on (an IP address or `localhost`).' },
  { name: 'FLOODGATE_PUBLIC_URL', default: 'http://localhost:8080', doc: 'The only origin ever written into links (scheme://host[:port], no path). Cookies are `Secure` when it is https.' },
  { name: 'FLOODGATE_DATABASE_URL', default: 'sqlite:./data/floodgate.db', doc: '`sqlite:PATH` (embedded, WAL mode) or `postgres://user@host:port/db`.' },
  { name: 'FLOODGATE_REDIS_URL', default: null, doc: '`redis://host:port[/db]` for counters shared by several instances; unset: in-process.' },
  { name: 'FLOODGATE_SMTP_URL', default: null, doc: '`smtp://host:port` or `smtps://user:pass@host:port`; unset: the dev mailbox at /dev/mailbox.' },
  { name: 'FLOODGATE_MAIL_FROM', default: 'Floodgate <security@localhost>', doc: 'Sender of every email.' },
  { name: 'FLOODGATE_DKIM_DOMAIN', default: null, doc: 'DKIM signing domain (set all three DKIM variables or none).' },
  { name: 'FLOODGATE_DKIM_SELECTOR', default: null, doc: 'DKIM selector.' },
  { name: 'FLOODGATE_DKIM_KEY_FILE', default: null, doc: 'PEM file with the DKIM private key. Mail that comes out unsigned is held, never sent.' },
  { name: 'FLOODGATE_TRUST_PROXY', default: null, doc: 'Comma-separated CIDRs, addresses or `loopback`/`linklocal`/`uniquelocal` whose X-Forwarded-For is believed; unset: the socket address is the client.' },
  { name: 'FLOODGATE_ADMIN_TOKEN', default: null, doc: 'Bootstrap operator bearer token: at least 32 characters when FLOODGATE_PUBLIC_URL is https (e.g. `openssl rand -base64 32`); on http, 16 to 31 are accepted with a warning at boot (local development). Named tokens: `floodgate operators create`.' },
  { name: 'FLOODGATE_SECRET_KEY', default: null, doc: '32 bytes, base64 or hex: encrypts TOTP seeds and queued mail that carries a token. Unset: generated into `DATA_DIR/secret.key` on first start.' },
  { name: 'FLOODGATE_DATA_DIR', default: './data', doc: 'Directory for the generated secret key (and the default SQLite file).' },
  { name: 'FLOODGATE_LOG_LEVEL', default: 'info', doc: 'fatal, error, warn, info, debug, trace or silent.' },
  { name: 'FLOODGATE_SESSION_IDLE_TIMEOUT', default: '7d', doc: 'A session unused this long expires (duration: 30m, 12h, 7d).' },
  { name: 'FLOODGATE_SESSION_ABSOLUTE_TIMEOUT', default: '30d', doc: 'A session expires this long after sign-in, used or not.' },
  { name: 'FLOODGATE_COURIER', default: 'in-process', doc: '`in-process` runs the courier inside `serve`; `off` leaves delivery to `floodgate courier`.' },
  { name: 'FLOODGATE_BLAST_RADIUS', default: '100', doc: 'An operator action or job that would mail more recipients than this is held after that many until approved.' },
  { name: 'FLOODGATE_APPROVALS', default: '1', doc: 'Approvals a broadcast held by the blast radius needs: `1` (its creator cannot approve it alone while another operator exists) or `2` (two different operators, the creator may be one). See docs/guard.md.' },
  { name: 'FLOODGATE_RESET_DENY_QUIET', default: '24h', doc: 'After "I didn\'t request this", reset mail to that address stays quiet this long.' },
  { name: 'FLOODGATE_PWNED_RANGE_URL', default: null, doc: 'Base URL of a Pwned Passwords range API (e.g. `https://api.pwnedpasswords.com`), asked with the first 5 hex digits of SHA-1 after the local breached list; failures and 2 s timeouts fall back to the local list. Unset: local list only.' },
  { name: 'FLOODGATE_DEV_MAILBOX', default: null, doc: '`true` shows /dev/mailbox (everyone\'s mail, without authentication: development only). Default: on only when no SMTP URL is set, NODE_ENV is not production and the public URL is loopback. Refused with an https public URL.' },
  { name: 'FLOODGATE_METRICS_PORT', default: null, doc: 'Serve every metric on a listener of its own (no token) at this port, and none on the main listener. Unset: `/metrics` on the main listener gives operators (Bearer token) every metric and anyone else only the process and HTTP metrics, which tell no account apart.' },
  { name: 'FLOODGATE_METRICS_HOST', default: '127.0.0.1', doc: 'Address of the metrics listener (with FLOODGATE_METRICS_PORT); keep it loopback or a private network.' },
  { name: 'FLOODGATE_WEBHOOK_URL', default: null, doc: 'http(s) URL that receives operator notices as signed JSON POSTs (set together with FLOODGATE_WEBHOOK_SECRET).' },
  { name: 'FLOODGATE_WEBHOOK_SECRET', default: null, doc: 'At least 16 characters: HMAC-SHA256 key of the `X-Floodgate-Signature` header (see docs/courier.md).' },
  { name: 'FLOODGATE_HASH_CONCURRENCY', default: null, doc: 'Password hashes (argon2id, and bcrypt or scrypt of imported accounts) computed at once, 1-256; more wait their turn in arrival order. Unset: the number of CPU cores the process may use. Set it to the CPU quota when a container limits CPU time rather than cores.' },
];

/** The bootstrap admin token's minimum length on https (on http 16 is accepted, with a warning). */
export const ADMIN_TOKEN_MIN = 32;

const DURATION_RE = /^(\d+)(ms|s|m|h|d)$/;
const UNIT: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(raw: string): number | null {
  const m = DURATION_RE.exec(raw.trim());
  if (!m) return null;
  const v = Number(m[1]) * UNIT[m[2]!]!;
  return Number.isSafeInteger(v) ? v : null;
}

function isCidrOrAddress(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length || !addr) return false;
  const v = isIP(addr);
  if (!v) return false;
  if (bits === undefined) return true;
  if (!/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (v === 4 ? 32 : 128);
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validate `env` into a frozen Config, or throw ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  const get = (name: string): string | null => {
    const raw = env[name];
    if (raw !== undefined && raw.trim() !== '') return raw.trim();
    return CONFIG_VARS.find((v) => v.name === name)?.default ?? null;
  };
  const bad = (name: string, why: string, value: string | null) =>
    problems.push(`${name}: ${why}${value === null ? '' : ` (got ${JSON.stringify(value.length > 80 ? value.slice(0, 80) + '…' : value)})`}`);

  const portRaw = get('FLOODGATE_PORT')!;
  const port = /^\d{1,5}$/.test(portRaw) ? Number(portRaw) : NaN;
  if (!(port >= 0 && port <= 65535)) bad('FLOODGATE_PORT', 'must be a port number from 0 to 65535', portRaw);

  const host = get('FLOODGATE_HOST')!;
  if (!(isIP(host) || host === 'localhost')) bad('FLOODGATE_HOST', 'must be an IP address or localhost', host);

  const publicRaw = get('FLOODGATE_PUBLIC_URL')!;
  let publicUrl = '';
  try {
    const u = new URL(publicRaw);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') bad('FLOODGATE_PUBLIC_URL', 'must be an http or https URL', publicRaw);
    else if (u.username || u.password || u.search || u.hash || (u.pathname !== '/' && u.pathname !== ''))
      bad('FLOODGATE_PUBLIC_URL', 'must be an origin only (scheme://host[:port]), without path, query or credentials', publicRaw);
    else publicUrl = u.origin;
  } catch {
    bad('FLOODGATE_PUBLIC_URL', 'is not a URL; expected e.g. https://auth.example.com', publicRaw);
  }

  const dataDir = get('FLOODGATE_DATA_DIR')!;
  const dbRaw = get('FLOODGATE_DATABASE_URL')!;
  let database: DatabaseUrl = { kind: 'sqlite', file: './data/floodgate.db' };
  if (dbRaw.startsWith('sqlite:')) {
    const file = dbRaw.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    if (!file) bad('FLOODGATE_DATABASE_URL', 'sqlite: needs a file path, e.g. sqlite:./data/floodgate.db', dbRaw);
    database = { kind: 'sqlite', file };
  } else if (/^postgres(ql)?:\/\//.test(dbRaw)) {
    try {
      new URL(dbRaw);
      database = { kind: 'postgres', url: dbRaw };
    } catch {
      bad('FLOODGATE_DATABASE_URL', 'is not a valid postgres:// URL', null);
    }
  } else bad('FLOODGATE_DATABASE_URL', 'must start with sqlite: or postgres://', null);

  const redisUrl = get('FLOODGATE_REDIS_URL');
  if (redisUrl !== null && !/^rediss?:\/\/[^\s]+$/.test(redisUrl)) bad('FLOODGATE_REDIS_URL', 'must be a redis:// or rediss:// URL', null);

  const smtpUrl = get('FLOODGATE_SMTP_URL');
  if (smtpUrl !== null) {
    try {
      const u = new URL(smtpUrl);
      if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new Error();
      if (!u.hostname) throw new Error();
    } catch {
      bad('FLOODGATE_SMTP_URL', 'must be smtp://host:port or smtps://host:port', null);
    }
  }

  const mailFrom = get('FLOODGATE_MAIL_FROM')!;
  if (!/^(?:[^<>\r\n]*<[^<>@\s]+@[^<>@\s]+>|[^<>@\s]+@[^<>@\s]+)$/.test(mailFrom)) bad('FLOODGATE_MAIL_FROM', 'must be an address, optionally with a name: Name <user@domain>', mailFrom);

  const dkimParts = ['FLOODGATE_DKIM_DOMAIN', 'FLOODGATE_DKIM_SELECTOR', 'FLOODGATE_DKIM_KEY_FILE'].map(get);
  let dkim: Config['dkim'] = null;
  if (dkimParts.some((p) => p !== null)) {
    if (dkimParts.some((p) => p === null)) bad('FLOODGATE_DKIM_DOMAIN', 'set FLOODGATE_DKIM_DOMAIN, _SELECTOR and _KEY_FILE together, or none of them', null);
    else dkim = { domain: dkimParts[0]!, selector: dkimParts[1]!, keyFile: dkimParts[2]! };
  }

  const tpRaw = get('FLOODGATE_TRUST_PROXY');
  const trustProxy = tpRaw === null ? [] : tpRaw.split(',').map((s) => s.trim()).filter(Boolean);
  for (const t of trustProxy) if (!isCidrOrAddress(t)) bad('FLOODGATE_TRUST_PROXY', `"${t}" is not a CIDR, an address, or loopback/linklocal/uniquelocal`, null);

  const adminToken = get('FLOODGATE_ADMIN_TOKEN');
  // A bearer secret that opens the operator API: 32 characters in a deployment (https). On http
  // (local development, the conformance harness, whose tokens are about 28 characters) 16 to 31
  // are still accepted, with a warning at boot (configWarnings).
  if (adminToken !== null && adminToken.length < 16) bad('FLOODGATE_ADMIN_TOKEN', 'must be at least 16 characters (32 when FLOODGATE_PUBLIC_URL is https)', null);
  else if (adminToken !== null && adminToken.length < ADMIN_TOKEN_MIN && publicUrl.startsWith('https:')) {
    bad('FLOODGATE_ADMIN_TOKEN', `must be at least ${ADMIN_TOKEN_MIN} characters when FLOODGATE_PUBLIC_URL is https (e.g. \`openssl rand -base64 32\`)`, null);
  }

  const secretKey = get('FLOODGATE_SECRET_KEY');
  if (secretKey !== null && decodeKey(secretKey) === null) bad('FLOODGATE_SECRET_KEY', 'must be 32 bytes in base64 or hex (e.g. `openssl rand -base64 32`)', null);

  const logLevel = get('FLOODGATE_LOG_LEVEL')! as Config['logLevel'];
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) bad('FLOODGATE_LOG_LEVEL', 'must be one of fatal, error, warn, info, debug, trace, silent', logLevel);

  const dur = (name: string): number => {
    const raw = get(name)!;
    const v = parseDuration(raw);
    if (v === null || v <= 0) {
      bad(name, 'must be a positive duration like 30m, 12h or 7d', raw);
      return 0;
    }
    return v;
  };
  const sessionIdleMs = dur('FLOODGATE_SESSION_IDLE_TIMEOUT');
  const sessionAbsoluteMs = dur('FLOODGATE_SESSION_ABSOLUTE_TIMEOUT');
  const resetDenyQuietMs = dur('FLOODGATE_RESET_DENY_QUIET');

  const courier = get('FLOODGATE_COURIER')! as Config['courier'];
  if (courier !== 'in-process' && courier !== 'off') bad('FLOODGATE_COURIER', 'must be in-process or off', courier);

  const brRaw = get('FLOODGATE_BLAST_RADIUS')!;
  const blastRadius = /^\d{1,9}$/.test(brRaw) ? Number(brRaw) : NaN;
  if (!(blastRadius >= 1)) bad('FLOODGATE_BLAST_RADIUS', 'must be a whole number of at least 1', brRaw);

  const apRaw = get('FLOODGATE_APPROVALS')!;
  const approvals = apRaw === '1' ? 1 : apRaw === '2' ? 2 : NaN;
  if (approvals !== 1 && approvals !== 2) bad('FLOODGATE_APPROVALS', 'must be 1 or 2', apRaw);

  const hcRaw = get('FLOODGATE_HASH_CONCURRENCY');
  const hashConcurrency = hcRaw === null ? availableParallelism() : /^\d{1,3}$/.test(hcRaw) ? Number(hcRaw) : NaN;
  if (!(hashConcurrency >= 1 && hashConcurrency <= 256)) bad('FLOODGATE_HASH_CONCURRENCY', 'must be a whole number from 1 to 256', hcRaw);

  const production = env.NODE_ENV === 'production';
  const dmRaw = get('FLOODGATE_DEV_MAILBOX');
  // The dev mailbox shows everyone's reset links to anyone: by default only where nobody else can
  // reach it (a loopback public URL), and never on https, which means a real deployment.
  let devMailbox = smtpUrl === null && !production && publicUrl !== '' && isLoopbackOrigin(publicUrl);
  if (dmRaw !== null) {
    if (dmRaw !== 'true' && dmRaw !== 'false') bad('FLOODGATE_DEV_MAILBOX', 'must be true or false', dmRaw);
    devMailbox = dmRaw === 'true';
    if (devMailbox && publicUrl.startsWith('https:')) bad('FLOODGATE_DEV_MAILBOX', 'cannot be true with an https FLOODGATE_PUBLIC_URL: it would show every reset link to anyone; set FLOODGATE_SMTP_URL', dmRaw);
  }

  const mpRaw = get('FLOODGATE_METRICS_PORT');
  const metricsHost = get('FLOODGATE_METRICS_HOST')!;
  let metrics: Config['metrics'] = null;
  if (!(isIP(metricsHost) || metricsHost === 'localhost')) bad('FLOODGATE_METRICS_HOST', 'must be an IP address or localhost', metricsHost);
  if (mpRaw !== null) {
    const mp = /^\d{1,5}$/.test(mpRaw) ? Number(mpRaw) : NaN;
    if (!(mp >= 0 && mp <= 65535)) bad('FLOODGATE_METRICS_PORT', 'must be a port number from 0 to 65535', mpRaw);
    else if (mp !== 0 && mp === port) bad('FLOODGATE_METRICS_PORT', 'must differ from FLOODGATE_PORT', mpRaw);
    else metrics = { port: mp, host: metricsHost };
  }

  const whUrl = get('FLOODGATE_WEBHOOK_URL');
  const whSecret = get('FLOODGATE_WEBHOOK_SECRET');
  let webhook: Config['webhook'] = null;
  if (whUrl !== null || whSecret !== null) {
    if (whUrl === null || whSecret === null) bad('FLOODGATE_WEBHOOK_URL', 'set FLOODGATE_WEBHOOK_URL and FLOODGATE_WEBHOOK_SECRET together, or neither', null);
    let urlOk = false;
    if (whUrl !== null) {
      try {
        const u = new URL(whUrl);
        urlOk = (u.protocol === 'http:' || u.protocol === 'https:') && !!u.hostname;
      } catch { /* reported below */ }
      if (!urlOk) bad('FLOODGATE_WEBHOOK_URL', 'must be an http or https URL', null);
    }
    // The secret signs every POST: a short one could be guessed offline from one captured request.
    if (whSecret !== null && whSecret.length < 16) bad('FLOODGATE_WEBHOOK_SECRET', 'must be at least 16 characters', null);
    if (whUrl !== null && whSecret !== null && urlOk && whSecret.length >= 16) webhook = { url: whUrl, secret: whSecret };
  }

  const pwnedRaw = get('FLOODGATE_PWNED_RANGE_URL');
  let pwnedRangeUrl: string | null = null;
  if (pwnedRaw !== null) {
    try {
      const u = new URL(pwnedRaw);
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.search || u.hash || u.username || u.password) throw new Error('bad');
      pwnedRangeUrl = u.href.replace(/\/+$/, '');
    } catch {
      bad('FLOODGATE_PWNED_RANGE_URL', 'must be an http(s) base URL without query or credentials, e.g. https://api.pwnedpasswords.com', pwnedRaw);
    }
  }

  if (problems.length) throw new ConfigError(problems);
  const config: Parsed<Config> = {
    port, host, publicUrl, database, redisUrl, smtpUrl, mailFrom, dkim, trustProxy, adminToken, secretKey, dataDir,
    logLevel, sessionIdleMs, sessionAbsoluteMs, courier, blastRadius, approvals: approvals as 1 | 2, resetDenyQuietMs, devMailbox, production, webhook, pwnedRangeUrl, hashConcurrency, metrics,
  };
  return Object.freeze({ ...config, trustProxy: Object.freeze([...trustProxy]), dkim: dkim && Object.freeze(dkim), database: Object.freeze(database), webhook: webhook && Object.freeze(webhook), metrics: metrics && Object.freeze(metrics) });
}

/** Whether an origin names this machine only (localhost, 127.0.0.0/8, ::1): nobody else can open it. */
export function isLoopbackOrigin(origin: string): boolean {
  const h = new URL(origin).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/**
 * What the configuration accepts but should not: each a line for the boot log (never a value of
 * a secret). Today: an admin token of 16 to 31 characters, allowed on http only.
 */
export function configWarnings(c: Config): string[] {
  const out: string[] = [];
  if (c.adminToken !== null && c.adminToken.length < ADMIN_TOKEN_MIN) {
    out.push(`FLOODGATE_ADMIN_TOKEN is shorter than ${ADMIN_TOKEN_MIN} characters: accepted because FLOODGATE_PUBLIC_URL is http (development only); `
      + `use ${ADMIN_TOKEN_MIN} or more (e.g. \`openssl rand -base64 32\`), as https requires`);
  }
  return out;
}

/** Every problem `env` has, without throwing: empty when it is a valid configuration. */
export function configProblems(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
}

export function decodeKey(raw: string): Buffer | null {
  const s = raw.trim();
  if (/^[0-9a-fA-F]{64}$/.test(s)) return Buffer.from(s, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) {
    const b = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    return b.length === 32 ? b : null;
  }
  return null;
}

/** The configuration reference as Markdown (README.md embeds it; `floodgate config` prints it). */
export function configReferenceMarkdown(): string {
  const rows = CONFIG_VARS.map((v) => `| \`${v.name}\` | ${v.default === null ? '(none)' : `\`${v.default}\``} | ${v.doc} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
