/**
 * The bootstrap state machine of bin/pg-change-stream against a real slot: WAITING -> ACCUMULATING -> STREAMING,
 * kept across restarts, reconciled with the slot and the buffer when either disappears, reset. The tests run in
 * order and walk the service through its states one after the other.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import pg from 'pg';
import { BootstrapState, bufferKeys, type StartBootstrapResponse } from '@kasho/common';
import { Redis } from 'ioredis';
import {
  SLOT,
  eventually,
  grpcCode,
  printOutputOnFailure,
  startPipeline,
  type Consumer,
  type Pipeline,
} from './support.js';

describe('pg-change-stream: bootstrap states against a real slot', function () {
  this.timeout(180_000);

  let pipeline: Pipeline;
  let started: StartBootstrapResponse;
  let consumer: Consumer;
  const keys = bufferKeys(SLOT);

  before(async () => {
    pipeline = await startPipeline('CREATE TABLE items (id int PRIMARY KEY, v text);');
  });

  afterEach(function () {
    printOutputOnFailure(this, pipeline);
  });

  after(async () => {
    await pipeline?.close();
  });

  async function restart(how: 'stop' | 'kill'): Promise<void> {
    if (how === 'kill') await pipeline.killService();
    else await pipeline.stopService();
    await pipeline.startService();
  }

  async function rejection(call: Promise<unknown>): Promise<grpc.ServiceError> {
    try {
      await call;
    } catch (error) {
      return error as grpc.ServiceError;
    }
    throw new Error('the call succeeded');
  }

  /** Imports an exported snapshot and returns the ids of items it sees. */
  async function idsInSnapshot(snapshotName: string): Promise<number[]> {
    const client = new pg.Client({ connectionString: pipeline.source.superuserUrl });
    await client.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await client.query(`SET TRANSACTION SNAPSHOT '${snapshotName}'`);
      const { rows } = await client.query<{ id: number }>('SELECT id FROM items ORDER BY id');
      await client.query('COMMIT');
      return rows.map((row) => row.id);
    } finally {
      await client.end();
    }
  }

  async function redisKeys(): Promise<string[]> {
    const redis = new Redis(pipeline.servers.redis!.url);
    try {
      return (await redis.keys(`kasho:${SLOT}:*`)).sort();
    } finally {
      redis.disconnect();
    }
  }

  it('starts in WAITING, keeps it across a restart, and names the state when refusing a call', async () => {
    expect((await pipeline.api.getStatus()).state).to.equal(BootstrapState.WAITING);
    const refused = await rejection(pipeline.api.completeBootstrap());
    expect(refused.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(refused.details).to.include('CompleteBootstrap is not possible in state WAITING');
    await restart('stop');
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.WAITING);
    expect(status.lastError).to.equal('');
    expect(await pipeline.slot()).to.equal(undefined);
  });

  it('refuses StartBootstrap with a snapshot from elsewhere, and explains why', async () => {
    const other = new pg.Client({ connectionString: pipeline.source.superuserUrl });
    await other.connect();
    try {
      await other.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      const { rows } = await other.query<{ name: string }>('SELECT pg_export_snapshot() AS name');
      const lsn = (await other.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!
        .lsn;
      const refused = await rejection(
        new Promise((resolve, reject) =>
          pipeline.api.client.startBootstrap(
            { snapshotName: rows[0]!.name, startLsn: lsn, snapshotTimeoutSeconds: 0 },
            (error, response) => (error ? reject(error) : resolve(response)),
          ),
        ),
      );
      expect(refused.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(refused.details).to.include('does not accept a snapshot or LSN from another slot');
      expect(refused.details).to.include('would be lost');
      expect(refused.details).to.include('Call StartBootstrap with no arguments');
    } finally {
      await other.end();
    }
    expect((await pipeline.api.getStatus()).state).to.equal(BootstrapState.WAITING);
    expect(await pipeline.slot()).to.equal(undefined);
  });

  it('exports a snapshot that sees exactly the rows committed before StartBootstrap, until ReleaseSnapshot', async () => {
    await pipeline.sql.query(`INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    started = await pipeline.api.startBootstrap();
    expect(started.state).to.equal(BootstrapState.ACCUMULATING);
    expect(started.slotName).to.equal(SLOT);
    expect(started.snapshotName).to.not.equal('');
    expect(started.epoch).to.not.equal('');
    await pipeline.sql.query(`INSERT INTO items VALUES (4, 'd'), (5, 'e')`);
    await pipeline.sql.query(`UPDATE items SET v = 'changed' WHERE id = 1`);

    expect(await idsInSnapshot(started.snapshotName)).to.deep.equal([1, 2, 3]);
    expect(await idsInSnapshot(started.snapshotName), 'importable more than once').to.deep.equal([1, 2, 3]);
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.ACCUMULATING);
    expect(status.snapshotHeld).to.equal(true);
    expect(status.snapshotName).to.equal(started.snapshotName);
    expect(status.startLsn).to.equal(started.startLsn);

    const again = await rejection(pipeline.api.startBootstrap());
    expect(again.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(again.details).to.include('StartBootstrap is not possible in state ACCUMULATING');

    expect((await pipeline.api.releaseSnapshot()).released).to.equal(true);
    expect((await pipeline.api.releaseSnapshot()).released).to.equal(false);
    let importError: Error | undefined;
    await idsInSnapshot(started.snapshotName).catch((error: Error) => (importError = error));
    expect(importError?.message).to.match(/invalid snapshot identifier/);
    expect((await pipeline.api.getStatus()).snapshotHeld).to.equal(false);
  });

  it('keeps ACCUMULATING and what it accumulated across kill -9', async () => {
    await eventually('the changes after the snapshot in the buffer', async () => {
      const status = await pipeline.api.getStatus();
      // Two transactions: Begin, two inserts, Commit; Begin, one update, Commit.
      return status.bufferedChanges >= 7n ? status : undefined;
    });
    await restart('kill');
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.ACCUMULATING);
    expect(status.epoch).to.equal(started.epoch);
    expect(status.startLsn).to.equal(started.startLsn);
    expect(status.snapshotHeld).to.equal(false);
    expect(status.bufferedChanges >= 7n).to.equal(true);
    await pipeline.sql.query(`INSERT INTO items VALUES (6, 'f')`);
  });

  it('streams what accumulated after CompleteBootstrap, to one consumer at a time', async () => {
    const completed = await pipeline.api.completeBootstrap();
    expect(completed.state).to.equal(BootstrapState.STREAMING);
    expect(completed.bootstrapChanges).to.equal(2n);
    consumer = pipeline.consumer({ epoch: started.epoch }).start();
    await consumer.until('the accumulated rows', () => consumer.rows().length >= 4);
    expect(consumer.rows().map((row) => row.newValues.map((v) => v.text))).to.deep.equal([
      ['4', 'd'],
      ['5', 'e'],
      ['1', 'changed'],
      ['6', 'f'],
    ]);
    const bootstrapMarker = consumer.transactions[0]!;
    expect(bootstrapMarker.begin.bootstrap).to.equal(true);
    expect(bootstrapMarker.events).to.have.length(0);

    const second = pipeline.api.client.stream({ after: { lsn: 0n, seq: 0n }, consumer: 'second', epoch: '' });
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      second.on('error', resolve);
      second.on('data', () => undefined);
    });
    expect(error.code).to.equal(grpc.status.ALREADY_EXISTS);
    expect(error.details).to.include('another consumer (test-consumer) is streaming');

    for (const call of [pipeline.api.startBootstrap(), pipeline.api.completeBootstrap()]) {
      const refused = await rejection(call);
      expect(refused.code).to.equal(grpc.status.FAILED_PRECONDITION);
      expect(refused.details).to.match(/is not possible in state STREAMING/);
    }
  });

  it('refuses a consumer whose position belongs to another bootstrap epoch', async () => {
    consumer.stop();
    await eventually('the consumer to be gone', async () =>
      (await pipeline.api.getStatus()).connectedClients === 0 ? true : undefined,
    );
    const stranger = pipeline.api.client.stream({
      after: { lsn: 0n, seq: 0n },
      consumer: 'stranger',
      epoch: 'some-other-epoch',
    });
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      stranger.on('error', resolve);
      stranger.on('data', () => undefined);
    });
    expect(error.code).to.equal(grpc.status.FAILED_PRECONDITION);
    expect(error.details).to.include('belongs to bootstrap epoch some-other-epoch');
    consumer.resume();
    await eventually('the consumer to be connected again', async () =>
      (await pipeline.api.getStatus()).connectedClients === 1 ? true : undefined,
    );
  });

  it('keeps STREAMING across a restart; the consumer resumes after its position', async () => {
    const before = consumer.rows().length;
    await restart('stop');
    expect((await pipeline.api.getStatus()).state).to.equal(BootstrapState.STREAMING);
    await pipeline.sql.query(`INSERT INTO items VALUES (7, 'g')`);
    await consumer.until('the row written after the restart', () => consumer.rows().length > before);
    expect(
      consumer
        .rows()
        .slice(before)
        .map((row) => row.newValues[0]?.text),
    ).to.deep.equal(['7']);
  });

  it('rebuilds the stream from the slot when Redis lost everything while the service was down', async function () {
    // Known intermittent failure (issue #3, closing note of 2026-11-25): after the restart the consumer reconnects
    // but the rows written around the wipe do not always arrive. Diagnose before enabling again; the running-service
    // wipe (recovery.test.ts) and the e2e Redis wipe cover the same path and pass.
    console.log(
      '      skipped: intermittent failure under investigation (issue #3): rows written while the service was down with Redis wiped do not always arrive',
    );
    this.skip();
    await consumer.until(
      'the acknowledgement of everything received',
      () => consumer.acknowledged?.lsn === consumer.position.lsn,
    );
    await pipeline.stopService();
    await pipeline.servers.redis!.flushAll();
    await pipeline.sql.query(`INSERT INTO items VALUES (8, 'h')`);
    await pipeline.startService();
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.STREAMING);
    expect(status.lastError).to.include('Rebuilding the stream from the slot');
    const before = consumer.rows().length;
    await pipeline.sql.query(`INSERT INTO items VALUES (9, 'i')`);
    await consumer.until('the rows written around the wipe', () => consumer.rows().length >= before + 2);
    expect(
      consumer
        .rows()
        .slice(before)
        .map((row) => row.newValues[0]?.text),
    ).to.deep.equal(['8', '9']);
  });

  it('goes back to WAITING with last_error when the slot is dropped behind its back', async () => {
    // The walsender is terminated and the slot dropped before the service reconnects.
    await eventually('the slot to be dropped', async () => {
      await pipeline.sql.query(
        `SELECT pg_terminate_backend(active_pid, 5000) FROM pg_replication_slots
          WHERE slot_name = $1 AND active_pid IS NOT NULL`,
        [SLOT],
      );
      await pipeline.sql.query('SELECT pg_drop_replication_slot($1)', [SLOT]);
      return true;
    });
    const status = await eventually('WAITING', async () => {
      const current = await pipeline.api.getStatus();
      return current.state === BootstrapState.WAITING ? current : undefined;
    });
    expect(status.lastError).to.include(`replication slot ${SLOT} disappeared while STREAMING`);
    expect(status.lastError).to.include('run the bootstrap again');
    expect(await redisKeys()).to.deep.equal([keys.state]);
    await restart('stop');
    expect((await pipeline.api.getStatus()).state).to.equal(BootstrapState.WAITING);
  });

  it('goes back to WAITING when the slot disappeared while the service was down', async () => {
    consumer.stop();
    started = await pipeline.bootstrap();
    await pipeline.stopService();
    await pipeline.sql.query('SELECT pg_drop_replication_slot($1)', [SLOT]);
    await pipeline.startService();
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.WAITING);
    expect(status.lastError).to.include('disappeared while STREAMING');
  });

  it('ResetBootstrap drops the slot and the buffer', async () => {
    started = await pipeline.api.startBootstrap();
    await pipeline.sql.query(`INSERT INTO items VALUES (10, 'j')`);
    await eventually('a buffered change', async () =>
      (await pipeline.api.getStatus()).bufferedChanges > 0n ? true : undefined,
    );
    expect(await pipeline.slot()).to.not.equal(undefined);
    const reset = await pipeline.api.resetBootstrap();
    expect(reset.state).to.equal(BootstrapState.WAITING);
    expect(reset.slotDropped).to.equal(true);
    expect(await pipeline.slot()).to.equal(undefined);
    expect(await redisKeys()).to.deep.equal([keys.state]);
    const status = await pipeline.api.getStatus();
    expect(status.state).to.equal(BootstrapState.WAITING);
    expect(status.bufferedChanges).to.equal(0n);
    expect(status.snapshotHeld).to.equal(false);
    expect((await pipeline.api.resetBootstrap()).slotDropped, 'a second reset has nothing to drop').to.equal(
      false,
    );
    expect(grpcCode(await rejection(pipeline.api.completeBootstrap()))).to.equal(
      grpc.status.FAILED_PRECONDITION,
    );
  });
});
