/**
 * What the controller talks to besides the API server, each behind a small interface so that a test can point it
 * at local processes: the change-stream's gRPC API, the translicator's /metrics, and the source database (for the
 * slot's retained WAL while suspended, and for dropping the slot and publication at deletion).
 */
import { ChangeStreamApi, BootstrapState, type GetStatusResponse } from '@kasho/common';
import { formatLsn } from '@kasho/common/lsn';
import { redactSecrets } from '@kasho/common/redact';
import pg from 'pg';
import { GRPC_PORT, HTTP_PORT, childNames } from '../desired/names.js';
import type { ChangeStreamStatus, SlotObservation, TranslicatorMetrics } from '../reconcile/observed.js';

/** The part of kasho.ChangeStreamService the operator uses (ChangeStreamApi from @kasho/common fits). */
export interface ChangeStreamClient {
  getStatus(): Promise<GetStatusResponse>;
  startBootstrap(snapshotTimeoutSeconds?: number): Promise<unknown>;
  releaseSnapshot(): Promise<unknown>;
  completeBootstrap(): Promise<unknown>;
  resetBootstrap(): Promise<unknown>;
  close(): void;
}

export type ChangeStreamClientFactory = (address: string) => ChangeStreamClient;
export const grpcChangeStreamClientFactory: ChangeStreamClientFactory = (address) =>
  new ChangeStreamApi(address);

/** Where a pipeline's change-stream answers; by default its Service's cluster DNS name. */
export type ChangeStreamAddressResolver = (namespace: string, name: string) => string;
export const clusterChangeStreamAddress: ChangeStreamAddressResolver = (namespace, name) =>
  `${childNames(name).changeStream}.${namespace}.svc:${GRPC_PORT}`;

export type TranslicatorMetricsReader = (
  namespace: string,
  name: string,
) => Promise<TranslicatorMetrics | undefined>;

export function toChangeStreamStatus(response: GetStatusResponse): ChangeStreamStatus {
  const state =
    response.state === BootstrapState.WAITING
      ? 'WAITING'
      : response.state === BootstrapState.ACCUMULATING
        ? 'ACCUMULATING'
        : response.state === BootstrapState.STREAMING
          ? 'STREAMING'
          : 'UNKNOWN';
  const acknowledged = response.acknowledgedPosition?.lsn ?? 0n;
  return {
    state,
    slotName: response.slotName,
    startLsn: response.startLsn,
    receivedLsn: response.receivedLsn,
    confirmedLsn: response.confirmedLsn,
    acknowledgedLsn: acknowledged > 0n ? formatLsn(acknowledged) : '',
    accumulatedChanges: Number(response.accumulatedChanges),
    bootstrapChanges: Number(response.bootstrapChanges),
    retainedWalBytes: Number(response.retainedWalBytes),
    epoch: response.epoch,
    lastError: response.lastError,
  };
}

/** gRPC codes worth waiting out: UNAVAILABLE, DEADLINE_EXCEEDED, and our own timeout. */
export function isTransientGrpcError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 14 || code === 4 || code === 'ETIMEDOUT';
}

export function describeGrpcError(error: unknown): string {
  const details = (error as { details?: unknown } | null)?.details;
  const text =
    typeof details === 'string' && details !== ''
      ? details
      : error instanceof Error
        ? error.message
        : String(error);
  // grpc-js ends connection errors with an empty "Resolution note:".
  return redactSecrets(text.replace(/\.?\s*Resolution note:\s*$/, ''));
}

/** Rejects with a transient error after timeoutMs (a blackholed address would otherwise hang a worker). */
export function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(Object.assign(new Error(`${what} timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' })),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The unlabelled samples of a Prometheus text exposition, by metric name. */
export function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\S+)/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    const value = Number(match[2]);
    if (!Number.isNaN(value)) samples.set(match[1], value);
  }
  return samples;
}

export function toTranslicatorMetrics(samples: Map<string, number>): TranslicatorMetrics {
  const applied = samples.get('kasho_translicator_applied_lsn');
  const lagSeconds = samples.get('kasho_translicator_lag_seconds');
  const lagBytes = samples.get('kasho_translicator_lag_bytes');
  return {
    ...(lagSeconds !== undefined ? { lagSeconds } : {}),
    ...(lagBytes !== undefined ? { lagBytes: Math.max(0, Math.round(lagBytes)) } : {}),
    ...(applied !== undefined && applied > 0 ? { appliedLsn: formatLsn(BigInt(Math.round(applied))) } : {}),
  };
}

/** Reads /metrics over HTTP from the URL urlOf gives (by default the translicator Service's). */
export function httpTranslicatorMetricsReader(
  urlOf: (namespace: string, name: string) => string = (namespace, name) =>
    `http://${childNames(name).translicator}.${namespace}.svc:${HTTP_PORT}/metrics`,
  timeoutMs = 3000,
): TranslicatorMetricsReader {
  return async (namespace, name) => {
    try {
      const response = await fetch(urlOf(namespace, name), { signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) return undefined;
      return toTranslicatorMetrics(parsePrometheusText(await response.text()));
    } catch {
      return undefined;
    }
  };
}

export interface DropRequest {
  /** The kasho role's URL: it owns the slot (REPLICATION). */
  url: string;
  /** A superuser's URL, when known: the publication belongs to whoever created it (the preparation's superuser). */
  superuserUrl?: string;
  slot: string;
  publication: string;
}

export interface SourceAdmin {
  slotInfo(url: string, slot: string): Promise<SlotObservation>;
  dropSlotAndPublication(request: DropRequest): Promise<void>;
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function withClient<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: url,
    application_name: 'kasho-operator',
    connectionTimeoutMillis: 5000,
    statement_timeout: 15_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await work(client);
  } catch (error) {
    // The cause stays behind on purpose: its fields may carry connection details; the message is redacted.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(redactSecrets(error instanceof Error ? error.message : String(error)));
  } finally {
    await client.end().catch(() => undefined);
  }
}

export const postgresSourceAdmin: SourceAdmin = {
  async slotInfo(url, slot) {
    try {
      return await withClient(url, async (client) => {
        const { rows } = await client.query<{ active: boolean; retained: string | null }>(
          `SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint::text AS retained
             FROM pg_replication_slots WHERE slot_name = $1`,
          [slot],
        );
        const row = rows[0];
        if (!row) return { reachable: true, exists: false, active: false };
        return {
          reachable: true,
          exists: true,
          active: row.active,
          ...(row.retained !== null ? { retainedWalBytes: Number(row.retained) } : {}),
        };
      });
    } catch (error) {
      return { reachable: false, error: (error as Error).message };
    }
  },

  async dropSlotAndPublication({ url, superuserUrl, slot, publication }) {
    await withClient(superuserUrl ?? url, async (client) => {
      // A reader still attached (a terminating pod) keeps the slot active; end it, then drop.
      for (let attempt = 0; ; attempt++) {
        await client.query(
          'SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL',
          [slot],
        );
        try {
          await client.query(
            'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1',
            [slot],
          );
          break;
        } catch (error) {
          // 55006: object_in_use (the reader came back before the drop).
          if ((error as { code?: string }).code !== '55006' || attempt >= 5) throw error;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      }
      await client.query(`DROP PUBLICATION IF EXISTS ${quoteIdent(publication)}`);
    });
  },
};
