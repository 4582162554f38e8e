import { expect } from 'chai';
import { nextFlushLsn, type FlushInputs } from '../../../src/capture/flush-position.js';

const base: FlushInputs = {
  confirmed: 100n,
  acknowledged: undefined,
  lastBufferedCommit: undefined,
  insideTransaction: false,
  serverWalEnd: 100n,
};

describe('the position confirmed to PostgreSQL', () => {
  it('follows the consumer’s acknowledgements while changes are pending', () => {
    expect(
      nextFlushLsn({ ...base, acknowledged: 150n, lastBufferedCommit: 300n, serverWalEnd: 400n }),
    ).to.equal(150n);
  });

  it('never passes a buffered transaction nobody acknowledged, however far the server is', () => {
    expect(nextFlushLsn({ ...base, lastBufferedCommit: 300n, serverWalEnd: 900n })).to.equal(100n);
  });

  it('follows the server on an idle database once everything is acknowledged', () => {
    expect(
      nextFlushLsn({ ...base, acknowledged: 300n, lastBufferedCommit: 300n, serverWalEnd: 900n }),
    ).to.equal(900n);
    expect(nextFlushLsn({ ...base, serverWalEnd: 500n })).to.equal(500n);
  });

  it('does not follow the server while a transaction is being received', () => {
    expect(
      nextFlushLsn({
        ...base,
        acknowledged: 300n,
        lastBufferedCommit: 300n,
        insideTransaction: true,
        serverWalEnd: 900n,
      }),
    ).to.equal(300n);
  });

  it('never goes backwards', () => {
    expect(nextFlushLsn({ ...base, confirmed: 500n, acknowledged: 200n, lastBufferedCommit: 600n })).to.equal(
      500n,
    );
  });
});
