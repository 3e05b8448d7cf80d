/** LogStream: writes never block, a reader that falls behind costs dropped lines, one that leaves ends logging. */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LogStream } from './log-stream.js';

/** A FIFO with both ends open: nobody reads the read end until the test says so. */
function fifo(): { readFd: number; writeFd: number } {
  const path = join(mkdtempSync(join(tmpdir(), 'fg-log-')), 'pipe');
  execFileSync('mkfifo', [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  return { readFd, writeFd };
}

function drain(fd: number): string {
  const buf = Buffer.alloc(1 << 16);
  let out = '';
  for (;;) {
    try {
      const n = readSync(fd, buf);
      if (n <= 0) return out;
      out += buf.subarray(0, n).toString('utf8');
    } catch {
      return out; // EAGAIN: empty for now
    }
  }
}

const line = (i: number) => `${JSON.stringify({ level: 30, i, msg: 'x'.repeat(200) })}\n`;

describe('LogStream', () => {
  it('delivers lines to a reader that keeps up, and flush waits for them', async () => {
    const { readFd, writeFd } = fifo();
    const s = new LogStream({ fd: writeFd });
    for (let i = 0; i < 10; i++) s.write(line(i));
    await s.flush(5000);
    const got = drain(readFd).trim().split('\n').map((l) => JSON.parse(l).i);
    expect(got).toEqual([...Array(10).keys()]);
    expect(s.dropped).toBe(0);
    closeSync(readFd);
    closeSync(writeFd);
  });

  it('drops and counts what a stalled reader cannot take, beyond its buffer, and flush gives up after its timeout', async () => {
    const { readFd, writeFd } = fifo();
    const s = new LogStream({ fd: writeFd, maxBufferBytes: 256 * 1024 });
    // 4 MiB into a 64 KiB pipe that nobody reads, behind a 256 KiB buffer.
    for (let i = 0; i < 16_000; i++) s.write(line(i));
    expect(s.dropped).toBeGreaterThan(10_000);
    const t0 = Date.now();
    await s.flush(300);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // Once the reader reads again, every line either arrives, in order, or was counted as dropped.
    let got = '';
    let flushed = false;
    void s.flush(10_000).then(() => { flushed = true; });
    while (!flushed) {
      got += drain(readFd);
      await new Promise((r) => setTimeout(r, 5));
    }
    got += drain(readFd);
    const seen = got.trim().split('\n').map((l) => JSON.parse(l).i as number);
    expect(seen[0]).toBe(0);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(seen.length + s.dropped).toBe(16_000);
    closeSync(readFd);
    closeSync(writeFd);
  });

  it('stops logging, without throwing, once the reader has gone', async () => {
    const { readFd, writeFd } = fifo();
    const s = new LogStream({ fd: writeFd });
    closeSync(readFd);
    s.write(line(0));
    for (let i = 0; i < 100 && !s.failure; i++) await new Promise((r) => setTimeout(r, 10));
    expect((s.failure as NodeJS.ErrnoException | null)?.code).toBe('EPIPE');
    expect(() => s.write(line(1))).not.toThrow();
    expect(s.dropped).toBeGreaterThanOrEqual(1);
    await s.flush(100);
    closeSync(writeFd);
  });
});
