/** What the driver needs from each replication system under test (native logical replication, Kasho). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalServers, PgServer } from '../testing/local-servers.js';
import type { ProcessInfo } from './procfs.js';
import type { Classifier } from './sampler.js';

export interface System {
  readonly name: string;
  readonly source: PgServer;
  readonly target: PgServer;
  readonly redisUrl: string | undefined;
  /** One-time setup on the loaded source (publication, roles, DDL capture); not timed. */
  prepare(): Promise<void>;
  /**
   * Starts copying the source to the target and returns once the copy is under way far enough that the driver's
   * marker (committed after this returns) reaching the target means everything before it arrived. Returns named
   * sub-timings in seconds.
   */
  bootstrap(): Promise<Record<string, number>>;
  /** Stops replicating (changes pile up in the slot) and returns once nothing is applied any more. */
  stopPipeline(): Promise<void>;
  /** Resumes; the driver's clock for catch-up starts before this call. */
  startPipeline(): Promise<void>;
  /** Which processes do this system's work, for CPU and memory. */
  classifier(): Classifier;
  /** Names of the files holding CPU profiles written so far, by process (Kasho with --profile). */
  profiles?(): Record<string, string>;
  close(): Promise<void>;
}

const postmasters = new Map<string, number>();

function postmasterPid(servers: LocalServers, role: 'source' | 'target'): number | undefined {
  try {
    const pid = Number(
      readFileSync(join(servers.dir, role, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
    );
    postmasters.set(`${servers.dir}:${role}`, pid);
    return pid;
  } catch {
    return postmasters.get(`${servers.dir}:${role}`);
  }
}

/**
 * For a child of the source's or the target's postmaster: which server, and its process title without the
 * "postgres: " prefix (e.g. "walsender kasho 127.0.0.1(5432) START_REPLICATION", "kasho app 127.0.0.1(40312) idle",
 * "logical replication worker for subscription 16402"). Null while a new child still shows the postmaster's
 * command line; undefined for other processes.
 */
export function postgresChildRole(
  servers: LocalServers,
  process: ProcessInfo,
  parentOf: (pid: number) => number | undefined,
): { server: 'source' | 'target'; title: string } | null | undefined {
  for (const server of ['source', 'target'] as const) {
    const postmaster = postmasterPid(servers, server);
    if (postmaster === undefined || (parentOf(process.pid) ?? process.ppid) !== postmaster) continue;
    if (!process.cmdline.startsWith('postgres: ')) return null;
    return { server, title: process.cmdline.slice('postgres: '.length) };
  }
  return undefined;
}

/** True when `pid` is `ancestor` or one of its descendants. */
export function descendsFrom(
  pid: number,
  ancestor: number | undefined,
  parentOf: (pid: number) => number | undefined,
): boolean {
  if (ancestor === undefined) return false;
  for (let p: number | undefined = pid, hops = 0; p !== undefined && p > 1 && hops < 20; hops++) {
    if (p === ancestor) return true;
    p = parentOf(p);
  }
  return false;
}
