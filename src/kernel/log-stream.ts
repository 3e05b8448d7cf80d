/**
 * Where the service's log lines go: a file descriptor (standard output), written without ever
 * blocking the event loop.
 *
 * Why not pino's default destination: it writes standard output synchronously (sonic-boom 4,
 * `sync: true`), and when whoever reads the pipe stops reading (a stalled log shipper, a parent
 * process that never drains it) every log line retries the full pipe in a 100 ms sleep loop on
 * the event loop, forever: requests stall, and SIGTERM never finishes because the 20-second
 * force-exit timer never gets to run (seen: a stopped server rewriting its "stopped" line every
 * 100 ms for minutes). Here:
 * - lines are written asynchronously (sonic-boom 5, `sync: false`): a slow reader slows nobody;
 * - while the reader is behind, lines wait in a buffer bounded to `maxBufferBytes`; past it they
 *   are dropped and counted (`dropped`, exported as floodgate_log_lines_dropped_total);
 * - a reader that is gone for good (EPIPE, EBADF, any error other than a full pipe) ends
 *   logging: later lines are counted as dropped, and nothing throws;
 * - `flush(timeoutMs)` waits for the buffer to reach the reader, at most that long, so a
 *   shutdown writes its last lines without depending on the reader.
 * Security events do not depend on this: they are rows in the database, not log lines.
 */
import sonicBoom, { type SonicBoom as SonicBoomStream } from 'sonic-boom';

// sonic-boom is CommonJS; its typings declare the class as a named export of the module object.
const { SonicBoom } = sonicBoom;

export class LogStream {
  private readonly boom: SonicBoomStream;
  private dead: Error | null = null;
  private droppedLines = 0;

  constructor(opts: { fd?: number; maxBufferBytes?: number } = {}) {
    this.boom = new SonicBoom({ fd: opts.fd ?? 1, sync: false, minLength: 0, maxLength: opts.maxBufferBytes ?? 4 * 1024 * 1024 });
    this.boom.on('drop', () => { this.droppedLines++; });
    this.boom.on('error', (err: NodeJS.ErrnoException) => {
      // A full pipe (EAGAIN) is retried by sonic-boom without blocking; anything that reaches
      // here means the reader is gone.
      this.dead ??= err;
    });
  }

  /** Lines dropped because the reader was too far behind or gone. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** Why logging stopped, if it did (the reader closed the pipe, say). */
  get failure(): Error | null {
    return this.dead;
  }

  write(line: string): boolean {
    if (this.dead) {
      this.droppedLines++;
      return true;
    }
    return this.boom.write(line);
  }

  /** Resolves once what was written has reached the descriptor, or after `timeoutMs`; never rejects. */
  flush(timeoutMs = 2000): Promise<void> {
    if (this.dead) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      try {
        this.boom.flush(() => { clearTimeout(timer); resolve(); });
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}
