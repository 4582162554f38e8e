import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A free TCP port on loopback, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface RunningService {
  readonly name: string;
  readonly pid: number;
  /** Everything the program printed so far. */
  output(): string;
  /** Resident memory in bytes, from /proc. */
  rssBytes(): number;
  /** Peak resident memory (VmHWM) in bytes, from /proc. */
  peakRssBytes(): number;
  /** Resolves when the process has exited, with its exit code (null after a signal). */
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<number | null>;
  /** SIGKILL at once, as a crash would. */
  kill9(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * Starts one of the programs in bin/ (after `npm run build`) with the given environment and waits until its HTTP
 * /readyz answers 200 (or, with `waitFor: 'healthz'`, /healthz). Output is kept for assertions and printed when a
 * wait fails.
 */
export async function startService(
  program: string,
  env: Record<string, string>,
  options: {
    args?: string[];
    httpPort?: number;
    waitFor?: 'readyz' | 'healthz' | 'none';
    timeoutMs?: number;
  } = {},
): Promise<RunningService> {
  const child = spawn(join(root, 'bin', program), options.args ?? [], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((done) =>
    child.once('exit', (code) => {
      live.delete(child);
      done(code);
    }),
  );
  const status = (file: string, field: string) => {
    try {
      const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(
        readFileSync(`/proc/${child.pid}/${file}`, 'utf8'),
      );
      return match ? Number(match[1]) * 1024 : 0;
    } catch {
      return 0;
    }
  };
  const service: RunningService = {
    name: program,
    pid: child.pid!,
    output: () => output,
    rssBytes: () => status('status', 'VmRSS'),
    peakRssBytes: () => status('status', 'VmHWM'),
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill9() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  const waitFor = options.waitFor ?? 'readyz';
  if (waitFor !== 'none') {
    if (!options.httpPort) throw new Error('startService needs httpPort to wait for readiness');
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`${program} exited with code ${child.exitCode} before it was ready:\n${output}`);
      }
      try {
        const response = await fetch(`http://127.0.0.1:${options.httpPort}/${waitFor}`);
        if (response.status === 200) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > deadline) {
        await service.kill9();
        throw new Error(`${program} was not ready within ${options.timeoutMs ?? 30_000} ms:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return service;
}

/** Polls `check` until it returns a value other than undefined, or fails with `what` after the timeout. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
