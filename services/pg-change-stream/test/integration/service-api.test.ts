/**
 * bin/pg-change-stream's surface besides the stream itself: GetStatus, gRPC server reflection (the guide's grpcurl
 * lines), grpc.health.v1, /metrics, and the slot moving on while the database is idle.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { BootstrapState, formatLsn, parseLsn, type StartBootstrapResponse } from '@kasho/common';
import {
  SLOT,
  eventually,
  printOutputOnFailure,
  startPipeline,
  type Consumer,
  type Pipeline,
} from './support.js';

const run = promisify(execFile);

type HealthCheck = (
  request: { service: string },
  callback: (error: grpc.ServiceError | null, response: { status: string }) => void,
) => void;
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

/** The pinned grpcurl that hack/k8s/build.sh builds, or why it cannot be used. */
async function findGrpcurl(): Promise<{ path: string } | { missing: string }> {
  const script = join(root, 'hack/k8s/bin-path.sh');
  let dir: string;
  try {
    dir = (await run('bash', [script, 'grpcurl'])).stdout.trim();
  } catch (error) {
    return { missing: `hack/k8s/bin-path.sh grpcurl failed: ${(error as Error).message}` };
  }
  const path = join(dir, 'grpcurl');
  try {
    accessSync(path, constants.X_OK);
    return { path };
  } catch {
    return { missing: `${path} is not built yet (hack/k8s/build.sh builds it)` };
  }
}

describe('pg-change-stream: status, reflection, health and an idle database', function () {
  this.timeout(120_000);

  let pipeline: Pipeline;
  let started: StartBootstrapResponse;
  let consumer: Consumer;

  before(async () => {
    pipeline = await startPipeline('CREATE TABLE t (id int PRIMARY KEY, v text);');
    started = await pipeline.bootstrap();
    consumer = pipeline.consumer({ epoch: started.epoch }).start();
  });

  afterEach(function () {
    printOutputOnFailure(this, pipeline);
  });

  after(async () => {
    await pipeline?.close();
  });

  it('GetStatus reports the state, the slot, the positions, the counts, the clients, uptime and retained WAL', async () => {
    await pipeline.sql.query(`INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    await consumer.until('the three rows, acknowledged', () => {
      return consumer.rows().length >= 3 && consumer.acknowledged?.lsn === consumer.position.lsn;
    });
    const commitLsn = consumer.transactions.at(-1)!.begin.commitLsn;
    const status = await eventually('the acknowledgement confirmed to the slot', async () => {
      const current = await pipeline.api.getStatus();
      return current.confirmedLsn !== '' && parseLsn(current.confirmedLsn) >= commitLsn ? current : undefined;
    });
    expect(status.state).to.equal(BootstrapState.STREAMING);
    expect(status.slotName).to.equal(SLOT);
    expect(status.publicationName).to.equal('kasho_pub');
    expect(status.startLsn).to.equal(started.startLsn);
    expect(status.startLsn).to.match(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(parseLsn(status.receivedLsn) >= commitLsn).to.equal(true);
    expect(status.confirmedLsn).to.equal(formatLsn((await pipeline.slot())!.confirmed));
    expect(status.accumulatedChanges >= 5n, 'Begin, three rows, Commit').to.equal(true);
    expect(status.bufferedChanges, 'everything acknowledged was trimmed').to.equal(0n);
    expect(status.bootstrapChanges).to.equal(0n);
    expect(status.connectedClients).to.equal(1);
    expect(status.retainedWalBytes > 0n).to.equal(true);
    expect(status.acknowledgedPosition).to.deep.equal(consumer.acknowledged);
    expect(status.serverVersion).to.match(/^\d+/);
    expect(status.epoch).to.equal(started.epoch);
    expect(status.snapshotHeld).to.equal(false);
    expect(status.lastError).to.equal('');
    await new Promise((done) => setTimeout(done, 1100));
    expect((await pipeline.api.getStatus()).uptimeSeconds >= 1n).to.equal(true);

    const metrics = await (await fetch(`http://127.0.0.1:${pipeline.httpPort}/metrics`)).text();
    expect(metrics).to.match(/^kasho_change_stream_retained_wal_bytes [1-9]\d*$/m);
    expect(metrics).to.match(/^kasho_change_stream_state\{state="STREAMING"\} 1$/m);
    expect(metrics).to.match(/^kasho_change_stream_connected_clients 1$/m);
  });

  it('answers grpc.health.v1 Check with SERVING', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService, 'Health');
    const health = new Health(pipeline.address, grpc.credentials.createInsecure());
    try {
      for (const name of ['', 'kasho.ChangeStreamService']) {
        const check = (health as unknown as { Check: HealthCheck }).Check.bind(health);
        const response = await new Promise<{ status: string }>((resolveCheck, reject) =>
          check({ service: name }, (error, value) => (error ? reject(error) : resolveCheck(value))),
        );
        expect(response.status, `service "${name}"`).to.equal('SERVING');
      }
    } finally {
      health.close();
    }
  });

  it('serves reflection, so grpcurl calls GetStatus without proto files', async function () {
    const grpcurl = await findGrpcurl();
    if ('missing' in grpcurl) {
      console.log(`      skipped: ${grpcurl.missing}`);
      this.skip();
    }
    const call = async (...args: string[]) =>
      (await run(grpcurl.path, ['-plaintext', ...args], { timeout: 30_000 })).stdout;
    const services = await call(pipeline.address, 'list');
    expect(services.split('\n')).to.include('kasho.ChangeStreamService');
    const methods = await call(pipeline.address, 'describe', 'kasho.ChangeStreamService');
    for (const method of ['GetStatus', 'StartBootstrap', 'CompleteBootstrap', 'Stream', 'Acknowledge']) {
      expect(methods).to.include(`rpc ${method} (`);
    }
    const status = JSON.parse(await call(pipeline.address, 'kasho.ChangeStreamService/GetStatus')) as Record<
      string,
      unknown
    >;
    expect(status).to.include({ state: 'STREAMING', slotName: SLOT, publicationName: 'kasho_pub' });
    expect(status.startLsn).to.equal(started.startLsn);
  });

  it('lets the slot move past unrelated WAL while the database is idle', async () => {
    await consumer.until(
      'everything acknowledged',
      () => consumer.acknowledged?.lsn === consumer.position.lsn,
    );
    const { rows } = await pipeline.sql.query<{ lsn: string }>(
      `SELECT pg_logical_emit_message(false, 'kasho-test', 'unrelated')::text AS lsn`,
    );
    const unrelated = parseLsn(rows[0]!.lsn);
    const before = (await pipeline.slot())!.confirmed;
    expect(before < unrelated).to.equal(true);
    const startedAt = Date.now();
    const confirmed = await eventually(
      'confirmed_flush_lsn past the unrelated WAL',
      async () => {
        const slot = await pipeline.slot();
        return slot && slot.confirmed > unrelated ? slot.confirmed : undefined;
      },
      40_000,
    );
    console.log(
      `      confirmed_flush_lsn ${formatLsn(before)} -> ${formatLsn(confirmed)} past ${formatLsn(unrelated)} in ${Date.now() - startedAt} ms`,
    );
    expect(consumer.failure).to.equal(undefined);
    const heartbeat = consumer.transactions.at(-1)!;
    expect(heartbeat.events, 'the slot moved with a heartbeat: an empty transaction').to.have.length(0);
    expect(heartbeat.begin.commitLsn > unrelated).to.equal(true);
  });
});
