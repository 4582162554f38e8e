/**
 * Shared setup of pg-change-stream's integration tests: a real source PostgreSQL and Redis, bin/pg-change-stream
 * (built with `npm run build`) on free ports, and a consumer that checks the stream the way pg-translicator must
 * (positions only go forward, seq contiguous inside a transaction, the chain LSN, relations before rows), keeps
 * what it applied, acknowledges, and reconnects after its last applied position when the stream breaks.
 *
 *   let pipeline: Pipeline;
 *   before(async () => { pipeline = await startPipeline(); await pipeline.bootstrap(); });
 *   after(async () => { await pipeline?.close(); });
 */
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import pg from 'pg';
import {
  ChangeStreamApi,
  comparePositions,
  formatLsn,
  parseLsn,
  OldTuple,
  RowOperation,
  ValueKind,
  type Begin,
  type Change,
  type Ddl,
  type Position,
  type Relation,
  type StartBootstrapResponse,
  type StreamResponse,
  type Truncate,
  type Value,
} from '@kasho/common';
import {
  startLocalServers,
  type LocalServers,
  type PgServer,
} from '../../../../hack/testing/local-servers.js';
import { freePort, startService, type RunningService } from '../../../../hack/testing/services.js';

export { eventually } from '../../../../hack/testing/services.js';

export const SLOT = 'kasho_slot';

/** The guide's DDL log table, as the preparation script will create it, plus the search_path column. */
const DDL_LOG_SQL = `
  CREATE TABLE public.kasho_ddl_log (
    id bigserial PRIMARY KEY,
    lsn pg_lsn NOT NULL DEFAULT pg_current_wal_lsn(),
    timestamp timestamptz NOT NULL DEFAULT now(),
    username text NOT NULL DEFAULT current_user,
    database text NOT NULL DEFAULT current_database(),
    ddl text NOT NULL,
    search_path text
  );
  CREATE PUBLICATION kasho_pub FOR ALL TABLES;
`;

export const text = (value: string): Value => ({ kind: ValueKind.TEXT, text: value });
export const NULL: Value = { kind: ValueKind.NULL, text: '' };
export const UNCHANGED_TOAST: Value = { kind: ValueKind.UNCHANGED_TOAST, text: '' };

export function grpcCode(error: unknown): number | undefined {
  return (error as ServiceError | undefined)?.code;
}

export interface ReceivedRow {
  table: string;
  operation: RowOperation;
  newValues: Value[];
  oldTuple: OldTuple;
  oldValues: Value[];
  relation: Relation;
  position: Position;
}

export type ReceivedEvent =
  | { kind: 'row'; row: ReceivedRow }
  | { kind: 'truncate'; truncate: Truncate }
  | { kind: 'ddl'; ddl: Ddl }
  | { kind: 'message'; prefix: string };

export interface ReceivedTransaction {
  begin: Begin;
  events: ReceivedEvent[];
}

export interface ConsumerOptions {
  name?: string;
  epoch?: string;
  /** Keep every event (false: only count rows, for very large streams). */
  keep?: boolean;
  /** Acknowledge at every Commit, or after every this many events (also inside a transaction). */
  ackEvery?: 'commit' | number;
  /** Reconnect after the last applied position when the stream breaks (kill -9, rebuild). */
  reconnect?: boolean;
  /** Called with every row as it is applied (also with keep: false). */
  onRow?: (row: ReceivedRow) => void;
}

/**
 * A consumer of the Stream call. Its "target" is memory: an event counts as applied once received, so it resumes
 * strictly after the last event it received. Protocol violations (a gap in the chain, a seq out of order, a row
 * before its relation) stop it and land in `failure`.
 */
export class Consumer {
  position: Position = { lsn: 0n, seq: 0n };
  chain = 0n;
  readonly transactions: ReceivedTransaction[] = [];
  rowCount = 0;
  connections = 0;
  acknowledged: Position | undefined;
  failure: Error | undefined;
  /** Errors the stream ended with (reconnected after each). */
  readonly streamErrors: ServiceError[] = [];
  private open: (ReceivedTransaction & { nextSeq: bigint }) | undefined;
  private readonly relations = new Map<string, Relation>();
  private call: ClientReadableStream<StreamResponse> | undefined;
  private stopped = false;
  private sinceAck = 0;
  private ackInFlight = false;
  private ackWanted: Position | undefined;
  private readonly options: Required<ConsumerOptions>;

  /** `api` gives the current client: a restarted service gets a fresh one (see Pipeline.api). */
  constructor(
    private readonly api: () => ChangeStreamApi,
    options: ConsumerOptions = {},
  ) {
    this.options = {
      name: 'test-consumer',
      epoch: '',
      keep: true,
      ackEvery: 'commit',
      reconnect: true,
      onRow: () => undefined,
      ...options,
    };
  }

  start(): this {
    this.connect();
    return this;
  }

  stop(): void {
    this.stopped = true;
    this.call?.cancel();
    this.call = undefined;
  }

  /** Connects again after stop(), after the last applied position. */
  resume(): this {
    this.stopped = false;
    this.connect();
    return this;
  }

  /** A transaction was begun and its Commit has not arrived yet. */
  get inTransaction(): boolean {
    return this.open !== undefined;
  }

  /** Every row of every completed transaction, in order. */
  rows(): ReceivedRow[] {
    return this.transactions.flatMap((txn) =>
      txn.events.flatMap((event) => (event.kind === 'row' ? [event.row] : [])),
    );
  }

  /** Waits until `check` holds, failing early if the consumer stopped on a protocol violation. */
  async until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw new Error(`the consumer stopped: ${this.failure.message}`);
      if (check()) return;
      if (Date.now() > deadline) {
        const errors = this.streamErrors.map((error) => error.details ?? error.message).join('; ');
        throw new Error(`timed out waiting for ${what}${errors ? ` (stream errors: ${errors})` : ''}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Waits for the committed transaction that contains a row of `table` for which `match` holds. */
  async transactionWith(table: string, match: (row: ReceivedRow) => boolean): Promise<ReceivedTransaction> {
    let found: ReceivedTransaction | undefined;
    await this.until(`a transaction with a matching row of ${table}`, () => {
      found = this.transactions.find((txn) =>
        txn.events.some((event) => event.kind === 'row' && event.row.table === table && match(event.row)),
      );
      return found !== undefined;
    });
    return found!;
  }

  private connect(): void {
    if (this.stopped || this.failure) return;
    this.connections++;
    const call = this.api().client.stream({
      after: this.position,
      consumer: this.options.name,
      epoch: this.options.epoch,
    });
    this.call = call;
    let ended = false;
    const retry = (error: ServiceError | undefined) => {
      if (ended || this.call !== call) return;
      ended = true;
      if (error) this.streamErrors.push(error);
      if (this.stopped || this.failure || !this.options.reconnect) return;
      setTimeout(() => this.connect(), 200);
    };
    call.on('data', (response: StreamResponse) => {
      try {
        for (const change of response.changes) this.apply(change);
      } catch (error) {
        this.failure = error as Error;
        call.cancel();
      }
    });
    call.on('error', (error: ServiceError) => retry(error));
    call.on('end', () => retry(undefined));
  }

  private apply(change: Change): void {
    const kind = change.kind;
    const position = change.position;
    if (!kind || !position) throw new Error('a change without kind or position');
    if (kind.$case === 'relation') {
      this.relations.set(`${kind.value.relationId}:${kind.value.version}`, kind.value);
      return;
    }
    if (comparePositions(position, this.position) <= 0) {
      throw new Error(
        `position ${formatPosition(position)} is not after the last applied ${formatPosition(this.position)}`,
      );
    }
    if (kind.$case === 'begin') {
      if (this.open) throw new Error(`Begin at ${formatPosition(position)} inside an open transaction`);
      const begin = kind.value;
      // Live transactions number their events from 0; the snapshot's pseudo-transactions count on across it.
      if (!begin.bootstrap && position.seq !== 0n) throw new Error(`Begin at seq ${position.seq}`);
      if (!begin.bootstrap && position.lsn !== begin.commitLsn) {
        throw new Error(
          `Begin at ${formatPosition(position)} of a transaction committed at ${begin.commitLsn}`,
        );
      }
      if (!begin.bootstrap && begin.previousCommitLsn > this.chain) {
        throw new Error(
          `gap: the transaction committed at ${formatLsn(begin.commitLsn)} follows ${formatLsn(begin.previousCommitLsn)}, the consumer applied up to ${formatLsn(this.chain)}`,
        );
      }
      this.open = { begin, events: [], nextSeq: position.seq + 1n };
    } else {
      const open = this.open;
      if (!open) throw new Error(`${kind.$case} at ${formatPosition(position)} outside a transaction`);
      if (position.seq !== open.nextSeq) {
        throw new Error(`seq ${position.seq} at ${formatPosition(position)}, expected ${open.nextSeq}`);
      }
      open.nextSeq++;
      if (kind.$case === 'commit') {
        this.chain = kind.value.commitLsn;
        this.open = undefined;
        if (this.options.keep) this.transactions.push({ begin: open.begin, events: open.events });
      } else {
        const event = this.event(change);
        if (event.kind === 'row') {
          this.rowCount++;
          this.options.onRow(event.row);
        }
        if (this.options.keep) open.events.push(event);
      }
    }
    this.position = position;
    this.sinceAck++;
    const every = this.options.ackEvery;
    if (every === 'commit' ? kind.$case === 'commit' : this.sinceAck >= every) {
      this.sinceAck = 0;
      this.acknowledge(position);
    }
  }

  private event(change: Change): ReceivedEvent {
    const kind = change.kind!;
    switch (kind.$case) {
      case 'row': {
        const row = kind.value;
        const relation = this.relations.get(`${row.relationId}:${row.relationVersion}`);
        if (!relation) {
          throw new Error(`row at ${formatPosition(change.position!)} before its relation ${row.relationId}`);
        }
        return {
          kind: 'row',
          row: {
            table: `${relation.table?.schema}.${relation.table?.name}`,
            operation: row.operation,
            newValues: row.newValues,
            oldTuple: row.oldTuple,
            oldValues: row.oldValues,
            relation,
            position: change.position!,
          },
        };
      }
      case 'truncate':
        return { kind: 'truncate', truncate: kind.value };
      case 'ddl':
        return { kind: 'ddl', ddl: kind.value };
      case 'message':
        return { kind: 'message', prefix: kind.value.prefix };
      default:
        throw new Error(`unexpected ${kind.$case} inside a transaction`);
    }
  }

  /**
   * One acknowledgement at a time; a newer position replaces one waiting to be sent. A failed one (the service is
   * down or rebuilding) is sent again until it goes through or a newer one replaces it.
   */
  private acknowledge(position: Position): void {
    this.ackWanted = position;
    if (this.ackInFlight) return;
    this.ackInFlight = true;
    void (async () => {
      while (this.ackWanted && !this.stopped) {
        const next = this.ackWanted;
        try {
          await this.api().acknowledge(next);
          this.acknowledged = next;
          if (this.ackWanted === next) this.ackWanted = undefined;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      this.ackInFlight = false;
    })();
  }
}

function formatPosition(position: Position): string {
  return `${formatLsn(position.lsn)}#${position.seq}`;
}

export interface Pipeline {
  readonly servers: LocalServers;
  readonly source: PgServer;
  /** A connection to the source as superuser, for the tests' SQL. */
  readonly sql: pg.Client;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly address: string;
  /** A client of the running service, connected (see startService). */
  readonly api: ChangeStreamApi;
  readonly service: RunningService | undefined;
  /** Starts bin/pg-change-stream (again) on the same ports and waits until it is ready. */
  startService(): Promise<RunningService>;
  /** kill -9 of the service. */
  killService(): Promise<void>;
  /** SIGTERM of the service. */
  stopService(): Promise<void>;
  /** StartBootstrap, ReleaseSnapshot, CompleteBootstrap: an empty snapshot, then streaming. */
  bootstrap(): Promise<StartBootstrapResponse>;
  consumer(options?: ConsumerOptions): Consumer;
  /** The slot's confirmed_flush_lsn and active pid, or undefined without a slot. */
  slot(): Promise<{ confirmed: bigint; activePid: number | null } | undefined>;
  /** Everything the service processes printed, for a failing test's report. */
  output(): string;
  close(): Promise<void>;
}

/** Source PostgreSQL with the DDL log table and the publication, Redis, and a running pg-change-stream. */
export async function startPipeline(setupSql = ''): Promise<Pipeline> {
  const servers = await startLocalServers({ source: true, redis: true });
  let sql: pg.Client | undefined;
  let api: ChangeStreamApi | undefined;
  const clients: ChangeStreamApi[] = [];
  let service: RunningService | undefined;
  const consumers: Consumer[] = [];
  let outputs = '';
  try {
    const source = servers.source!;
    sql = new pg.Client({ connectionString: source.superuserUrl });
    await sql.connect();
    await sql.query(DDL_LOG_SQL + setupSql);
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const address = `127.0.0.1:${grpcPort}`;
    const env = {
      PRIMARY_DATABASE_URL: source.url,
      KV_URL: servers.redis!.url,
      GRPC_PORT: String(grpcPort),
      HTTP_PORT: String(httpPort),
      SLOT_NAME: SLOT,
    };
    const client = sql;
    const currentApi = (): ChangeStreamApi => {
      if (!api) throw new Error('the service was not started');
      return api;
    };
    const pipeline: Pipeline = {
      servers,
      source,
      sql: client,
      grpcPort,
      httpPort,
      address,
      get api() {
        return currentApi();
      },
      get service() {
        return service;
      },
      async startService() {
        if (service) outputs += service.output();
        service = await startService('pg-change-stream', env, { httpPort });
        const fresh = new ChangeStreamApi(address);
        clients.push(fresh);
        // Channels to one address share their connection, which may still be waiting out its reconnection
        // backoff from when the service was down.
        await new Promise<void>((resolve, reject) =>
          fresh.client.waitForReady(Date.now() + 30_000, (error) => (error ? reject(error) : resolve())),
        );
        api = fresh;
        return service;
      },
      async killService() {
        await service?.kill9();
      },
      async stopService() {
        await service?.stop();
      },
      async bootstrap() {
        const started = await currentApi().startBootstrap();
        await currentApi().releaseSnapshot();
        await currentApi().completeBootstrap();
        return started;
      },
      consumer(options) {
        const consumer = new Consumer(currentApi, options);
        consumers.push(consumer);
        return consumer;
      },
      async slot() {
        const { rows } = await client.query<{ confirmed: string; active_pid: number | null }>(
          'SELECT confirmed_flush_lsn::text AS confirmed, active_pid FROM pg_replication_slots WHERE slot_name = $1',
          [SLOT],
        );
        const row = rows[0];
        return row ? { confirmed: parseLsn(row.confirmed), activePid: row.active_pid } : undefined;
      },
      output: () => outputs + (service?.output() ?? ''),
      async close() {
        try {
          for (const consumer of consumers) consumer.stop();
          for (const each of clients) each.close();
          await service?.stop();
          await client.end().catch(() => undefined);
        } finally {
          await servers.stop();
        }
      },
    };
    await pipeline.startService();
    return pipeline;
  } catch (error) {
    for (const each of clients) each.close();
    await service?.kill9();
    await sql?.end().catch(() => undefined);
    await servers.stop();
    throw error;
  }
}

/**
 * Rows of a query as the server prints them: each value through its type's output function, NULL as NULL. Not
 * ::text, which differs for some types.
 */
export async function serverText(client: pg.Client, query: string): Promise<Value[][]> {
  const result = await client.query<unknown[]>({
    text: query,
    rowMode: 'array',
    types: { getTypeParser: () => (value: string) => value },
  });
  return result.rows.map((row) => row.map((value) => (value === null ? NULL : text(value as string))));
}

/** Prints the service's output under a failed test, so a failure in a spawned process can be read. */
export function printOutputOnFailure(context: Mocha.Context, pipeline: Pipeline | undefined): void {
  if (context.currentTest?.state === 'failed' && pipeline) {
    const output = pipeline.output();
    console.log(
      `--- pg-change-stream output (last 6000 characters of ${output.length}) ---\n${output.slice(-6000)}`,
    );
  }
}
