/**
 * Reads processes from /proc: the whole table every sample, so that short-lived workers (PostgreSQL's table-sync
 * workers, the bootstrap script's children) are seen and their CPU counted.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Clock ticks since boot at which the process started: with the pid, identifies it across pid reuse. */
  startTicks: number;
  /** utime + stime, in seconds. */
  cpuSeconds: number;
  /** The command line, NUL separators turned into spaces; PostgreSQL's processes show their title here. */
  cmdline: string;
}

export interface MemoryInfo {
  rssBytes: number;
  /** Anonymous memory only: for PostgreSQL processes, RSS without the shared buffers they touched. */
  rssAnonBytes: number;
  /** VmHWM: the peak RSS since start or since resetPeakRss. */
  peakRssBytes: number;
}

export function readProcess(pid: number): ProcessInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') return undefined;
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    return {
      pid,
      ppid: Number(fields[1]),
      startTicks: Number(fields[19]),
      cpuSeconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND,
      cmdline,
    };
  } catch {
    return undefined;
  }
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) if (/^\d+$/.test(name)) out.push(Number(name));
  return out;
}

export function readMemory(pid: number): MemoryInfo | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rssBytes: kb('VmRSS'), rssAnonBytes: kb('RssAnon'), peakRssBytes: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS ("5" to clear_refs, Linux 4.0+), so the next peak is this phase's own. */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not ours to reset (another user's process): the sampled RSS maximum still stands.
  }
}

export function machineMemoryBytes(): number {
  const meminfo = readFileSync('/proc/meminfo', 'utf8');
  return Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? 0) * 1024;
}

export function loadAverage(): [number, number, number] {
  const [one, five, fifteen] = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
  return [one ?? 0, five ?? 0, fifteen ?? 0];
}

/** Seconds of CPU the whole machine spent busy (all cores), for the share the benchmark did not cause. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    TICKS_PER_SECOND
  );
}
