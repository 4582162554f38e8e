/**
 * CPU and memory of the processes doing the replication, sampled from /proc every 250 ms and summed per role
 * ("pg-translicator", "source walsender", ...) over a phase. A process that ends between two samples loses at most
 * its last 250 ms of CPU.
 */
import type { Redis } from 'ioredis';
import {
  listPids,
  loadAverage,
  machineBusySeconds,
  readMemory,
  readProcess,
  resetPeakRss,
  type ProcessInfo,
} from './procfs.js';

/**
 * The role of a process in the replication; `undefined` when it has none (it is not read again while it lives),
 * `null` when it has none yet (a PostgreSQL child still showing the postmaster's command line: asked again).
 */
export type Classifier = (
  process: ProcessInfo,
  parentOf: (pid: number) => number | undefined,
) => string | null | undefined;

interface Tracked {
  key: string;
  role: string;
  pid: number;
  cmdline: string;
  cpuSeconds: number;
  alive: boolean;
}

export interface RolePeak {
  /** Largest RSS seen (VmHWM included, which catches peaks between samples). */
  rssBytes: number;
  /** Largest anonymous RSS seen: for PostgreSQL processes, RSS without the shared buffers they touched. */
  rssAnonBytes: number;
}

export interface PhaseResources {
  wallSeconds: number;
  cpuSecondsByRole: Record<string, number>;
  /** Per role, the largest of its processes' peaks. */
  peakByRole: Record<string, RolePeak>;
  /** Per role, the largest RSS of its processes when the phase began (what the peak grew from). */
  startRssByRole: Record<string, number>;
  /** Largest Redis used_memory seen during the phase (bytes); undefined without Redis. */
  redisPeakUsedMemoryBytes: number | undefined;
  /** Redis used_memory when the phase began. */
  redisStartUsedMemoryBytes: number | undefined;
  /** CPU seconds the whole machine was busy (every process, ours and others'). */
  machineBusySeconds: number;
  loadAverageAtEnd: [number, number, number];
}

interface Phase {
  started: number;
  machineBusyAtStart: number;
  baseline: Map<string, number>;
  peaks: Map<string, RolePeak>;
  startRss: Map<string, number>;
  redisPeak: number | undefined;
  redisStart: number | undefined;
}

export class ResourceSampler {
  private readonly tracked = new Map<string, Tracked>();
  /** Pids without a role: not read again while they live (a full read of /proc costs ~15 ms here). */
  private ignored = new Set<number>();
  private readonly parents = new Map<number, number>();
  private phase: Phase | undefined;
  private timer: NodeJS.Timeout | undefined;
  private redisPolling = false;

  constructor(
    private readonly classify: Classifier,
    private readonly redis: Redis | undefined,
    private readonly intervalMs = 250,
  ) {}

  start(): void {
    this.sample();
    this.timer = setInterval(() => {
      this.sample();
      void this.sampleRedis();
    }, this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Starts a phase: CPU counts from here, and the peak RSS of live processes is reset to their current RSS. */
  async beginPhase(): Promise<void> {
    const redisStart = await this.redisUsedMemory();
    this.sample();
    const startRss = new Map<string, number>();
    for (const t of this.tracked.values()) {
      if (!t.alive) continue;
      resetPeakRss(t.pid);
      startRss.set(t.role, Math.max(startRss.get(t.role) ?? 0, readMemory(t.pid)?.rssBytes ?? 0));
    }
    this.phase = {
      started: performance.now(),
      machineBusyAtStart: machineBusySeconds(),
      baseline: new Map([...this.tracked.values()].map((t) => [t.key, t.cpuSeconds])),
      peaks: new Map(),
      startRss,
      redisPeak: redisStart,
      redisStart,
    };
    for (const t of this.tracked.values()) if (t.alive) this.notePeak(t);
  }

  async endPhase(): Promise<PhaseResources> {
    this.sample();
    await this.sampleRedis();
    const phase = this.phase;
    if (!phase) throw new Error('endPhase without beginPhase');
    this.phase = undefined;
    const cpu: Record<string, number> = {};
    for (const t of this.tracked.values()) {
      const used = t.cpuSeconds - (phase.baseline.get(t.key) ?? 0);
      if (used > 0 || t.alive) cpu[t.role] = (cpu[t.role] ?? 0) + used;
    }
    for (const role of Object.keys(cpu)) cpu[role] = round(cpu[role] ?? 0, 2);
    return {
      wallSeconds: round((performance.now() - phase.started) / 1000, 3),
      cpuSecondsByRole: cpu,
      peakByRole: Object.fromEntries(phase.peaks),
      startRssByRole: Object.fromEntries(phase.startRss),
      redisPeakUsedMemoryBytes: phase.redisPeak,
      redisStartUsedMemoryBytes: phase.redisStart,
      machineBusySeconds: round(machineBusySeconds() - phase.machineBusyAtStart, 2),
      loadAverageAtEnd: loadAverage(),
    };
  }

  /** One scan: new pids are read and classified, tracked ones re-read, unrelated ones skipped. */
  sample(): void {
    const present = new Set(listPids());
    const live = new Map<number, Tracked>();
    for (const t of this.tracked.values()) {
      if (!t.alive) continue;
      if (present.has(t.pid)) live.set(t.pid, t);
      else t.alive = false;
    }
    for (const pid of this.parents.keys()) if (!present.has(pid)) this.parents.delete(pid);
    const ignored = new Set<number>();
    const fresh: ProcessInfo[] = [];
    for (const pid of present) {
      if (this.ignored.has(pid)) {
        ignored.add(pid);
        continue;
      }
      const info = readProcess(pid);
      if (!info) continue;
      this.parents.set(pid, info.ppid);
      const known = live.get(pid);
      if (known?.key === keyOf(info)) {
        known.cpuSeconds = info.cpuSeconds;
        if (known.cmdline !== info.cmdline) {
          // exec() keeps the pid (sh wrappers become node): the role may change with the program.
          known.cmdline = info.cmdline;
          const role = this.classify(info, (p) => this.parents.get(p));
          if (typeof role === 'string') known.role = role;
        }
        this.notePeak(known);
      } else {
        if (known) known.alive = false;
        fresh.push(info);
      }
    }
    const parentOf = (pid: number) => this.parents.get(pid);
    for (const info of fresh) {
      const role = this.classify(info, parentOf);
      if (role === undefined) ignored.add(info.pid);
      if (typeof role !== 'string') continue;
      const tracked: Tracked = {
        key: keyOf(info),
        role,
        pid: info.pid,
        cmdline: info.cmdline,
        cpuSeconds: info.cpuSeconds,
        alive: true,
      };
      this.tracked.set(tracked.key, tracked);
      this.notePeak(tracked);
    }
    this.ignored = ignored;
  }

  private notePeak(t: Tracked): void {
    const phase = this.phase;
    if (!phase) return;
    const memory = readMemory(t.pid);
    if (!memory) return;
    const peak = phase.peaks.get(t.role) ?? { rssBytes: 0, rssAnonBytes: 0 };
    peak.rssBytes = Math.max(peak.rssBytes, memory.rssBytes, memory.peakRssBytes);
    peak.rssAnonBytes = Math.max(peak.rssAnonBytes, memory.rssAnonBytes);
    phase.peaks.set(t.role, peak);
  }

  private async sampleRedis(): Promise<void> {
    if (!this.phase || this.redisPolling) return;
    this.redisPolling = true;
    try {
      const used = await this.redisUsedMemory();
      if (this.phase && used !== undefined) this.phase.redisPeak = Math.max(this.phase.redisPeak ?? 0, used);
    } finally {
      this.redisPolling = false;
    }
  }

  private async redisUsedMemory(): Promise<number | undefined> {
    if (!this.redis) return undefined;
    try {
      return Number(/^used_memory:(\d+)/m.exec(await this.redis.info('memory'))?.[1] ?? 0);
    } catch {
      // Redis is restarting or gone: the next sample tries again.
      return undefined;
    }
  }
}

function keyOf(info: ProcessInfo): string {
  return `${info.pid}:${info.startTicks}`;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
