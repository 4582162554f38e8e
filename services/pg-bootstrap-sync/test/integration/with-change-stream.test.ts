/**
 * pg-bootstrap-sync against a real pg-change-stream: refused before StartBootstrap, run in the direct mode with the
 * snapshot pg-change-stream holds (asked over gRPC), and followed by CompleteBootstrap, whose closing
 * pseudo-transaction continues the positions the snapshot left off at.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { ChangeStreamApi, formatLsn } from '@kasho/common';
import { startLocalServers, type LocalServers } from '../../../../hack/testing/local-servers.js';
import { freePort, startService, type RunningService } from '../../../../hack/testing/services.js';
import {
  DATA_TABLES,
  KEYS,
  SCHEMA,
  checkOrder,
  checkPseudoTransactions,
  contentOf,
  readBootstrap,
  readRelations,
  runBootstrapSync,
  tableKey,
} from './support.js';

describe('pg-bootstrap-sync with pg-change-stream', function () {
  this.timeout(300_000);
  let servers: LocalServers;
  let changeStream: RunningService | undefined;
  let api: ChangeStreamApi | undefined;
  let address: string;

  before(async () => {
    servers = await startLocalServers({ source: true, redis: true });
    await servers.source!.query(SCHEMA);
    const grpcPort = await freePort();
    const httpPort = await freePort();
    address = `127.0.0.1:${grpcPort}`;
    changeStream = await startService(
      'pg-change-stream',
      {
        PRIMARY_DATABASE_URL: servers.source!.superuserUrl,
        KV_URL: servers.redis!.url,
        GRPC_PORT: String(grpcPort),
        HTTP_PORT: String(httpPort),
      },
      { httpPort, waitFor: 'healthz' },
    );
    api = new ChangeStreamApi(address);
  });

  after(async () => {
    api?.close();
    await changeStream?.stop();
    await servers?.stop();
  });

  it('is refused while pg-change-stream is WAITING', async () => {
    const result = await runBootstrapSync([
      `--source-url=${servers.source!.superuserUrl}`,
      `--redis-url=${servers.redis!.url}`,
      `--change-stream=${address}`,
    ]);
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('pg-change-stream is WAITING for slot kasho_slot, not ACCUMULATING');
  });

  it('loads the snapshot pg-change-stream exported, ahead of the closing pseudo-transaction', async () => {
    const started = await api!.startBootstrap();
    await servers.source!.query(`INSERT INTO public.filler VALUES (999999, 'after the snapshot')`);
    const result = await runBootstrapSync(
      [
        `--source-url=${servers.source!.superuserUrl}`,
        `--redis-url=${servers.redis!.url}`,
        `--change-stream=${address}`,
      ],
      { PG_DUMP: `${servers.source!.binDir}/pg_dump` },
    );
    expect(result.status, result.output).to.equal(0);
    expect(result.output).to.contain(
      `Using the snapshot ${started.snapshotName} that pg-change-stream holds`,
    );
    await api!.releaseSnapshot();
    const completed = await api!.completeBootstrap();

    const redis = new Redis(servers.redis!.url);
    try {
      const changes = await readBootstrap(redis);
      expect(BigInt(changes.length)).to.equal(completed.bootstrapChanges);
      const closing = changes.slice(-2);
      expect(closing.map((c) => c.kind?.$case)).to.deep.equal(['begin', 'commit']);
      const commit = closing[1]!.kind;
      expect(commit?.$case === 'commit' && formatLsn(commit.value.commitLsn)).to.equal(started.startLsn);
      const ours = changes.slice(0, -2);
      const content = contentOf(checkPseudoTransactions(ours, 10_000), await readRelations(redis));
      checkOrder(
        content,
        DATA_TABLES.map(([schema, name]) => tableKey(schema, name)),
      );
      expect(closing[0]!.position).to.deep.equal({ lsn: 0n, seq: BigInt(ours.length + 1) });
      expect(content.rows.get('public.filler')).to.have.length(2500);
      expect(await redis.hget(KEYS.state, 'state')).to.equal('STREAMING');
    } finally {
      redis.disconnect();
    }
  });
});
