import { expect } from 'chai';
import { ConfigError } from '@kasho/common/errors';
import { loadConfig, parseDuration } from '../../src/config.js';

describe('kasho-operator settings', function () {
  it('has defaults for everything', function () {
    const config = loadConfig({});
    expect(config).to.deep.include({
      namespaces: [],
      httpPort: 8081,
      pollIntervalMs: 10_000,
      leaderElect: true,
      leaseName: 'kasho-operator',
      defaultImage: 'kasho:latest',
      workers: 2,
    });
    expect(config.identity).to.be.a('string').and.not.equal('');
  });

  it('reads namespaces, durations, flags and identity', function () {
    const config = loadConfig({
      WATCH_NAMESPACE: 'data, staging ,',
      POLL_INTERVAL: '500ms',
      LEADER_ELECT: 'false',
      POD_NAMESPACE: 'kasho-system',
      POD_NAME: 'kasho-operator-0',
      HTTP_PORT: '9443',
    });
    expect(config).to.deep.include({
      namespaces: ['data', 'staging'],
      pollIntervalMs: 500,
      leaderElect: false,
      leaseNamespace: 'kasho-system',
      identity: 'kasho-operator-0',
      httpPort: 9443,
    });
    expect(parseDuration('2m')).to.equal(120_000);
    expect(parseDuration('15')).to.equal(15_000);
    expect(parseDuration('0s')).to.equal(undefined);
  });

  it('reports every bad setting at once', function () {
    try {
      loadConfig({ POLL_INTERVAL: 'often', LEADER_ELECT: 'maybe', WORKERS: '0', HTTP_PORT: '99999' });
      expect.fail('loadConfig accepted bad settings');
    } catch (error) {
      expect(error).to.be.instanceOf(ConfigError);
      expect((error as ConfigError).problems).to.have.members([
        'POLL_INTERVAL must be a duration such as 10s, 500ms or 2m',
        'LEADER_ELECT must be true or false',
        'WORKERS must be a whole number between 1 and 64',
        'HTTP_PORT must be a port number between 1 and 65535',
      ]);
    }
  });
});
