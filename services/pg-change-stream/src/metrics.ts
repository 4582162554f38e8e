import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { ChangeStream } from './change-stream.js';
import type { ChangeStreamGrpcServer } from './grpc/service.js';

/** Prometheus metrics of pg-change-stream, read from the core when scraped. */
export function createMetrics(core: ChangeStream, grpcServer: ChangeStreamGrpcServer): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kasho_change_stream_process_' });
  const gauge = (name: string, help: string, read: () => Promise<number> | number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(await read());
      },
    });
  const states = ['WAITING', 'ACCUMULATING', 'STREAMING'] as const;
  new Gauge({
    name: 'kasho_change_stream_state',
    help: 'Bootstrap state: 1 for the current one',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const state of states) this.set({ state }, core.state.state === state ? 1 : 0);
    },
  });
  gauge('kasho_change_stream_received_lsn', 'Last WAL position received from the source', () =>
    Number(core.captureStats?.receivedLsn ?? 0n),
  );
  gauge(
    'kasho_change_stream_confirmed_lsn',
    'Position confirmed to the source (slot confirmed_flush_lsn)',
    () => Number(core.captureStats?.confirmedLsn ?? 0n),
  );
  gauge('kasho_change_stream_lag_bytes', 'Received but not yet acknowledged WAL, in bytes', () => {
    const capture = core.captureStats;
    if (!capture || capture.receivedLsn === 0n) return 0;
    const lag = capture.receivedLsn - capture.confirmedLsn;
    return lag > 0n ? Number(lag) : 0;
  });
  gauge('kasho_change_stream_retained_wal_bytes', 'WAL the slot keeps on the source', async () =>
    Number((await core.retainedWalBytes().catch(() => undefined)) ?? 0n),
  );
  gauge('kasho_change_stream_buffered_changes', 'Changes in the Redis buffer, not yet acknowledged', () =>
    core.buffer.length('changes').catch(() => 0),
  );
  gauge(
    'kasho_change_stream_connected_clients',
    'Consumers streaming now',
    () => grpcServer.connectedClients,
  );
  const captured = new Counter({
    name: 'kasho_change_stream_changes_total',
    help: 'Change events written to the buffer',
    registers: [registry],
  });
  const errors = new Counter({
    name: 'kasho_change_stream_errors_total',
    help: 'Replication or buffer errors (each outage counts once)',
    registers: [registry],
  });
  let seen = 0;
  core.on('appended', () => {
    const total = core.captureStats?.changesCaptured ?? 0;
    captured.inc(Math.max(0, total - seen));
    seen = total;
  });
  core.on('capture-error', () => errors.inc());
  return registry;
}
