/**
 * Kasho as the deployment guide runs it: scripts/prepare-primary-db.sh, pg-change-stream, scripts/bootstrap-kasho.sh
 * (direct or dump), then pg-translicator.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalServers, PgServer } from '../testing/local-servers.js';
import { freePort, startService, type RunningService } from '../testing/services.js';
import type { Classifier } from './sampler.js';
import { descendsFrom, postgresChildRole, type System } from './system.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KASHO_PASSWORD = 'kasho-bench-password';

export interface KashoOptions {
  name: string;
  bootstrapMethod: 'direct' | 'dump';
  /** transforms.yml contents; an empty rule set when undefined. */
  transformsYaml: string | undefined;
  /** Directory for node --cpu-prof profiles of every Kasho process; no profiling when undefined. */
  profileDir: string | undefined;
}

function kashoUrl(server: PgServer): string {
  return `postgresql://kasho:${KASHO_PASSWORD}@${server.host}:${server.port}/${server.database}`;
}

export class KashoPipeline implements System {
  readonly name: string;
  changeStream: RunningService | undefined;
  translicator: RunningService | undefined;
  private script: ChildProcess | undefined;
  private readonly env: Record<string, string>;
  private readonly transformsFile: string;
  private grpcPort = 0;
  private changeStreamHttpPort = 0;
  private translicatorHttpPort = 0;
  private readonly processNames = new Map<number, string>();

  constructor(
    private readonly servers: LocalServers,
    private readonly options: KashoOptions,
  ) {
    this.name = options.name;
    this.env = {
      PRIMARY_DATABASE_URL: kashoUrl(this.source),
      REPLICA_DATABASE_URL: kashoUrl(this.target),
      PRIMARY_DATABASE_SU_USER: servers.env.PRIMARY_DATABASE_SU_USER!,
      PRIMARY_DATABASE_SU_PASSWORD: servers.env.PRIMARY_DATABASE_SU_PASSWORD!,
      REPLICA_DATABASE_SU_USER: servers.env.REPLICA_DATABASE_SU_USER!,
      REPLICA_DATABASE_SU_PASSWORD: servers.env.REPLICA_DATABASE_SU_PASSWORD!,
      KV_URL: servers.env.KV_URL!,
    };
    this.transformsFile = join(servers.dir, 'transforms.yml');
  }

  get source(): PgServer {
    return this.servers.source!;
  }

  get target(): PgServer {
    return this.servers.target!;
  }

  get redisUrl(): string {
    return this.servers.env.KV_URL!;
  }

  private get changeStreamService(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  /**
   * The program to start: bin/<program>, or with profiling a wrapper running the same build under --cpu-prof
   * (NODE_OPTIONS may not carry --cpu-prof). startService takes a path relative to bin/.
   */
  private program(name: string, main: string): string {
    const dir = this.options.profileDir;
    if (!dir) return name;
    const wrapper = join(dir, 'bin', name);
    mkdirSync(dirname(wrapper), { recursive: true });
    writeFileSync(
      wrapper,
      `#!/bin/sh\nexec node --cpu-prof --cpu-prof-dir=${dir} --enable-source-maps ${join(root, main)} "$@"\n`,
      { mode: 0o755 },
    );
    return relative(join(root, 'bin'), wrapper);
  }

  /** The bootstrap script finds its programs through these variables. */
  private get profileEnv(): Record<string, string> {
    if (!this.options.profileDir) return {};
    return {
      PG_BOOTSTRAP_SYNC: join(
        root,
        'bin',
        this.program('pg-bootstrap-sync', 'services/pg-bootstrap-sync/dist/main.js'),
      ),
    };
  }

  async prepare(): Promise<void> {
    writeFileSync(this.transformsFile, this.options.transformsYaml ?? 'version: v1\ntables: {}\n');
    // pgbench_history has no primary key: the guide's answer is REPLICA IDENTITY FULL (only inserts happen there).
    await this.runScript('prepare-primary-db.sh', ['--replica-identity-full'], {});
    this.grpcPort = await freePort();
    this.changeStreamHttpPort = await freePort();
    this.translicatorHttpPort = await freePort();
    await this.startChangeStream();
  }

  async bootstrap(): Promise<Record<string, number>> {
    const started = performance.now();
    await this.runScript('bootstrap-kasho.sh', [], {
      CHANGE_STREAM_SERVICE: this.changeStreamService,
      BOOTSTRAP_METHOD: this.options.bootstrapMethod,
      WAIT_FOR_BOOTSTRAP: 'true',
      ...this.profileEnv,
    });
    const scriptSeconds = (performance.now() - started) / 1000;
    await this.startTranslicator();
    return {
      snapshotToBufferSeconds: scriptSeconds,
      translicatorReadySeconds: (performance.now() - started) / 1000,
    };
  }

  async stopPipeline(): Promise<void> {
    await this.translicator?.stop();
    await this.changeStream?.stop();
  }

  async startPipeline(): Promise<void> {
    await this.startChangeStream();
    await this.startTranslicator();
  }

  classifier(): Classifier {
    return (process, parentOf) => {
      // By command line, not by the pid startService returns: that is known only once the service is ready.
      if (process.ppid === globalThis.process.pid) {
        if (/bin\/pg-change-stream|pg-change-stream\/dist\/main\.js/.test(process.cmdline))
          return 'pg-change-stream';
        if (/bin\/pg-translicator|pg-translicator\/dist\/main\.js/.test(process.cmdline))
          return 'pg-translicator';
      }
      if (
        process.cmdline.startsWith('redis-server') &&
        process.cmdline.includes(`:${this.servers.redis!.port}`)
      ) {
        return 'redis-server';
      }
      if (this.script && descendsFrom(process.pid, this.script.pid, parentOf)) {
        if (process.cmdline.includes('ctl.js')) return 'bootstrap: script and kasho-ctl';
        if (process.cmdline.includes('pg-bootstrap-sync')) return 'pg-bootstrap-sync';
        if (process.cmdline.includes('pg_dump')) return 'bootstrap: pg_dump';
        return 'bootstrap: script and kasho-ctl';
      }
      const role = postgresChildRole(this.servers, process, parentOf);
      if (role === null || role === undefined) return role;
      if (role.server === 'source') {
        if (role.title.startsWith('walsender')) return 'source walsender';
        return role.title.startsWith('kasho ') ? 'source backends (kasho role)' : undefined;
      }
      return role.title.startsWith('kasho ') ? 'target backends (kasho role)' : undefined;
    };
  }

  /** Profile files by process ("pg-translicator #2", ...), once the processes have exited. */
  profiles(): Record<string, string> {
    const dir = this.options.profileDir;
    if (!dir) return {};
    const out: Record<string, string> = {};
    for (const file of readdirSync(dir)) {
      const match = /^CPU\.\d+\.\d+\.(\d+)\./.exec(file);
      if (!match) continue;
      const pid = Number(match[1]);
      out[this.processNames.get(pid) ?? `pid ${pid} (pg-bootstrap-sync or kasho-ctl)`] = join(dir, file);
    }
    return out;
  }

  /** Everything the services printed, for a failed run. */
  logs(): string {
    return [this.changeStream, this.translicator]
      .filter((s): s is RunningService => s !== undefined)
      .map((s) => `----- ${s.name} (pid ${s.pid}) -----\n${s.output().slice(-20_000)}`)
      .join('\n');
  }

  async close(): Promise<void> {
    await this.translicator?.stop();
    await this.changeStream?.stop();
  }

  private recordProcess(program: string, pid: number): void {
    const count = [...this.processNames.values()].filter((n) => n.startsWith(program)).length;
    this.processNames.set(pid, `${program} #${count + 1}`);
  }

  private async startChangeStream(): Promise<void> {
    this.changeStream = await startService(
      this.program('pg-change-stream', 'services/pg-change-stream/dist/main.js'),
      {
        PRIMARY_DATABASE_URL: this.env.PRIMARY_DATABASE_URL!,
        KV_URL: this.env.KV_URL!,
        GRPC_PORT: String(this.grpcPort),
        HTTP_PORT: String(this.changeStreamHttpPort),
      },
      { httpPort: this.changeStreamHttpPort, waitFor: 'healthz', timeoutMs: 60_000 },
    );
    this.recordProcess('pg-change-stream', this.changeStream.pid);
  }

  private async startTranslicator(): Promise<void> {
    this.translicator = await startService(
      this.program('pg-translicator', 'services/pg-translicator/dist/main.js'),
      {
        CHANGE_STREAM_SERVICE: this.changeStreamService,
        REPLICA_DATABASE_URL: this.env.REPLICA_DATABASE_URL!,
        TRANSFORMS_FILE: this.transformsFile,
        TRANSFORM_SECRET: 'bench-secret',
        HTTP_PORT: String(this.translicatorHttpPort),
      },
      { httpPort: this.translicatorHttpPort, waitFor: 'readyz', timeoutMs: 120_000 },
    );
    this.recordProcess('pg-translicator', this.translicator.pid);
  }

  private runScript(script: string, args: string[], extraEnv: Record<string, string>): Promise<void> {
    return new Promise((done, fail) => {
      const child = spawn(join(root, 'scripts', script), args, {
        env: { ...process.env, ...this.env, ...extraEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.script = child;
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('error', fail);
      child.once('exit', (code) => {
        writeFileSync(join(this.servers.dir, `${script}.log`), output);
        if (code === 0) done();
        else fail(new Error(`${script} exited with code ${code}:\n${output.slice(-4000)}`));
      });
    });
  }

  /** The bootstrap script's own report (sizes, durations), from its log. */
  scriptLog(script: string): string {
    try {
      return readFileSync(join(this.servers.dir, `${script}.log`), 'utf8');
    } catch {
      return '';
    }
  }
}
