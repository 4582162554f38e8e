/**
 * bin/pg-change-stream losing its process or its buffer while changes flow: kill -9 in the middle of a large
 * transaction and of a stream of small ones, and FLUSHALL on Redis while the consumer is behind. The consumer
 * (support.ts) stops on any gap or repeated position, so "exactly once" is checked event by event; here the rows
 * it applied are compared with what was committed.
 */
import { expect } from 'chai';
import pg from 'pg';
import { Redis } from 'ioredis';
import { bufferKeys, BootstrapState, formatLsn, RowOperation, type Position } from '@kasho/common';
import { SLOT, eventually, printOutputOnFailure, startPipeline, type Pipeline } from './support.js';

const BIG_TRANSACTION_ROWS = 300_000;

describe('pg-change-stream: kill -9 and a wiped buffer while changes flow', function () {
  this.timeout(300_000);

  let pipeline: Pipeline;
  let epoch: string;
  let writer: pg.Client;
  let redis: Redis;
  const keys = bufferKeys(SLOT);
  /** Where the first test's consumer stopped: the second one resumes there, as the same target would. */
  let resumeFrom: { position: Position; chain: bigint } | undefined;

  before(async () => {
    pipeline = await startPipeline('CREATE TABLE events (id int PRIMARY KEY, phase text, payload text);');
    epoch = (await pipeline.bootstrap()).epoch;
    writer = new pg.Client({ connectionString: pipeline.source.superuserUrl });
    await writer.connect();
    redis = new Redis(pipeline.servers.redis!.url);
  });

  afterEach(function () {
    printOutputOnFailure(this, pipeline);
  });

  after(async () => {
    redis?.disconnect();
    await writer?.end();
    await pipeline?.close();
  });

  /** Commits `count` transactions of `size` rows each, ids from `first` on; returns the ids. */
  async function writeTransactions(
    phase: string,
    first: number,
    count: number,
    size: number,
  ): Promise<number[]> {
    const ids: number[] = [];
    for (let i = 0; i < count; i++) {
      const from = first + i * size;
      await writer.query(
        `INSERT INTO events SELECT g, $3, md5(g::text) FROM generate_series($1::int, $2::int) g`,
        [from, from + size - 1, phase],
      );
      for (let id = from; id < from + size; id++) ids.push(id);
    }
    return ids;
  }

  /** A consumer that records the id of every inserted row of `phase`. */
  function idConsumer(phase: string, options: { ackEvery: number | 'commit' }) {
    const ids: number[] = [];
    const consumer = pipeline.consumer({
      epoch,
      keep: false,
      ackEvery: options.ackEvery,
      onRow: (row) => {
        if (row.table === 'public.events' && row.operation === RowOperation.INSERT) {
          if (row.newValues[1]?.text === phase) ids.push(Number(row.newValues[0]?.text));
        }
      },
    });
    return { consumer, ids };
  }

  function expectExactlyOnce(received: number[], committed: number[]): void {
    const seen = new Set<number>();
    const duplicates = received.filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
    expect(duplicates.slice(0, 10), 'rows received twice').to.deep.equal([]);
    expect(received.length).to.equal(committed.length);
    const missing = committed.filter((id) => !seen.has(id));
    expect(missing.slice(0, 10), 'committed rows never received').to.deep.equal([]);
  }

  async function bufferPosition(): Promise<{ last: Position | undefined; lastCommit: bigint | undefined }> {
    const [entry] = await redis.xrevrange(keys.changes, '+', '-', 'COUNT', 1);
    const lastCommit = await redis.hget(keys.state, 'lastCommitLsn');
    const [lsn, seq] = entry ? entry[0].split('-') : [];
    return {
      last: lsn !== undefined && seq !== undefined ? { lsn: BigInt(lsn), seq: BigInt(seq) } : undefined,
      lastCommit: lastCommit ? BigInt(lastCommit) : undefined,
    };
  }

  it('kill -9 in the middle of a large transaction and of small ones: every row arrives exactly once', async () => {
    const { consumer, ids } = idConsumer('kill', { ackEvery: 500 });
    consumer.start();
    const committed = await writeTransactions('kill', 1, 50, 20);
    await consumer.until('the first small transactions', () => ids.length >= 200);

    // One large transaction; the service dies while it is half in the buffer (and partly acknowledged and
    // trimmed already), so after the restart it is received again and must continue where its written part ends.
    const big = writeTransactions('kill', 10_001, 1, BIG_TRANSACTION_ROWS);
    const partial = await eventually(
      'the large transaction half written to the buffer',
      async () => {
        const position = await bufferPosition();
        const inside =
          position.last !== undefined &&
          position.last.lsn !== position.lastCommit &&
          position.last.seq > BigInt(BIG_TRANSACTION_ROWS / 10);
        return inside ? position.last : undefined;
      },
      120_000,
    );
    await pipeline.killService();
    console.log(
      `      killed with the large transaction (commit ${formatLsn(partial!.lsn)}) buffered up to seq ${partial!.seq}, consumer at ${formatLsn(consumer.position.lsn)}#${consumer.position.seq}`,
    );
    for (const id of await big) committed.push(id);
    for (const id of await writeTransactions('kill', 400_001, 20, 20)) committed.push(id);
    await pipeline.startService();
    const more = writeTransactions('kill', 500_001, 50, 20);

    // Kill again while small transactions stream.
    await consumer.until('the stream to resume', () => ids.length >= 1_000 + BIG_TRANSACTION_ROWS / 2);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await pipeline.killService();
    await pipeline.startService();
    for (const id of await more) committed.push(id);
    await consumer.until('every committed row', () => ids.length >= committed.length, 180_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expectExactlyOnce(ids, committed);
    expect(consumer.connections, 'the consumer reconnected after each kill').to.be.greaterThanOrEqual(3);
    expect(consumer.failure).to.equal(undefined);
    consumer.stop();
    await eventually('the consumer to be gone', async () =>
      (await pipeline.api.getStatus()).connectedClients === 0 ? true : undefined,
    );
    resumeFrom = { position: consumer.position, chain: consumer.chain };
  });

  it('FLUSHALL while the consumer is behind: nothing acknowledged is lost, nothing unacknowledged missing', async () => {
    if (!resumeFrom) throw new Error('the kill -9 test did not leave a position to resume from');
    const { consumer, ids } = idConsumer('wipe', { ackEvery: 400 });
    consumer.position = resumeFrom.position;
    consumer.chain = resumeFrom.chain;
    consumer.start();
    const writing = (async () => {
      const written: number[] = [];
      for (let batch = 0; batch < 40; batch++) {
        for (const id of await writeTransactions('wipe', 1_000_001 + batch * 200, 10, 20)) written.push(id);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return written;
    })();
    await consumer.until(
      'acknowledged progress',
      () => ids.length >= 1_500 && consumer.acknowledged !== undefined,
    );
    const acknowledged = consumer.acknowledged!;
    const unacknowledged = ids.length;
    await pipeline.servers.redis!.flushAll();
    const rebuilt = await eventually('the service to notice the wipe', async () => {
      const status = await pipeline.api.getStatus();
      return status.lastError.includes('buffer was lost') ? status : undefined;
    });
    expect(rebuilt.state).to.equal(BootstrapState.STREAMING);
    const slot = await pipeline.slot();
    expect(slot!.confirmed >= acknowledged.lsn, 'the slot kept everything not acknowledged').to.equal(true);
    const committed = await writing;
    await consumer.until('every committed row', () => ids.length >= committed.length, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expectExactlyOnce(ids, committed);
    expect(consumer.failure).to.equal(undefined);
    expect(
      consumer.streamErrors.some((error) => (error.details ?? '').includes('started over')),
      'the open stream was ended so the consumer reconnected to the rebuilt buffer',
    ).to.equal(true);
    console.log(
      `      wiped with ${unacknowledged} rows received, acknowledged through ${formatLsn(acknowledged.lsn)}#${acknowledged.seq}; ${ids.length} rows after`,
    );

    // A second wipe with nothing pending: the rebuilt stream chains on from what the consumer applied.
    await consumer.until(
      'everything acknowledged',
      () => consumer.acknowledged?.lsn === consumer.position.lsn,
    );
    await pipeline.servers.redis!.flushAll();
    await eventually('the buffer rebuilt again', async () =>
      (await redis.hget(keys.state, 'state')) === 'STREAMING' ? true : undefined,
    );
    const after = await writeTransactions('wipe', 2_000_001, 3, 5);
    await consumer.until('the rows after the second wipe', () => after.every((id) => ids.includes(id)));
    expect(consumer.failure).to.equal(undefined);
  });
});
