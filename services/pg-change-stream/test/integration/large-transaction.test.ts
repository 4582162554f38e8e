/**
 * One transaction of a million rows through bin/pg-change-stream: it is buffered and served in batches, never held
 * whole, so the service's memory stays bounded. The consumer acknowledges as it goes, so Redis is trimmed too.
 */
import { expect } from 'chai';
import { formatLsn, RowOperation } from '@kasho/common';
import { printOutputOnFailure, startPipeline, type Pipeline } from './support.js';

const ROWS = 1_000_000;
const RSS_LIMIT_BYTES = 256 * 1024 * 1024;

describe('pg-change-stream: a transaction of a million rows', function () {
  this.timeout(600_000);

  let pipeline: Pipeline;

  before(async () => {
    pipeline = await startPipeline('CREATE TABLE big (id int PRIMARY KEY, payload text);');
  });

  afterEach(function () {
    printOutputOnFailure(this, pipeline);
  });

  after(async () => {
    await pipeline?.close();
  });

  it(`streams ${ROWS} rows of one transaction with the service's RSS under 256 MB`, async () => {
    const { epoch } = await pipeline.bootstrap();
    let rows = 0;
    let nextId = 1;
    let outOfOrder = 0;
    const consumer = pipeline
      .consumer({
        epoch,
        keep: false,
        ackEvery: 10_000,
        onRow: (row) => {
          if (row.table !== 'public.big' || row.operation !== RowOperation.INSERT) return;
          if (Number(row.newValues[0]?.text) !== nextId) outOfOrder++;
          nextId++;
          rows++;
        },
      })
      .start();
    const service = pipeline.service!;
    const rssBefore = service.peakRssBytes();
    const startedAt = Date.now();
    await pipeline.sql.query(
      `INSERT INTO big SELECT g, 'payload of row ' || g FROM generate_series(1, ${ROWS}) g`,
    );
    const committedAt = Date.now();
    let maxBuffered = 0n;
    const sampler = setInterval(() => {
      pipeline.api.getStatus().then(
        (status) => {
          if (status.bufferedChanges > maxBuffered) maxBuffered = status.bufferedChanges;
        },
        () => undefined,
      );
    }, 500);
    try {
      await consumer.until('the whole transaction', () => rows >= ROWS, 540_000);
      await consumer.until('its Commit', () => !consumer.inTransaction);
    } finally {
      clearInterval(sampler);
    }
    const peak = service.peakRssBytes();
    const seconds = (Date.now() - committedAt) / 1000;
    console.log(
      `      ${ROWS} rows streamed ${seconds.toFixed(1)} s after the commit (${Math.round(ROWS / seconds)} rows/s, insert took ${((committedAt - startedAt) / 1000).toFixed(1)} s); ` +
        `pg-change-stream peak RSS ${(peak / 1024 / 1024).toFixed(1)} MB (${(rssBefore / 1024 / 1024).toFixed(1)} MB before); ` +
        `at most ${maxBuffered} changes in Redis; consumer at ${formatLsn(consumer.position.lsn)}#${consumer.position.seq}`,
    );
    expect(rows).to.equal(ROWS);
    expect(outOfOrder, 'rows arrive in the order they were inserted').to.equal(0);
    expect(consumer.failure).to.equal(undefined);
    expect(peak).to.be.lessThan(RSS_LIMIT_BYTES);
    expect(Number(maxBuffered), 'acknowledged changes were trimmed from Redis').to.be.lessThan(ROWS);
  });
});
