import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

function run(program: string, args: string[], env: Record<string, string>) {
  const result = spawnSync(join(root, 'bin', program), args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('entry points (bin/, after npm run build)', () => {
  it('pg-change-stream needs PRIMARY_DATABASE_URL and KV_URL', () => {
    const result = run('pg-change-stream', [], {});
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('PRIMARY_DATABASE_URL environment variable is required');
    expect(result.output).to.contain('KV_URL environment variable is required');
  });

  it('pg-translicator needs CHANGE_STREAM_SERVICE and REPLICA_DATABASE_URL', () => {
    const result = run('pg-translicator', [], {});
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('CHANGE_STREAM_SERVICE environment variable is required');
    expect(result.output).to.contain('REPLICA_DATABASE_URL environment variable is required');
  });

  it('pg-translicator needs its transforms file, with the guide’s message', () => {
    const result = run('pg-translicator', [], {
      CHANGE_STREAM_SERVICE: 'localhost:8080',
      REPLICA_DATABASE_URL: 'postgresql://kasho:hunter2@localhost:5432/app',
    });
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('Required config file /app/config/transforms.yml not found');
    expect(result.output).to.not.contain('hunter2');
  });

  it('pg-bootstrap-sync needs --dump-file and --redis-url', () => {
    const result = run('pg-bootstrap-sync', [], {});
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('--dump-file is required');
    expect(result.output).to.contain('--redis-url is required');
    const dir = mkdtempSync(join(tmpdir(), 'kasho-cli-'));
    writeFileSync(join(dir, 'dump.sql'), '');
    const unknown = run('pg-bootstrap-sync', ['--dump-file', join(dir, 'dump.sql'), '--bogus'], {});
    expect(unknown.status).to.not.equal(0);
    expect(unknown.output).to.contain("Unknown option '--bogus'");
  });

  it('never prints a password from a malformed URL', () => {
    const result = run('pg-change-stream', [], {
      PRIMARY_DATABASE_URL: 'postgres//kasho:hunter2@db/app',
      KV_URL: 'redis://:hunter2@',
    });
    expect(result.status).to.not.equal(0);
    expect(result.output).to.contain('PRIMARY_DATABASE_URL is not a valid PostgreSQL URL');
    expect(result.output).to.not.contain('hunter2');
  });

  for (const program of ['pg-change-stream', 'pg-translicator', 'pg-bootstrap-sync']) {
    it(`${program} --help prints usage and exits 0`, () => {
      const result = run(program, ['--help'], {});
      expect(result.status).to.equal(0);
      expect(result.output).to.contain(program);
    });
  }
});
