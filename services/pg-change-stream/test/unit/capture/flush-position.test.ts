import { expect } from 'chai';
import { heartbeatLsn, nextFlushLsn, type HeartbeatInputs } from '../../../src/capture/flush-position.js';

describe('the position confirmed to PostgreSQL', () => {
  it('follows the consumer’s acknowledgements', () => {
    expect(nextFlushLsn({ confirmed: 100n, acknowledged: 150n })).to.equal(150n);
  });

  it('stays put without an acknowledgement, however far the server is', () => {
    expect(nextFlushLsn({ confirmed: 100n, acknowledged: undefined })).to.equal(100n);
  });

  it('never goes backwards', () => {
    expect(nextFlushLsn({ confirmed: 500n, acknowledged: 200n })).to.equal(500n);
  });
});

describe('heartbeats on an idle database', () => {
  const idle: HeartbeatInputs = {
    confirmed: 300n,
    acknowledged: 300n,
    lastBufferedCommit: 300n,
    chainFrom: 100n,
    insideTransaction: false,
    serverWalEnd: 900n,
  };

  it('are due once everything buffered is acknowledged and the server is further, just below its WAL end', () => {
    expect(heartbeatLsn(idle)).to.equal(899n);
  });

  it('start from the chain when nothing was buffered yet', () => {
    expect(
      heartbeatLsn({ ...idle, acknowledged: undefined, lastBufferedCommit: undefined, confirmed: 100n }),
    ).to.equal(899n);
    expect(
      heartbeatLsn({ ...idle, acknowledged: undefined, lastBufferedCommit: undefined, serverWalEnd: 101n }),
    ).to.equal(undefined);
  });

  it('wait while the consumer has something to acknowledge, a heartbeat included', () => {
    expect(heartbeatLsn({ ...idle, acknowledged: 200n })).to.equal(undefined);
    expect(heartbeatLsn({ ...idle, acknowledged: undefined })).to.equal(undefined);
  });

  it('are not due while a transaction is being received or without news from the server', () => {
    expect(heartbeatLsn({ ...idle, insideTransaction: true })).to.equal(undefined);
    expect(heartbeatLsn({ ...idle, serverWalEnd: 301n })).to.equal(undefined);
    expect(heartbeatLsn({ ...idle, serverWalEnd: 0n })).to.equal(undefined);
  });
});
