/**
 * Whether an error means "the database is away for now" (restarting, failing over, unreachable,
 * out of connections, or a SQLite file locked past the busy timeout) rather than a bug. Such
 * errors are answered 503 with Retry-After, so clients and load balancers retry, and nothing is
 * logged as a crash. No driver is imported: the codes are PostgreSQL's SQLSTATEs (classes 08,
 * 53300, 57P0x), Node's socket errors, and the messages pg and better-sqlite3 use.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'SQLITE_BUSY', 'SQLITE_LOCKED']);
const MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended unexpectedly|the database system is (starting up|shutting down|in recovery mode)|terminating connection due to administrator command|database is locked/i;

export function isDatabaseUnavailable(e: unknown): boolean {
  if (!e || typeof e !== 'object') return false;
  const err = e as { code?: unknown; message?: unknown; errors?: unknown; cause?: unknown };
  const code = typeof err.code === 'string' ? err.code : '';
  if (SQLSTATES.has(code) || code.startsWith('08') && code.length === 5 || SOCKET_CODES.has(code)) return true;
  if (typeof err.message === 'string' && MESSAGES.test(err.message)) return true;
  // AggregateError (a connection attempt to several addresses) and wrapped causes.
  if (Array.isArray(err.errors) && err.errors.some(isDatabaseUnavailable)) return true;
  return err.cause !== undefined && err.cause !== e && isDatabaseUnavailable(err.cause);
}
