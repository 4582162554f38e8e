/**
 * A dump of 2 million rows (about 160 MB) through bin/pg-bootstrap-sync: memory stays bounded (the peak RSS is
 * printed, and must stay far below what holding the rows would take), every row arrives, positions are contiguous.
 * Prints the throughput; no timing is asserted.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Change, ValueKind } from '@kasho/common/gen/kasho/change_stream';
import { startLocalServers, type LocalServers } from '../../../../hack/testing/local-servers.js';
import { KEYS, runBootstrapSync, textQuery } from './support.js';

const run = promisify(execFile);
const ROWS = 2_000_000;
/** Holding 2M rows as change events would take several GiB; streaming needs a small, fixed part of that. */
const RSS_BOUND = 768 * 1024 * 1024;

describe('pg-bootstrap-sync on a 2M-row dump', function () {
  this.timeout(900_000);
  let servers: LocalServers;
  let redis: Redis;

  before(async () => {
    servers = await startLocalServers({ source: true, redis: true });
    redis = new Redis(servers.redis!.url);
  });

  after(async () => {
    redis?.disconnect();
    await servers?.stop();
  });

  it('streams it with bounded memory and loses no row', async () => {
    const source = servers.source!;
    await source.query(`
      CREATE TABLE big (id bigint PRIMARY KEY, name text, amount numeric(12,2), created timestamptz, note text);
      INSERT INTO big
      SELECT g, 'name ' || g, g * 1.5, timestamptz '2024-01-01 00:00+00' - g * interval '1 second',
             CASE WHEN g % 10 = 0 THEN E'tab\\there\\\\ and \\nline \\\\.' WHEN g % 7 = 0 THEN NULL
                  ELSE repeat('x', (g % 50)::integer) END
        FROM generate_series(1, ${ROWS}) g;
    `);
    const dumpFile = join(servers.dir, 'big.sql');
    await run(join(source.binDir, 'pg_dump'), [
      '--no-owner',
      '--no-privileges',
      '-f',
      dumpFile,
      source.superuserUrl,
    ]);
    await redis.hset(KEYS.state, { state: 'ACCUMULATING', epoch: 'big' });

    const result = await runBootstrapSync([`--dump-file=${dumpFile}`, `--redis-url=${servers.redis!.url}`]);
    expect(result.status, result.output).to.equal(0);
    const done = /Done: (.*?); (\d+) events .*peak RSS ([\d.]+) MiB/.exec(result.output);
    expect(done, result.output).to.not.equal(null);
    const peakRss = Number(done![3]) * 1024 * 1024;
    console.log(
      `      dump ${(statSync(dumpFile).size / 1024 / 1024).toFixed(1)} MiB: ${done![1]}; peak RSS ${done![3]} MiB`,
    );
    expect(done![1]).to.contain(`${ROWS.toLocaleString('en-US')} rows`);
    expect(peakRss).to.be.lessThan(RSS_BOUND);

    // Stream IDs only grow, so the first being 0-1, the last 0-N and N entries mean no gap.
    const events = Number(done![2]);
    expect(await redis.xlen(KEYS.bootstrap)).to.equal(events);
    const first = await redis.xrange(KEYS.bootstrap, '-', '+', 'COUNT', 1);
    const last = await redis.xrevrange(KEYS.bootstrap, '+', '-', 'COUNT', 1);
    expect(first[0]![0]).to.equal('0-1');
    expect(last[0]![0]).to.equal(`0-${events}`);
    // One CREATE TABLE, the TRUNCATE, the rows, the primary key; a Begin and Commit per 10,000 changes.
    const changes = 1 + 1 + ROWS + 1;
    expect(events).to.equal(changes + 2 * Math.ceil(changes / 10_000));

    // The last rows, decoded, equal the source's text output.
    const tail = await redis.xrevrangeBuffer(KEYS.bootstrap, '+', '-', 'COUNT', 3000);
    const rows = tail
      .map(([, fields]) => Change.decode(fields[1]!))
      .flatMap((change) => (change.kind?.$case === 'row' ? [change.kind.value] : []))
      .map((row) => row.newValues.map((v) => (v.kind === ValueKind.NULL ? null : v.text)));
    expect(rows.length).to.be.greaterThan(2000);
    const client = new pg.Client({ connectionString: source.superuserUrl });
    await client.connect();
    try {
      const ids = rows.map((row) => Number(row[0]));
      const expected = await textQuery(
        client,
        `SELECT id, name, amount, created, note FROM public.big WHERE id BETWEEN ${Math.min(...ids)} AND ${Math.max(...ids)}`,
      );
      expect(rows).to.have.deep.members(expected);
    } finally {
      await client.end();
    }
  });
});
