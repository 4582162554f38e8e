import { expect } from 'chai';
import { z } from 'zod';
import {
  ConfigError,
  hostPortEnv,
  parseConfig,
  portEnv,
  postgresUrlEnv,
  redactSecrets,
  redactUrl,
  redisUrlEnv,
} from '@kasho/common';

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    expect(error).to.be.instanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  expect.fail('expected a ConfigError');
}

describe('configuration parsing', () => {
  const schema = z.object({
    PRIMARY_DATABASE_URL: postgresUrlEnv('PRIMARY_DATABASE_URL'),
    KV_URL: redisUrlEnv('KV_URL'),
    GRPC_PORT: portEnv('GRPC_PORT', 8080),
  });

  it("reports every missing setting with the guide's message", () => {
    expect(problemsOf(() => parseConfig(schema, {}))).to.deep.equal([
      'PRIMARY_DATABASE_URL environment variable is required',
      'KV_URL environment variable is required',
    ]);
  });

  it('treats an empty value as missing', () => {
    expect(
      problemsOf(() => parseConfig(schema, { PRIMARY_DATABASE_URL: ' ', KV_URL: 'redis://r:6379' })),
    ).to.deep.equal(['PRIMARY_DATABASE_URL environment variable is required']);
  });

  it('rejects a malformed URL without echoing it (it may hold a password)', () => {
    const problems = problemsOf(() =>
      parseConfig(schema, { PRIMARY_DATABASE_URL: 'mysql://u:hunter2@h/db', KV_URL: 'http://:pw@r' }),
    );
    expect(problems).to.have.length(2);
    expect(problems.join('\n')).to.not.contain('hunter2');
    expect(problems[0]).to.match(/^PRIMARY_DATABASE_URL is not a valid PostgreSQL URL/);
    expect(problems[1]).to.match(/^KV_URL is not a valid Redis URL/);
  });

  it('applies defaults and parses ports', () => {
    const config = parseConfig(schema, {
      PRIMARY_DATABASE_URL: 'postgresql://kasho:pw@db:5432/app?sslmode=disable',
      KV_URL: 'rediss://:pw@redis:6380',
    });
    expect(config.GRPC_PORT).to.equal(8080);
    expect(parseConfig(z.object({ P: portEnv('P', 1) }), { P: '9091' }).P).to.equal(9091);
    expect(problemsOf(() => parseConfig(z.object({ P: portEnv('P', 1) }), { P: '70000' }))).to.deep.equal([
      'P must be a port number between 1 and 65535',
    ]);
  });

  it('accepts host:port service addresses only', () => {
    const s = z.object({ CHANGE_STREAM_SERVICE: hostPortEnv('CHANGE_STREAM_SERVICE') });
    expect(parseConfig(s, { CHANGE_STREAM_SERVICE: 'pg-change-stream:8080' }).CHANGE_STREAM_SERVICE).to.equal(
      'pg-change-stream:8080',
    );
    expect(problemsOf(() => parseConfig(s, { CHANGE_STREAM_SERVICE: 'http://x' }))).to.deep.equal([
      'CHANGE_STREAM_SERVICE must be host:port, e.g. pg-change-stream:8080',
    ]);
  });
});

describe('secret redaction', () => {
  it('masks passwords in URLs and keyword strings', () => {
    expect(redactUrl('postgresql://kasho:s3cr%40t@db:5432/app?sslmode=require')).to.equal(
      'postgresql://kasho:***@db:5432/app?sslmode=require',
    );
    expect(redactSecrets('connect to redis://:topsecret@redis:6379 failed')).to.equal(
      'connect to redis://:***@redis:6379 failed',
    );
    expect(redactSecrets("host=db password='a b c' user=x")).to.equal('host=db password=*** user=x');
  });
});
