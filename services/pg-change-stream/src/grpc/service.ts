import { once } from 'node:events';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import {
  BufferLostError,
  BootstrapState,
  ChangeStreamServiceService,
  comparePositions,
  formatLsn,
  KashoError,
  type ChangeBuffer,
  type Logger,
  type Position,
  type StreamRequest,
} from '@kasho/common';
import { StateTransitionError, type BootstrapStateName } from '../state/bootstrap-state.js';
import { PreconditionError, UnavailableError, type ChangeStream } from '../change-stream.js';
import { encodeRelationEvent, encodeStreamResponse } from './stream-encoding.js';

const PROTO_FILE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../../proto/kasho/change_stream.proto',
);
const BATCH = 1_000;
const BLOCK_MS = 1_000;
/** How long a shutdown waits for calls in flight before it cuts them off. */
const SHUTDOWN_GRACE_MS = 5_000;

const STATE_ENUM: Record<BootstrapStateName, BootstrapState> = {
  WAITING: BootstrapState.WAITING,
  ACCUMULATING: BootstrapState.ACCUMULATING,
  STREAMING: BootstrapState.STREAMING,
};

/** Serves kasho.ChangeStreamService, grpc.health.v1 and server reflection. */
export class ChangeStreamGrpcServer {
  private readonly server = new grpc.Server({
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  private consumer: { name: string; since: number } | undefined;
  /** Aborted at shutdown: open streams end with UNAVAILABLE so the consumer reconnects to the next instance. */
  private readonly closing = new AbortController();
  readonly health = new HealthImplementation({
    '': 'NOT_SERVING',
    'kasho.ChangeStreamService': 'NOT_SERVING',
  });

  constructor(
    private readonly core: ChangeStream,
    private readonly logger: Logger,
  ) {
    const service = {
      ...ChangeStreamServiceService,
      stream: { ...ChangeStreamServiceService.stream, responseSerialize: (bytes: Buffer) => bytes },
    } as grpc.ServiceDefinition;
    this.server.addService(service, this.handlers());
    this.health.addToServer(this.server);
    // Only kasho's own service: @grpc/reflection describes the map in grpc-health-check's health.proto in a way
    // grpcurl rejects (fullstorydev/grpcurl#519), and a listed service that cannot be described is worse than none.
    const packageDefinition = protoLoader.loadSync(PROTO_FILE, {
      longs: String,
      enums: String,
      defaults: true,
    });
    new ReflectionService(packageDefinition).addToServer(this.server);
  }

  get connectedClients(): number {
    return this.consumer ? 1 : 0;
  }

  async listen(port: number, host = '0.0.0.0'): Promise<number> {
    const bound = await new Promise<number>((resolvePort, reject) =>
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, actual) =>
        error ? reject(error) : resolvePort(actual),
      ),
    );
    this.health.setStatus('', 'SERVING');
    this.health.setStatus('kasho.ChangeStreamService', 'SERVING');
    return bound;
  }

  async close(): Promise<void> {
    this.health.setStatus('', 'NOT_SERVING');
    this.health.setStatus('kasho.ChangeStreamService', 'NOT_SERVING');
    this.closing.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((done) => this.server.tryShutdown(() => done())),
      new Promise<void>((done) => (timer = setTimeout(done, SHUTDOWN_GRACE_MS))),
    ]);
    clearTimeout(timer);
    this.server.forceShutdown();
  }

  private handlers(): grpc.UntypedServiceImplementation {
    const core = this.core;
    return {
      getStatus: this.unary(async () => {
        const capture = core.captureStats;
        const slot = await core.buffer.length('changes');
        return {
          state: STATE_ENUM[core.state.state],
          slotName: core.config.slotName,
          publicationName: core.config.publicationName,
          startLsn: core.state.startLsn !== undefined ? formatLsn(core.state.startLsn) : '',
          receivedLsn: capture && capture.receivedLsn > 0n ? formatLsn(capture.receivedLsn) : '',
          confirmedLsn: capture && capture.confirmedLsn > 0n ? formatLsn(capture.confirmedLsn) : '',
          accumulatedChanges: BigInt(capture?.changesCaptured ?? 0),
          bufferedChanges: BigInt(slot),
          bootstrapChanges: BigInt(await core.buffer.length('bootstrap')),
          connectedClients: this.connectedClients,
          uptimeSeconds: BigInt(Math.floor((Date.now() - core.startedAt) / 1000)),
          retainedWalBytes: (await core.retainedWalBytes()) ?? 0n,
          acknowledgedPosition: core.acknowledged,
          snapshotName: core.heldSnapshotName ?? '',
          snapshotHeld: core.heldSnapshotName !== undefined,
          serverVersion: core.serverVersion,
          epoch: core.state.epoch,
          lastError: core.lastError,
        };
      }),
      startBootstrap: this.unary(
        async (request: { startLsn: string; snapshotName: string; snapshotTimeoutSeconds: number }) => {
          const started = await core.startBootstrap({
            startLsn: request.startLsn,
            snapshotName: request.snapshotName,
            timeoutSeconds: request.snapshotTimeoutSeconds,
          });
          return {
            state: STATE_ENUM[core.state.state],
            slotName: core.config.slotName,
            startLsn: formatLsn(started.startLsn),
            snapshotName: started.snapshotName,
            epoch: started.epoch,
          };
        },
      ),
      releaseSnapshot: this.unary(async () => ({ released: await core.releaseSnapshot() })),
      completeBootstrap: this.unary(async () => {
        const counts = await core.completeBootstrap();
        return { state: STATE_ENUM[core.state.state], ...counts };
      }),
      resetBootstrap: this.unary(async () => {
        const result = await core.resetBootstrap();
        return { state: STATE_ENUM[core.state.state], slotDropped: result.slotDropped };
      }),
      acknowledge: this.unary(async (request: { position?: Position }) => {
        if (!request.position) throw new KashoError('Acknowledge needs a position');
        await core.acknowledge(request.position);
        const confirmed = core.captureStats?.confirmedLsn ?? 0n;
        return { confirmedLsn: confirmed > 0n ? formatLsn(confirmed) : '' };
      }),
      stream: (call: grpc.ServerWritableStream<StreamRequest, Buffer>) => {
        void this.serveStream(call).catch((error: unknown) => {
          // grpc-js turns an 'error' event into the call's status; destroy() would end it without one, and the
          // client would wait forever.
          call.emit('error', toGrpcError(error));
        });
      },
    };
  }

  private unary<Req, Res>(work: (request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      work(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => {
          const grpcError = toGrpcError(error);
          if (grpcError.code === grpc.status.INTERNAL)
            this.logger.error(`gRPC call failed: ${grpcError.details}`);
          callback(grpcError);
        },
      );
    };
  }

  private async serveStream(call: grpc.ServerWritableStream<StreamRequest, Buffer>): Promise<void> {
    const request = call.request;
    const name = request.consumer || call.getPeer();
    if (this.consumer) {
      throw Object.assign(new Error(), {
        code: grpc.status.ALREADY_EXISTS,
        details: `another consumer (${this.consumer.name}) is streaming: only one pg-translicator may apply a pipeline at a time`,
      });
    }
    if (this.closing.signal.aborted) throw shuttingDown();
    this.consumer = { name, since: Date.now() };
    let cancelled = false;
    // Every wait below also ends when the consumer goes away, so that its slot is freed for the next one.
    const gone = new AbortController();
    const onCancelled = () => {
      cancelled = true;
      gone.abort();
    };
    this.closing.signal.addEventListener('abort', onCancelled, { once: true });
    call.on('cancelled', onCancelled);
    call.on('close', onCancelled);
    call.on('error', onCancelled);
    const reader = this.core.buffer.redis.duplicate();
    reader.on('error', () => undefined);
    try {
      this.logger.info(`Consumer ${name} connected`);
      while (!cancelled && this.core.state.state !== 'STREAMING') {
        await once(this.core, 'state', { signal: gone.signal }).catch(() => undefined);
      }
      if (this.closing.signal.aborted) throw shuttingDown();
      if (cancelled) return;
      if (request.epoch && this.core.state.epoch && request.epoch !== this.core.state.epoch) {
        throw Object.assign(new Error(), {
          code: grpc.status.FAILED_PRECONDITION,
          details: `the consumer's position belongs to bootstrap epoch ${request.epoch}, the stream is at epoch ${this.core.state.epoch}: reload the target from the new bootstrap`,
        });
      }
      await this.pump(call, request.after ?? { lsn: 0n, seq: 0n }, reader, () => cancelled, gone.signal);
    } finally {
      this.closing.signal.removeEventListener('abort', onCancelled);
      this.consumer = undefined;
      reader.disconnect();
      this.logger.info(`Consumer ${name} disconnected`);
    }
  }

  private async pump(
    call: grpc.ServerWritableStream<StreamRequest, Buffer>,
    after: Position,
    reader: ChangeBuffer['redis'],
    isCancelled: () => boolean,
    gone: AbortSignal,
  ): Promise<void> {
    const buffer = this.core.buffer;
    const generation = this.core.generation;
    const sentRelations = new Set<string>();
    let cursor = after;
    let stream: 'bootstrap' | 'changes' = cursor.lsn === 0n ? 'bootstrap' : 'changes';
    while (!isCancelled()) {
      if (this.closing.signal.aborted) throw shuttingDown();
      if (this.core.generation !== generation || this.core.state.state !== 'STREAMING') {
        // Positions read from here on would belong to another buffer (rebuilt, reset or bootstrapped again):
        // the consumer reconnects with its own position, and its epoch and chain say whether it may go on.
        throw Object.assign(new Error(), {
          code: grpc.status.UNAVAILABLE,
          details: `the change buffer was started over (state ${this.core.state.state}): reconnect and resume from the last applied position`,
        });
      }
      const entries = await buffer.readAfter(stream, cursor, BATCH);
      if (entries.length === 0) {
        if (stream === 'bootstrap') {
          stream = 'changes';
          continue;
        }
        await reader.xread('BLOCK', BLOCK_MS, 'STREAMS', buffer.keys.changes, `${cursor.lsn}-${cursor.seq}`);
        continue;
      }
      const out: Buffer[] = [];
      for (const entry of entries) {
        if (entry.relation && !sentRelations.has(entry.relation)) {
          const relation = await buffer.relation(entry.relation);
          if (!relation) {
            throw new KashoError(
              `relation ${entry.relation} of the change at ${entry.position.lsn}/${entry.position.seq} is missing from the buffer`,
            );
          }
          out.push(encodeRelationEvent(relation, entry.position));
          sentRelations.add(entry.relation);
        }
        out.push(entry.encoded);
      }
      cursor = entries[entries.length - 1]!.position;
      if (comparePositions(cursor, after) <= 0) throw new KashoError('the buffer went backwards');
      if (!call.write(encodeStreamResponse(out))) {
        await once(call, 'drain', { signal: gone }).catch(() => undefined);
      }
    }
    if (this.closing.signal.aborted) throw shuttingDown();
  }
}

function shuttingDown(): Error {
  return Object.assign(new Error(), {
    code: grpc.status.UNAVAILABLE,
    details: 'pg-change-stream is shutting down: reconnect and resume from the last applied position',
  });
}

function toGrpcError(error: unknown): grpc.ServiceError {
  if (typeof error === 'object' && error !== null && 'code' in error && 'details' in error) {
    return error as grpc.ServiceError;
  }
  const make = (code: grpc.status, details: string) =>
    Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
  if (error instanceof StateTransitionError) return make(grpc.status.FAILED_PRECONDITION, error.message);
  if (error instanceof PreconditionError) return make(grpc.status.FAILED_PRECONDITION, error.describe());
  if (error instanceof UnavailableError || error instanceof BufferLostError) {
    return make(grpc.status.UNAVAILABLE, error.describe());
  }
  if (error instanceof KashoError) return make(grpc.status.INTERNAL, error.describe());
  return make(grpc.status.INTERNAL, error instanceof Error ? error.message : String(error));
}
