import * as grpc from '@grpc/grpc-js';
import {
  ChangeStreamServiceClient,
  type AcknowledgeResponse,
  type CompleteBootstrapResponse,
  type GetStatusResponse,
  type Position,
  type ReleaseSnapshotResponse,
  type ResetBootstrapResponse,
  type StartBootstrapResponse,
} from './gen/kasho/change_stream.js';

type Callback<Res> = (error: grpc.ServiceError | null, response: Res) => void;

/** kasho.ChangeStreamService's unary calls as promises, plus the raw client for Stream. */
export class ChangeStreamApi {
  readonly client: ChangeStreamServiceClient;

  constructor(address: string, tls = false) {
    this.client = new ChangeStreamServiceClient(
      address,
      tls ? grpc.credentials.createSsl() : grpc.credentials.createInsecure(),
      {
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
        'grpc.max_receive_message_length': 256 * 1024 * 1024,
      },
    );
  }

  getStatus(): Promise<GetStatusResponse> {
    return this.unary((cb: Callback<GetStatusResponse>) => this.client.getStatus({}, cb));
  }

  startBootstrap(snapshotTimeoutSeconds = 0): Promise<StartBootstrapResponse> {
    return this.unary((cb: Callback<StartBootstrapResponse>) =>
      this.client.startBootstrap({ startLsn: '', snapshotName: '', snapshotTimeoutSeconds }, cb),
    );
  }

  releaseSnapshot(): Promise<ReleaseSnapshotResponse> {
    return this.unary((cb: Callback<ReleaseSnapshotResponse>) => this.client.releaseSnapshot({}, cb));
  }

  completeBootstrap(): Promise<CompleteBootstrapResponse> {
    return this.unary((cb: Callback<CompleteBootstrapResponse>) => this.client.completeBootstrap({}, cb));
  }

  resetBootstrap(): Promise<ResetBootstrapResponse> {
    return this.unary((cb: Callback<ResetBootstrapResponse>) => this.client.resetBootstrap({}, cb));
  }

  acknowledge(position: Position): Promise<AcknowledgeResponse> {
    return this.unary((cb: Callback<AcknowledgeResponse>) => this.client.acknowledge({ position }, cb));
  }

  close(): void {
    this.client.close();
  }

  private unary<Res>(start: (callback: Callback<Res>) => unknown): Promise<Res> {
    return new Promise((resolve, reject) => {
      start((error, response) => (error ? reject(error) : resolve(response)));
    });
  }
}
