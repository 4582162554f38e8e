import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ConfigError } from '@kasho/common';
import { loadConfig } from '../../src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'kasho-bootstrap-config-'));
const dump = join(dir, 'dump.sql');
writeFileSync(dump, '');

function problems(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    loadConfig(argv, env);
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no ConfigError');
}

describe('pg-bootstrap-sync configuration', () => {
  it("keeps the guide's --dump-file --redis-url interface", () => {
    expect(loadConfig([`--dump-file=${dump}`, '--redis-url=redis://redis:6379'], {})).to.deep.equal({
      mode: 'dump-file',
      dumpFile: dump,
      redisUrl: 'redis://redis:6379',
      slotName: 'kasho_slot',
      changeStream: undefined,
      batchSize: 10_000,
      replace: false,
    });
  });

  it('takes defaults from KV_URL, SLOT_NAME and CHANGE_STREAM_SERVICE', () => {
    const config = loadConfig(['--dump-file', dump, '--replace', '--batch-size=500'], {
      KV_URL: 'rediss://:pw@redis:6380',
      SLOT_NAME: 'other_slot',
      CHANGE_STREAM_SERVICE: 'pg-change-stream:8080',
    });
    expect(config).to.include({
      redisUrl: 'rediss://:pw@redis:6380',
      slotName: 'other_slot',
      changeStream: 'pg-change-stream:8080',
      batchSize: 500,
      replace: true,
    });
  });

  it('says everything that is missing at once', () => {
    const message = problems([]);
    expect(message).to.contain('--dump-file is required');
    expect(message).to.contain('--redis-url is required');
  });

  it('refuses a missing dump file, both modes at once, and bad numbers', () => {
    expect(problems(['--dump-file=/nope.sql', '--redis-url=redis://r:6379'])).to.contain(
      'Dump file /nope.sql not found',
    );
    expect(
      problems([`--dump-file=${dump}`, '--source-url=postgresql://u@h/db', '--redis-url=redis://r:6379']),
    ).to.contain('not both');
    expect(problems([`--dump-file=${dump}`, '--redis-url=redis://r:6379', '--batch-size=0'])).to.contain(
      '--batch-size must be a whole number',
    );
    expect(problems([`--dump-file=${dump}`, '--redis-url=redis://r:6379', '--jobs=2'])).to.contain(
      '--jobs belongs to the direct mode',
    );
    expect(problems(['--dump-file', dump, '--bogus'])).to.contain("Unknown option '--bogus'");
  });

  it('reads the direct mode', () => {
    const config = loadConfig(
      ['--source-url=postgresql://kasho:pw@db:5432/app', '--snapshot=00000003-0000001B-1', '--jobs=8'],
      { KV_URL: 'redis://r:6379', PG_DUMP: '/usr/lib/postgresql/16/bin/pg_dump' },
    );
    expect(config).to.deep.equal({
      mode: 'direct',
      sourceUrl: 'postgresql://kasho:pw@db:5432/app',
      snapshot: '00000003-0000001B-1',
      jobs: 8,
      pgDump: '/usr/lib/postgresql/16/bin/pg_dump',
      redisUrl: 'redis://r:6379',
      slotName: 'kasho_slot',
      changeStream: undefined,
      batchSize: 10_000,
      replace: false,
    });
  });

  it('needs a snapshot in the direct mode unless pg-change-stream can name it, and never echoes the URL', () => {
    expect(problems(['--source-url=postgresql://u:hunter2@db/app', '--redis-url=redis://r:6379'])).to.contain(
      '--snapshot is required',
    );
    const config = loadConfig(
      ['--source-url=postgresql://u@db/app', '--redis-url=redis://r:6379', '--change-stream=cs:8080'],
      {},
    );
    expect(config).to.include({ mode: 'direct', snapshot: undefined, changeStream: 'cs:8080' });
    const bad = problems([
      '--source-url=postgres//u:hunter2@db',
      '--snapshot=x; DROP',
      '--redis-url=redis://r:6379',
    ]);
    expect(bad).to.contain('--source-url is not a valid PostgreSQL URL');
    expect(bad).to.contain('--snapshot must be an exported snapshot name');
    expect(bad).to.not.contain('hunter2');
  });
});
