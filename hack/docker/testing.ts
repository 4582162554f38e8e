/**
 * Test helpers for what runs in Docker (e2e/image.test.ts, e2e/compose.test.ts): an engine started through
 * hack/docker/engine.sh when none answers, images made by the hack/docker scripts, and docker commands run to their
 * end. Nothing here talks to a registry: the scripts make every image locally.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '..', '..');
const scripts = join(repoRoot, 'hack', 'docker');

export interface CommandResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Standard output and standard error together, in arrival order. */
  output: string;
}

export interface RunOptions {
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Written to the program's standard input (closed when absent). */
  input?: string;
  timeoutMs?: number;
  /** Prints each output line as it arrives, indented: progress of long builds. */
  echo?: boolean;
}

/** Runs a program to its end without a shell. A program that is missing ends with status null and a message. */
export function run(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((done) => {
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let output = '';
    let pending = '';
    const take = (chunk: Buffer, stream: 'stdout' | 'stderr') => {
      const text = chunk.toString();
      if (stream === 'stdout') stdout += text;
      else stderr += text;
      output += text;
      if (options.echo) {
        pending += text;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) console.log(`      ${line}`);
      }
    };
    child.stdout!.on('data', (chunk: Buffer) => take(chunk, 'stdout'));
    child.stderr!.on('data', (chunk: Buffer) => take(chunk, 'stderr'));
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.once('error', (error) => {
      clearTimeout(timer);
      done({
        status: null,
        stdout,
        stderr: `${stderr}${error.message}`,
        output: `${output}${error.message}`,
      });
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      if (options.echo && pending) console.log(`      ${pending}`);
      done({ status, stdout, stderr, output });
    });
  });
}

/** Runs one of the hack/docker scripts, printing its progress. */
export function runDockerScript(script: string, args: string[] = [], timeoutMs = 20 * 60_000) {
  return run('bash', [join(scripts, script), ...args], { timeoutMs, echo: true });
}

/** `docker ARGS`, to its end. */
export function docker(args: readonly string[], options: RunOptions = {}) {
  return run('docker', args, options);
}

function engineAnswers(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

/**
 * Why Docker cannot be used by this run, or undefined when it can: an engine answers, or this run is root and
 * engine.sh may install and start one.
 */
export function dockerUnavailable(): string | undefined {
  if (engineAnswers()) return undefined;
  const uid = process.getuid?.();
  if (uid !== 0) {
    return `no Docker engine answers, and starting one (hack/docker/engine.sh start) needs root, but this run is uid ${uid}`;
  }
  return undefined;
}

export interface DockerEngine {
  /** Stops the engine when this run started it; an engine that was already running stays. */
  release(): Promise<void>;
}

/** An engine for this test: the running one, or one started by engine.sh (stopped again by release()). */
export async function acquireDockerEngine(): Promise<DockerEngine> {
  if (engineAnswers()) return { release: async () => undefined };
  const started = await runDockerScript('engine.sh', ['start'], 10 * 60_000);
  if (started.status !== 0) throw new Error(`hack/docker/engine.sh start failed:\n${started.output}`);
  return {
    release: async () => {
      const stopped = await runDockerScript('engine.sh', ['stop'], 2 * 60_000);
      if (stopped.status !== 0) throw new Error(`hack/docker/engine.sh stop failed:\n${stopped.output}`);
    },
  };
}

/** Builds kasho:latest when its inputs changed (hack/docker/build-image.sh); fails the test when the build does. */
export async function buildKashoImage(): Promise<void> {
  const result = await runDockerScript('build-image.sh');
  if (result.status !== 0) throw new Error(`hack/docker/build-image.sh failed:\n${result.output}`);
}

/** Builds the demo's redis:7-alpine and local/postgres:15 when their inputs changed (hack/docker/demo-images.sh). */
export async function buildDemoImages(): Promise<void> {
  const result = await runDockerScript('demo-images.sh');
  if (result.status !== 0) throw new Error(`hack/docker/demo-images.sh failed:\n${result.output}`);
}
